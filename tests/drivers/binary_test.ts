import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  appendFile,
  chmod,
  mkdtemp,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import binaryDriver, { type BinaryHandle, waitExit } from "../../drivers/binary.ts";
import { ExitCode, ProvisioningError } from "../../core/errors.ts";
import { groupMembers, isAlive, parseProcStat, waitGone } from "../../core/process/identity.ts";
import {
  ensureDirs,
  readPid,
  readState,
  statePaths,
  writePid,
  writeState,
} from "../../core/state/files.ts";
import type { DriverContext, Service } from "../../core/types.ts";
import { until } from "../_until.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

function service(
  name: string,
  binary: Record<string, unknown>,
  shutdown = { signal: "SIGTERM", timeout: 10 },
): Service {
  return {
    name,
    type: "platform",
    category: "test",
    description: "",
    required_for: [],
    dependencies: [],
    conflicts: [],
    deployment: { mode: "binary", binary },
    health_check: { type: "none", interval: 10, retries: 3, timeout: 5 },
    startup: {
      auto_start: false,
      start_timeout: 30,
      start_order: 100,
      restart_on_failure: false,
      max_restarts: 3,
      restart_delay: 1,
      restart_delay_max: 30,
      restart_window: 60,
    },
    shutdown,
    logs: { max_size: 10 * 1024 * 1024, keep: 5 },
  };
}

/** A temp home, a context on it, and cleanup of every group started through `track`. */
async function withHome(
  fn: (ctx: DriverContext, dir: string, track: (pid: number) => void) => Promise<void>,
) {
  const dir = await mkdtemp(join(tmpdir(), "prov-binary-"));
  const ctx: DriverContext = {
    paths: statePaths(join(dir, "home")),
    env: { PATH: process.env.PATH },
  };
  const groups: number[] = [];
  try {
    await fn(ctx, dir, (pid) => groups.push(pid));
  } finally {
    for (const pgid of groups) {
      try {
        process.kill(-pgid, "SIGKILL");
      } catch { /* gone already */ }
      await waitGone(async () => (await groupMembers(pgid)).length > 0, 5000);
    }
    await rm(dir, { recursive: true, force: true });
  }
}

const readLog = (ctx: DriverContext, name: string) =>
  readFile(join(ctx.paths.logs, `${name}.log`), "utf8").catch(() => "");

async function collect(iter: AsyncIterable<string>): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of iter) lines.push(line);
  return lines;
}

const sh = (script: string, extra: Record<string, unknown> = {}) => ({
  binary_path: "/bin/sh",
  args: ["-c", script],
  ...extra,
});

Deno.test("binary.start() records pid, state and log with 0600 files in 0700 directories", async () => {
  await withHome(async (ctx, _dir, track) => {
    const svc = service("api", sh("echo hello from api; exec sleep 30"));
    const handle = await binaryDriver.start(svc, ctx) as BinaryHandle;
    track(handle.pid);
    assert.equal(await readPid(ctx.paths, "api"), handle.pid);
    const state = await readState(ctx.paths, "api");
    assert.equal(state?.status, "starting");
    assert.equal(state?.mode, "binary");
    assert.equal(state?.pid, handle.pid);
    assert.match(state?.pid_start ?? "", /^\d+$/);
    assert.equal(state?.restarts, 0);
    await until(async () => (await readLog(ctx, "api")).includes("hello from api"), "the log line");
    assert.match(
      await readLog(ctx, "api"),
      /^--- \d{4}-\d\d-\d\dT[\d:.]+Z starting api: \/bin\/sh -c echo/,
    );
    for (const f of ["pids/api.pid", "state/api.json", "logs/api.log"]) {
      assert.equal((await stat(join(ctx.paths.home, "services", f))).mode & 0o777, 0o600, f);
    }
    for (const d of [ctx.paths.pids, ctx.paths.state, ctx.paths.logs, ctx.paths.locks]) {
      assert.equal((await stat(d)).mode & 0o777, 0o700, d);
    }
    const status = await binaryDriver.status(svc, ctx);
    assert.equal(status.status, "starting");
    assert.equal(status.pid, handle.pid);
    await binaryDriver.stop(svc, ctx);
  });
});

Deno.test("binary.start() runs the service in its own session and process group", async () => {
  await withHome(async (ctx, _dir, track) => {
    const svc = service("grp", sh("exec sleep 30"));
    const { pid } = await binaryDriver.start(svc, ctx);
    track(pid!);
    const child = parseProcStat(await readFile(`/proc/${pid}/stat`, "utf8"))!;
    const own = parseProcStat(await readFile(`/proc/${process.pid}/stat`, "utf8"))!;
    assert.equal(child.pgid, pid);
    assert.equal(child.sid, pid);
    assert.notEqual(child.sid, own.sid);
    await binaryDriver.stop(svc, ctx);
  });
});

Deno.test("a started service outlives the CLI process that started it", async () => {
  await withHome(async (ctx, _dir, track) => {
    const code = `
      import driver from "./drivers/binary.ts";
      import { statePaths } from "./core/state.ts";
      const svc = { name: "bg", deployment: { mode: "binary", binary: { binary_path: "/bin/sleep", args: ["30"] } } };
      const h = await driver.start(svc, { paths: statePaths(${
      JSON.stringify(ctx.paths.home)
    }), env: {} });
      console.log(h.pid);`;
    const cli = spawnSync(Deno.execPath(), ["eval", "--ext=ts", code], {
      cwd: ROOT,
      encoding: "utf8",
    });
    assert.equal(cli.status, 0, cli.stderr);
    const pid = Number(cli.stdout.trim());
    track(pid);
    const svc = service("bg", { binary_path: "/bin/sleep", args: ["30"] });
    const status = await binaryDriver.status(svc, ctx);
    assert.equal(status.status, "starting");
    assert.equal(status.pid, pid);
    await binaryDriver.stop(svc, ctx);
    assert.equal(await isAlive(pid), false);
  });
});

Deno.test("env and env_file reach the child; env of the table wins over env_file", async () => {
  await withHome(async (ctx, dir, track) => {
    const envFile = join(dir, "api.env");
    await writeFile(
      envFile,
      [
        "# comment",
        "export FROM_FILE=file",
        "BOTH=from-file",
        "QUOTED='single # kept'",
        'ESCAPED="a\\tb"',
        "BARE=bare value # comment",
      ].join("\n"),
    );
    ctx.env.FROM_CTX = "ctx";
    const svc = service(
      "envy",
      sh(
        'printf "%s|%s|%s|%s|%s|%s\\n" "$FROM_CTX" "$FROM_FILE" "$BOTH" "$QUOTED" "$ESCAPED" "$BARE"; exec sleep 30',
        {
          env: { BOTH: "from-table" },
          env_file: envFile,
        },
      ),
    );
    const { pid } = await binaryDriver.start(svc, ctx);
    track(pid!);
    await until(async () => (await readLog(ctx, "envy")).includes("|"), "the printed environment");
    const lines = (await readLog(ctx, "envy")).trim().split("\n");
    assert.equal(lines.at(-1), "ctx|file|from-table|single # kept|a\tb|bare value");
    await binaryDriver.stop(svc, ctx);
  });
});

Deno.test("binary.stop() ends the service with SIGTERM and records the stop", async () => {
  await withHome(async (ctx, _dir, track) => {
    const svc = service("term", { binary_path: "sleep", args: ["30"] });
    const handle = await binaryDriver.start(svc, ctx) as BinaryHandle;
    track(handle.pid);
    await binaryDriver.stop(svc, ctx);
    assert.deepEqual(await waitExit(handle), { code: null, signal: "SIGTERM" });
    assert.equal(await readPid(ctx.paths, "term"), undefined);
    const state = await readState(ctx.paths, "term");
    assert.equal(state?.status, "stopped");
    assert.equal(state?.pid, undefined);
    assert.ok(state?.stopped_at);
    assert.equal(state?.last_exit?.signal, "SIGTERM");
    assert.equal((await binaryDriver.status(svc, ctx)).status, "stopped");
  });
});

Deno.test("binary.stop() SIGKILLs a service that ignores SIGTERM after shutdown.timeout", async () => {
  await withHome(async (ctx, dir, track) => {
    const script = join(dir, "stubborn.mjs");
    await writeFile(
      script,
      'process.on("SIGTERM", () => {}); console.log("ready"); setInterval(() => {}, 1000);\n',
    );
    const svc = service("stubborn", { binary_path: "node", args: [script] }, {
      signal: "SIGTERM",
      timeout: 1,
    });
    const handle = await binaryDriver.start(svc, ctx) as BinaryHandle;
    track(handle.pid);
    await until(
      async () => (await readLog(ctx, "stubborn")).includes("ready"),
      "the SIGTERM handler",
    );
    await binaryDriver.stop(svc, ctx);
    assert.deepEqual(await waitExit(handle), { code: null, signal: "SIGKILL" });
    assert.equal(await isAlive(handle.pid), false);
  });
});

Deno.test("binary.stop() leaves none of the service's grandchildren alive", async () => {
  await withHome(async (ctx, _dir, track) => {
    // The grandchildren inherit the ignored SIGTERM, so only the SIGKILL of the group ends them.
    const svc = service(
      "forks",
      sh("trap '' TERM; sleep 300 & sleep 300 & echo forked; wait"),
      { signal: "SIGTERM", timeout: 1 },
    );
    const { pid } = await binaryDriver.start(svc, ctx);
    track(pid!);
    await until(async () => (await groupMembers(pid!)).length === 3, "two grandchildren");
    const members = await groupMembers(pid!);
    await binaryDriver.stop(svc, ctx);
    for (const member of members) assert.equal(await isAlive(member), false, `pid ${member}`);
    assert.deepEqual(await groupMembers(pid!), []);
  });
});

Deno.test("binary.stop({force}) kills at once without waiting for shutdown.timeout", async () => {
  await withHome(async (ctx, _dir, track) => {
    const svc = service("forced", sh("trap '' TERM; echo up; exec sleep 300"), {
      signal: "SIGTERM",
      timeout: 600,
    });
    const handle = await binaryDriver.start(svc, ctx) as BinaryHandle;
    track(handle.pid);
    await binaryDriver.stop(svc, ctx, { force: true });
    assert.deepEqual(await waitExit(handle), { code: null, signal: "SIGKILL" });
  });
});

Deno.test("a service killed with kill -9 reads as failed and its PID file is removed", async () => {
  await withHome(async (ctx, _dir, track) => {
    const svc = service("crashy", { binary_path: "/bin/sleep", args: ["30"] });
    const handle = await binaryDriver.start(svc, ctx) as BinaryHandle;
    track(handle.pid);
    process.kill(handle.pid, "SIGKILL");
    assert.deepEqual(await waitExit(handle), { code: null, signal: "SIGKILL" });
    const status = await binaryDriver.status(svc, ctx);
    assert.equal(status.status, "failed");
    assert.equal(status.exit_signal, "SIGKILL");
    assert.equal(status.message, `Process ${handle.pid} was killed by SIGKILL`);
    assert.equal(await readPid(ctx.paths, "crashy"), undefined);
    const again = await binaryDriver.status(svc, ctx);
    assert.equal(again.status, "failed");
    await binaryDriver.stop(svc, ctx); // a stop of a dead service only tidies up
    assert.equal((await readState(ctx.paths, "crashy"))?.status, "failed");
  });
});

Deno.test("a recorded process that exited while nobody watched reads as failed", async () => {
  await withHome(async (ctx) => {
    const gone = Number(
      spawnSync("/bin/sh", ["-c", "echo $$"], { encoding: "utf8" }).stdout.trim(),
    );
    await ensureDirs(ctx.paths);
    await writeState(ctx.paths, {
      name: "lost",
      mode: "binary",
      status: "running",
      pid: gone,
      pid_start: "1",
      restarts: 1,
    });
    await writePid(ctx.paths, "lost", gone);
    const svc = service("lost", { binary_path: "/bin/true" });
    const status = await binaryDriver.status(svc, ctx);
    assert.deepEqual(
      { status: status.status, message: status.message, restarts: status.restarts },
      { status: "failed", message: `Process ${gone} exited while unwatched`, restarts: 1 },
    );
    assert.equal(await readPid(ctx.paths, "lost"), undefined);
    assert.equal((await readState(ctx.paths, "lost"))?.status, "failed");
  });
});

Deno.test("a stale PID file naming a foreign live process is cleaned and the process is never signalled", async () => {
  await withHome(async (ctx) => {
    const foreign = spawn("/bin/sleep", ["30"], { stdio: "ignore" });
    const exited = new Promise((r) => foreign.once("exit", r));
    try {
      const pid = foreign.pid!;
      await ensureDirs(ctx.paths);
      const stale = {
        name: "web",
        mode: "binary",
        status: "running" as const,
        pid,
        pid_start: "1",
        restarts: 0,
      };
      await writeState(ctx.paths, stale);
      await writePid(ctx.paths, "web", pid);
      const svc = service("web", { binary_path: "/bin/true" });
      const status = await binaryDriver.status(svc, ctx);
      assert.equal(status.status, "failed");
      assert.equal(
        status.message,
        `PID ${pid} belongs to another process (stale PID file removed)`,
      );
      assert.equal(await readPid(ctx.paths, "web"), undefined);

      await writeState(ctx.paths, stale);
      await writePid(ctx.paths, "web", pid);
      await binaryDriver.stop(svc, ctx, { force: true });
      assert.equal(await isAlive(pid), true, "the foreign process survives the stop");
      assert.equal(foreign.exitCode, null);
      assert.equal(await readPid(ctx.paths, "web"), undefined);
    } finally {
      foreign.kill("SIGKILL");
      await exited;
    }
  });
});

Deno.test("binary.start() refuses to start a service that is already running", async () => {
  await withHome(async (ctx, _dir, track) => {
    const svc = service("once", { binary_path: "/bin/sleep", args: ["30"] });
    const { pid } = await binaryDriver.start(svc, ctx);
    track(pid!);
    await assert.rejects(binaryDriver.start(svc, ctx), {
      message: `Cannot start "once": already running (pid ${pid})`,
    });
    await binaryDriver.stop(svc, ctx);
  });
});

Deno.test("binary.start() reports a missing binary as a pre-flight failure", async () => {
  await withHome(async (ctx) => {
    const svc = service("ghost", { binary_path: "/nonexistent/ghost" });
    await assert.rejects(binaryDriver.start(svc, ctx), (e: unknown) => {
      assert.ok(e instanceof ProvisioningError);
      assert.equal(e.message, 'Cannot start "ghost": binary "/nonexistent/ghost" not found');
      assert.equal(e.exitCode, ExitCode.preflight);
      return true;
    });
  });
});

Deno.test("binary.start() explains a script whose interpreter is missing", async () => {
  await withHome(async (ctx, dir) => {
    const script = join(dir, "broken.sh");
    await writeFile(script, "#!/nonexistent/interpreter\necho never\n", { mode: 0o755 });
    const svc = service("broken", { binary_path: script });
    const message =
      `Cannot start "broken": cannot execute "${script}": its interpreter (#! line) or loader is missing`;
    await assert.rejects(binaryDriver.start(svc, ctx), { message });
    const state = await readState(ctx.paths, "broken");
    assert.deepEqual([state?.status, state?.message], ["failed", message]);
    assert.match(await readLog(ctx, "broken"), /cannot execute/);
  });
});

Deno.test("a service that exits at once reports its exit code", async () => {
  await withHome(async (ctx) => {
    const svc = service("quick", sh("echo bye; exit 3"));
    try {
      const handle = await binaryDriver.start(svc, ctx) as BinaryHandle;
      assert.deepEqual(await waitExit(handle), { code: 3, signal: null });
      const status = await binaryDriver.status(svc, ctx);
      assert.equal(status.status, "failed");
      assert.equal(status.exit_code, 3);
    } catch (error) { // it may be gone before start() could record it
      assert.match((error as Error).message, /^Cannot start "quick": exited with code 3/);
      assert.equal((await readState(ctx.paths, "quick"))?.last_exit?.code, 3);
    }
  });
});

Deno.test("binary.preflight() finds the binary on PATH and reports what is missing", async () => {
  await withHome(async (ctx, dir) => {
    const plain = join(dir, "plain.txt");
    await writeFile(plain, "not a program");
    await chmod(plain, 0o644);
    const messages = async (binary: Record<string, unknown>) =>
      (await binaryDriver.preflight(service("p", binary), ctx)).map((f) =>
        `${f.ok ? "ok" : "FAIL"} ${f.message}`
      );

    const sleepPath = spawnSync("/bin/sh", ["-c", "command -v sleep"], { encoding: "utf8" }).stdout
      .trim();
    assert.deepEqual(await messages({ binary_path: "sleep" }), [`ok Binary found: ${sleepPath}`]);
    assert.deepEqual(await messages({ binary_path: "/bin/sh" }), ["ok Binary found: /bin/sh"]);
    assert.deepEqual(await messages({ binary_path: "/nope/x" }), [
      "FAIL Binary not found: /nope/x",
    ]);
    assert.deepEqual(await messages({ binary_path: plain }), [
      `FAIL Binary is not executable: ${plain}`,
    ]);
    assert.deepEqual(
      await messages({
        binary_path: "/bin/sh",
        working_dir: join(dir, "missing"),
        env_file: "x.env",
      }),
      [
        "ok Binary found: /bin/sh",
        `FAIL Working directory not found: ${join(dir, "missing")}`,
        `FAIL Env file not readable: ${join(dir, "missing", "x.env")}: ENOENT`,
      ],
    );
    const [notFound] = await binaryDriver.preflight(service("p", { binary_path: "/nope/x" }), ctx);
    assert.equal(notFound.hint, "Check binary_path in the registry");
  });
});

Deno.test("binary.logs() returns exactly the last N lines", async () => {
  await withHome(async (ctx) => {
    await ensureDirs(ctx.paths);
    const lines = Array.from({ length: 5000 }, (_, i) => `line ${i} ${"x".repeat(i % 50)}`);
    await writeFile(join(ctx.paths.logs, "api.log"), lines.join("\n") + "\n");
    const svc = service("api", { binary_path: "/bin/true" });
    assert.deepEqual(await collect(binaryDriver.logs(svc, ctx, { lines: 10 })), lines.slice(-10));
    assert.deepEqual(
      await collect(binaryDriver.logs(svc, ctx, { lines: 3000 })),
      lines.slice(-3000),
    );
    assert.equal((await collect(binaryDriver.logs(svc, ctx))).length, 50);
    assert.deepEqual(await collect(binaryDriver.logs(svc, ctx, { lines: 9999 })), lines);
    assert.deepEqual(
      await collect(binaryDriver.logs(service("none", { binary_path: "/bin/true" }), ctx)),
      [],
    );
  });
});

Deno.test("binary.logs({follow}) yields appended lines across truncation and rotation, then ends on abort", async () => {
  await withHome(async (ctx) => {
    await ensureDirs(ctx.paths);
    const file = join(ctx.paths.logs, "api.log");
    await writeFile(file, "old 1\nold 2\n");
    const svc = service("api", { binary_path: "/bin/true" });
    const abort = new AbortController();
    const seen: string[] = [];
    const done = (async () => {
      for await (
        const line of binaryDriver.logs(svc, ctx, { lines: 1, follow: true, signal: abort.signal })
      ) {
        seen.push(line);
      }
    })();
    await until(() => seen.length === 1, "the tail");
    assert.deepEqual(seen, ["old 2"]);
    await appendFile(file, "new 1\nnew ");
    await appendFile(file, "2\n");
    await until(() => seen.length === 3, "appended lines");
    await writeFile(file, "after truncate\n");
    await until(() => seen.length === 4, "the line after truncation");
    await rename(file, `${file}.1`);
    await writeFile(file, "after rotate\n");
    await until(() => seen.length === 5, "the line after rotation");
    abort.abort();
    await done;
    assert.deepEqual(seen, ["old 2", "new 1", "new 2", "after truncate", "after rotate"]);
  });
});
