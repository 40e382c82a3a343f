import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  appendFile,
  chmod,
  mkdir,
  mkdtemp,
  readdir,
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
import { launch } from "../../core/lifecycle/launch.ts";
import { reconcile } from "../../core/lifecycle/reconcile.ts";
import { Platform } from "../../core/platform.ts";
import { PluginRegistry } from "../../core/plugins/registry.ts";
import {
  groupMembers,
  isAlive,
  parseProcStat,
  processStartTime,
  waitGone,
} from "../../core/process/identity.ts";
import { ensureDirs, statePaths } from "../../core/state/files.ts";
import { readPid, readState, StateStore } from "../../core/state/store.ts";
import type {
  DriverContext,
  Registry,
  RuntimeStatus,
  Service,
  StopOptions,
  StopResult,
} from "../../core/types.ts";
import { cgroupPids, killCgroup, removeCgroup } from "../../core/process/cgroup.ts";
import { tagged, tagOf } from "../../core/process/tree.ts";
import { cgroupPlace, homeId, SERVICE_ID_VARIABLE } from "../../drivers/binary/_track.ts";
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
      restart_with_dependencies: false,
    },
    shutdown,
    logs: { max_size: 10 * 1024 * 1024, keep: 5 },
  };
}

/**
 * A temp home, a context on it (its `cwd` is the temp directory, not this process's), and
 * cleanup of every group started through `track`.
 */
async function withHome(
  fn: (ctx: DriverContext, dir: string, track: (pid: number) => void) => Promise<void>,
) {
  const dir = await mkdtemp(join(tmpdir(), "prov-binary-"));
  const ctx: DriverContext = {
    paths: statePaths(join(dir, "home")),
    env: { PATH: process.env.PATH },
    cwd: dir,
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
    await dropCgroups(ctx);
    await rm(dir, { recursive: true, force: true });
  }
}

/** Kill and remove whatever cgroups the home's services left (a test that failed half-way). */
async function dropCgroups(ctx: DriverContext): Promise<void> {
  const place = cgroupPlace(ctx.paths, ctx.env, "x");
  if (!place) return;
  const dir = join(place.base, homeId(ctx.paths.home));
  for (const g of await readdir(dir).catch(() => [] as string[])) {
    if (!g.endsWith(".service")) continue;
    killCgroup(join(dir, g));
    await waitGone(() => Promise.resolve(cgroupPids(join(dir, g)).length > 0), 5000);
    removeCgroup(join(dir, g), place.base);
  }
}

/** The writer of the context's state, as the lifecycle has it. */
const storeOf = (ctx: DriverContext) => new StateStore(ctx.paths);

/** Start `svc` and record it, as the lifecycle does (the driver itself records nothing). */
async function launched(ctx: DriverContext, svc: Service): Promise<BinaryHandle> {
  return await launch(storeOf(ctx), binaryDriver, svc, ctx) as BinaryHandle;
}

/** Stop `svc` and record it, as the lifecycle does: stopping, the driver's stop, stopped. */
async function stopped(
  ctx: DriverContext,
  svc: Service,
  opts: StopOptions = {},
): Promise<StopResult> {
  const store = storeOf(ctx);
  if (await store.read(svc.name)) await store.stopping(svc.name);
  const r = await binaryDriver.stop(svc, ctx, opts) ?? {};
  await store.stopped(svc.name, svc.deployment.mode, { exit: r.exit });
  return r;
}

/** The explicit cleanup of a stale record (what start and stop run under the lock). */
async function reconciled(ctx: DriverContext, svc: Service): Promise<RuntimeStatus> {
  const registry: Registry = {
    file: "<inline>",
    source: "test",
    services: [svc],
    byName: new Map([[svc.name, svc]]),
  };
  const p = new Platform(registry, {
    plugins: new PluginRegistry([]),
    paths: ctx.paths,
    env: ctx.env,
    cwd: ctx.cwd,
  });
  return await reconcile(p, svc, binaryDriver, await binaryDriver.status(svc, ctx));
}

/** The state and PID files of `name` as they are on disk (to show that a call wrote nothing). */
async function recordOf(ctx: DriverContext, name: string) {
  const read = (file: string) => readFile(file, "utf8").catch(() => undefined);
  return {
    state: await read(join(ctx.paths.state, `${name}.json`)),
    pid: await read(join(ctx.paths.pids, `${name}.pid`)),
    dirs: [
      await readdir(ctx.paths.state).catch(() => []),
      await readdir(ctx.paths.pids).catch(() => []),
    ],
  };
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

/** A PID that existed a moment ago and is now gone (reaped). */
function deadPid(): number {
  return Number(spawnSync("/bin/sh", ["-c", "echo $$"], { encoding: "utf8" }).stdout.trim());
}

Deno.test("binary.start() reports pid, start time, group and log, and writes no state", async () => {
  await withHome(async (ctx, _dir, track) => {
    const svc = service("api", sh("echo hello from api; exec sleep 30"));
    const before = Date.now();
    const handle = await binaryDriver.start(svc, ctx) as BinaryHandle;
    track(handle.pid);
    assert.equal(handle.pid_start, await processStartTime(handle.pid));
    const { cgroup, marker, ...data } = handle.data;
    const { log_writer, ...rest } = data;
    assert.deepEqual(rest, { pgid: handle.pid, log: join(ctx.paths.logs, "api.log") });
    assert.ok(log_writer && log_writer.pid > 0, "its output goes through a log writer");
    assert.match(marker, new RegExp(`^${homeId(ctx.paths.home)}:api:[0-9a-f]{12}$`));
    assert.equal(tagOf(handle.pid, SERVICE_ID_VARIABLE), marker, "the child carries its marker");
    if (cgroup) assert.equal(cgroup, cgroupPlace(ctx.paths, ctx.env, "api")?.dir);
    const started = Date.parse(handle.started_at ?? "");
    assert.ok(started >= before - 1 && started <= Date.now(), handle.started_at);
    assert.ok(handle.exited instanceof Promise);
    assert.deepEqual(await readdir(ctx.paths.state), [], "the driver records nothing");
    assert.deepEqual(await readdir(ctx.paths.pids), []);
    await until(async () => (await readLog(ctx, "api")).includes("hello from api"), "the log line");
    // Without a record, status still finds it by its marker (or cgroup): it runs.
    assert.deepEqual(await binaryDriver.status(svc, ctx), {
      status: "running",
      pid: handle.pid,
      restarts: 0,
      message: `Found pid ${handle.pid} of this service without a record`,
    });
    // And a stop without a record ends it.
    assert.deepEqual(await binaryDriver.stop(svc, ctx), {
      exit: { code: null, signal: "SIGTERM" },
    });
    assert.equal(await isAlive(handle.pid), false);
    assert.equal((await binaryDriver.status(svc, ctx)).status, "stopped");
  });
});

Deno.test("launch() records pid, state and log with 0600 files in 0700 directories", async () => {
  await withHome(async (ctx, _dir, track) => {
    const svc = service("api", sh("echo hello from api; exec sleep 30"));
    const handle = await launched(ctx, svc);
    track(handle.pid);
    assert.equal(await readPid(ctx.paths, "api"), handle.pid);
    const state = await readState(ctx.paths, "api");
    assert.equal(state?.status, "starting");
    assert.equal(state?.mode, "binary");
    assert.equal(state?.pid, handle.pid);
    assert.match(state?.pid_start ?? "", /^\d+$/);
    assert.equal(state?.pid_start, handle.pid_start);
    assert.equal(state?.started_at, handle.started_at);
    assert.deepEqual(state?.handle, handle.data);
    assert.equal(state?.restarts, 0);
    assert.equal(state?.by, `cli ${process.pid}`);
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
    assert.equal(status.stale, undefined);
    await stopped(ctx, svc);
  });
});

Deno.test("binary.start() runs the service in its own session and process group", async () => {
  await withHome(async (ctx, _dir, track) => {
    const svc = service("grp", sh("exec sleep 30"));
    const { pid, data } = await launched(ctx, svc);
    track(pid);
    const child = parseProcStat(await readFile(`/proc/${pid}/stat`, "utf8"))!;
    const own = parseProcStat(await readFile(`/proc/${process.pid}/stat`, "utf8"))!;
    assert.equal(child.pgid, pid);
    assert.equal(data.pgid, pid);
    assert.equal(child.sid, pid);
    assert.notEqual(child.sid, own.sid);
    await stopped(ctx, svc);
  });
});

Deno.test("the second start on, the service's launcher forks its log writer: its own session, outside the service's cgroup, group and environment", async () => {
  await withHome(async (ctx, _dir, track) => {
    ctx.env.SECRET_TOKEN = "s3cr3t-value";
    const svc = service("fork", sh("echo hello; exec sleep 30"));
    const first = await launched(ctx, svc); // the first spawn shows the child may enter cgroups
    track(first.pid);
    await stopped(ctx, svc);
    const handle = await launched(ctx, svc);
    track(handle.pid);
    const writer = handle.data.log_writer!;
    track(writer.pid);
    const stat = (pid: number) => readFile(`/proc/${pid}/stat`, "utf8").then(parseProcStat);
    const [leader, own, w] = [
      await stat(handle.pid),
      await stat(process.pid),
      await stat(writer.pid),
    ];
    // Where start() returns, both are where they will stay.
    assert.equal(leader!.sid, handle.pid);
    assert.equal(leader!.pgid, handle.pid);
    assert.notEqual(leader!.sid, own!.sid);
    // Started by the launcher, from a subshell that has exited: a child of neither.
    assert.notEqual(w!.ppid, handle.pid, "no child of the service (it may wait for all of them)");
    assert.notEqual(w!.ppid, process.pid, "not spawned by this process");
    assert.equal(w!.sid, writer.pid, "the writer leads a session of its own");
    assert.equal(w!.pgid, writer.pid);
    assert.equal(writer.start, w!.startTime);
    const environ = await readFile(`/proc/${writer.pid}/environ`, "utf8");
    assert.equal(tagOf(writer.pid, SERVICE_ID_VARIABLE), undefined, "no marker");
    assert.ok(!environ.includes("s3cr3t-value"), "none of the service's environment");
    // Exactly its own variables (what sh exports by itself, PWD, is cleared too).
    const names = environ.split("\0").filter(Boolean).map((kv) => kv.slice(0, kv.indexOf("=")));
    const its = ["LC_ALL", "PATH", "PROVISIONING_HOME", "PROVISIONING_LOG_WRITER"];
    assert.deepEqual(names.filter((n) => !["LD_PRELOAD", "_STDBUF_O"].includes(n)).sort(), its);
    const cgroupOf = (pid: number) => readFile(`/proc/${pid}/cgroup`, "utf8");
    if (handle.data.cgroup) {
      assert.notEqual(await cgroupOf(writer.pid), await cgroupOf(handle.pid));
      assert.ok(
        !cgroupPids(handle.data.cgroup).includes(writer.pid),
        "not in the service's cgroup",
      );
    }
    // It holds no write end of its FIFO, so it ends once the service has, after the last line.
    await until(async () => (await readLog(ctx, "fork")).includes("hello"), "the line in the log");
    await stopped(ctx, svc);
    await until(
      () => isAlive(writer.pid, writer.start).then((alive) => !alive),
      "the writer's end",
    );
  });
});

Deno.test("a service gets its own values of the names its launcher uses (fifo, procs, home...)", async () => {
  await withHome(async (ctx, _dir, track) => {
    const env = Object.fromEntries(
      ["fifo", "procs", "names", "env", "setsid", "home", "preload", "IFS_", "__pv"].map((n) => [
        n,
        `own-${n}`,
      ]),
    );
    const print = Object.keys(env).map((n) => `${n}=$${n}`).join(" ");
    const svc = service("names", { ...sh(`echo "${print}"; exec sleep 30`), env });
    const expected = Object.entries(env).map(([k, v]) => `${k}=${v}`).join(" ");
    for (let i = 0; i < 2; i++) { // the second start is the launcher's (see above)
      const handle = await launched(ctx, svc);
      track(handle.pid);
      await until(
        async () => (await readLog(ctx, "names")).split(expected).length === i + 2,
        "the service's own values in its log",
      );
      await stopped(ctx, svc);
    }
  });
});

Deno.test("a service that waits for all of its children is not kept waiting by its log writer", async () => {
  await withHome(async (ctx, _dir, track) => {
    // wait(2) for any child until there are none, as pre-fork servers do before they exit.
    // (Its line is put together, so the command line in the log's "starting" note is not it.)
    const script = '$| = 1; 1 while wait() != -1; print "no child", "ren left\\n"; sleep 30';
    const svc = service("reaper", { binary_path: "/usr/bin/perl", args: ["-e", script] });
    for (let i = 0; i < 2; i++) { // the second start is the launcher's (see above)
      const handle = await launched(ctx, svc);
      track(handle.pid);
      await until(
        async () => (await readLog(ctx, "reaper")).split("no children left").length === i + 2,
        "the service to find no child of its own",
      );
      await stopped(ctx, svc);
    }
  });
});

Deno.test("relative binary_path and working_dir resolve against ctx.cwd, not process.cwd()", async () => {
  await withHome(async (ctx, dir, track) => {
    await mkdir(join(dir, "app"));
    await writeFile(join(dir, "app", "run.sh"), '#!/bin/sh\necho "cwd=$(pwd)"\nexec sleep 30\n', {
      mode: 0o755,
    });
    assert.notEqual(process.cwd(), dir);
    const svc = service("rel", { binary_path: "./run.sh", working_dir: "app" });
    assert.deepEqual(
      (await binaryDriver.preflight(svc, ctx)).map((f) => f.message),
      [
        `Binary found: ${join(dir, "app", "run.sh")}`,
        `Working directory found: ${join(dir, "app")}`,
      ],
    );
    const { pid } = await launched(ctx, svc);
    track(pid);
    await until(async () => (await readLog(ctx, "rel")).includes("cwd="), "the printed cwd");
    assert.match(await readLog(ctx, "rel"), new RegExp(`^cwd=${join(dir, "app")}$`, "m"));
    await stopped(ctx, svc);
  });
});

Deno.test("a started service outlives the CLI process that started it", async () => {
  await withHome(async (ctx, _dir, track) => {
    const code = `
      import driver from "./drivers/binary.ts";
      import { launch } from "./core/lifecycle/launch.ts";
      import { statePaths } from "./core/state/files.ts";
      import { StateStore } from "./core/state/store.ts";
      const paths = statePaths(${JSON.stringify(ctx.paths.home)});
      const svc = { name: "bg", deployment: { mode: "binary", binary: { binary_path: "/bin/sleep", args: ["30"] } } };
      const h = await launch(new StateStore(paths), driver, svc, { paths, env: {}, cwd: ${
      JSON.stringify(ctx.cwd)
    }});
      console.log(h.pid, process.pid);`;
    const cli = spawnSync(Deno.execPath(), ["eval", "--ext=ts", code], {
      cwd: ROOT,
      encoding: "utf8",
    });
    assert.equal(cli.status, 0, cli.stderr);
    const [pid, cliPid] = cli.stdout.trim().split(" ").map(Number);
    track(pid);
    assert.equal(await isAlive(cliPid), false, "the CLI is gone");
    const svc = service("bg", { binary_path: "/bin/sleep", args: ["30"] });
    const status = await binaryDriver.status(svc, ctx);
    assert.equal(status.status, "starting");
    assert.equal(status.pid, pid);
    assert.equal((await readState(ctx.paths, "bg"))?.by, `cli ${cliPid}`);
    await stopped(ctx, svc);
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
    const { pid } = await launched(ctx, svc);
    track(pid);
    // The child's line, not the banner (which quotes the command, "|" and all).
    await until(
      async () => (await readLog(ctx, "envy")).includes("\nctx|"),
      "the printed environment",
    );
    const lines = (await readLog(ctx, "envy")).trim().split("\n");
    assert.equal(lines.at(-1), "ctx|file|from-table|single # kept|a\tb|bare value");
    await stopped(ctx, svc);
  });
});

Deno.test("binary.stop() ends the service with SIGTERM, writes nothing, and the stop is recorded", async () => {
  await withHome(async (ctx, _dir, track) => {
    const svc = service("term", { binary_path: "sleep", args: ["30"] });
    const handle = await launched(ctx, svc);
    track(handle.pid);
    const store = storeOf(ctx);
    await store.stopping("term");
    const before = await recordOf(ctx, "term");
    const r = await binaryDriver.stop(svc, ctx);
    assert.deepEqual(await waitExit(handle), { code: null, signal: "SIGTERM" });
    assert.deepEqual(r, { exit: { code: null, signal: "SIGTERM" } });
    assert.deepEqual(await recordOf(ctx, "term"), before, "the driver's stop writes nothing");
    assert.equal(await readPid(ctx.paths, "term"), handle.pid);

    await store.stopped("term", "binary", { exit: r?.exit });
    assert.equal(await readPid(ctx.paths, "term"), undefined);
    const state = await readState(ctx.paths, "term");
    assert.equal(state?.status, "stopped");
    assert.equal(state?.pid, undefined);
    assert.ok(state?.stopped_at);
    assert.equal(state?.last_exit?.signal, "SIGTERM");
    assert.equal((await binaryDriver.status(svc, ctx)).status, "stopped");
  });
});

Deno.test("the service marker in the environment cannot be set by ctx.env or the table", async () => {
  await withHome(async (ctx, _dir, track) => {
    ctx.env.PROVISIONING_SERVICE_ID = "forged:api:1";
    const svc = service("api", {
      binary_path: "/bin/sleep",
      args: ["30"],
      env: { PROVISIONING_SERVICE_ID: "forged:api:2" },
    });
    const handle = await launched(ctx, svc);
    track(handle.pid);
    assert.equal(tagOf(handle.pid, SERVICE_ID_VARIABLE), handle.data.marker);
    assert.match(handle.data.marker, new RegExp(`^${homeId(ctx.paths.home)}:api:`));
    await stopped(ctx, svc);
  });
});

Deno.test("where no cgroup can be made, the marker alone tracks the service and its children", async () => {
  await withHome(async (ctx, dir, track) => {
    ctx.env.PROVISIONING_CGROUP_ROOT = join(dir, "not-a-cgroup");
    const svc = service("plain", sh("sleep 300 & setsid sleep 300 & echo forked; wait"));
    const handle = await launched(ctx, svc);
    track(handle.pid);
    assert.equal(handle.data.cgroup, undefined);
    assert.deepEqual(await readdir(dir).then((e) => e.includes("not-a-cgroup")), false);
    const marked = () =>
      tagged(handle.data.marker, { variable: SERVICE_ID_VARIABLE }).map((p) => p.pid);
    await until(() => marked().length === 3, "the shell and its two children");
    const children = marked().filter((pid) => pid !== handle.pid);
    process.kill(handle.pid, "SIGKILL");
    await waitExit(handle);
    await stopped(ctx, svc);
    for (const pid of children) assert.equal(await isAlive(pid), false, `pid ${pid}`);
  });
});

Deno.test("binary.stop() sends the shutdown signal once to each process of the service", async () => {
  await withHome(async (ctx, dir, track) => {
    // Parent and child each count the SIGTERMs they get (some programs take a second one as
    // "quit now"), and exit a moment after the first.
    const script = join(dir, "count.mjs");
    await writeFile(
      script,
      `import { spawn } from "node:child_process";
let n = 0;
process.on("SIGTERM", () => { console.log(\`\${process.argv[2]} term \${++n}\`); setTimeout(() => process.exit(0), 300); });
if (process.argv[2] === "parent") spawn(process.execPath, [process.argv[1], "child"], { stdio: "inherit" });
console.log(\`\${process.argv[2]} ready\`);
setInterval(() => {}, 1000);
`,
    );
    const svc = service("count", { binary_path: "node", args: [script, "parent"] });
    const handle = await launched(ctx, svc);
    track(handle.pid);
    await until(async () => (await readLog(ctx, "count")).includes("child ready"), "both ready");
    await stopped(ctx, svc);
    const log = await readLog(ctx, "count");
    assert.match(log, /^parent term 1$/m);
    assert.match(log, /^child term 1$/m);
    assert.doesNotMatch(log, /term 2/);
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
    const handle = await launched(ctx, svc);
    track(handle.pid);
    await until(
      async () => (await readLog(ctx, "stubborn")).includes("ready"),
      "the SIGTERM handler",
    );
    const r = await stopped(ctx, svc);
    assert.deepEqual(await waitExit(handle), { code: null, signal: "SIGKILL" });
    assert.equal(r.killed, true, "it took SIGKILL");
    assert.equal(await isAlive(handle.pid), false);
    assert.equal((await readState(ctx.paths, "stubborn"))?.status, "stopped");
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
    const { pid } = await launched(ctx, svc);
    track(pid);
    await until(async () => (await groupMembers(pid)).length === 3, "two grandchildren");
    const members = await groupMembers(pid);
    await stopped(ctx, svc);
    for (const member of members) assert.equal(await isAlive(member), false, `pid ${member}`);
    assert.deepEqual(await groupMembers(pid), []);
  });
});

Deno.test("binary.stop({force}) kills at once without waiting for shutdown.timeout", async () => {
  await withHome(async (ctx, _dir, track) => {
    const svc = service("forced", sh("trap '' TERM; echo up; exec sleep 300"), {
      signal: "SIGTERM",
      timeout: 600,
    });
    const handle = await launched(ctx, svc);
    track(handle.pid);
    const r = await stopped(ctx, svc, { force: true });
    assert.deepEqual(await waitExit(handle), { code: null, signal: "SIGKILL" });
    assert.notEqual(r.killed, true, "no graceful signal was tried, so none failed");
  });
});

Deno.test("a service killed with kill -9 reads as failed and stale; reconcile records it and removes its PID file", async () => {
  await withHome(async (ctx, _dir, track) => {
    const svc = service("crashy", { binary_path: "/bin/sleep", args: ["30"] });
    const handle = await launched(ctx, svc);
    track(handle.pid);
    process.kill(handle.pid, "SIGKILL");
    assert.deepEqual(await waitExit(handle), { code: null, signal: "SIGKILL" });
    const before = await recordOf(ctx, "crashy");
    const status = await binaryDriver.status(svc, ctx);
    assert.equal(status.status, "failed");
    assert.equal(status.stale, true);
    assert.equal(status.exit_signal, "SIGKILL");
    assert.equal(status.message, `Process ${handle.pid} killed by SIGKILL`);
    // A read: the record and the PID file stay as they were.
    assert.deepEqual(await recordOf(ctx, "crashy"), before);
    assert.equal(await readPid(ctx.paths, "crashy"), handle.pid);
    assert.equal((await readState(ctx.paths, "crashy"))?.status, "starting");

    const after = await reconciled(ctx, svc);
    assert.deepEqual(
      [after.status, after.stale, after.message, after.exit_signal, after.pid],
      ["failed", undefined, `Process ${handle.pid} killed by SIGKILL`, "SIGKILL", undefined],
    );
    assert.equal(await readPid(ctx.paths, "crashy"), undefined);
    const state = await readState(ctx.paths, "crashy");
    assert.deepEqual(
      [state?.status, state?.pid, state?.message, state?.last_exit?.signal],
      ["failed", undefined, `Process ${handle.pid} killed by SIGKILL`, "SIGKILL"],
    );
    const again = await binaryDriver.status(svc, ctx);
    assert.deepEqual([again.status, again.stale], ["failed", undefined]);
    // A stop of a dead service has nothing to signal and nothing to write.
    const recorded = await recordOf(ctx, "crashy");
    assert.deepEqual(await binaryDriver.stop(svc, ctx), {});
    assert.deepEqual(await recordOf(ctx, "crashy"), recorded);
    assert.equal((await readState(ctx.paths, "crashy"))?.status, "failed");
  });
});

Deno.test("a recorded process that exited while nobody watched reads as failed; reconcile records it", async () => {
  await withHome(async (ctx) => {
    const gone = deadPid();
    const store = storeOf(ctx);
    await store.starting("lost", "binary", { pid: gone, pid_start: "1", restart: true });
    await store.running("lost");
    const svc = service("lost", { binary_path: "/bin/true" });
    const status = await binaryDriver.status(svc, ctx);
    const message = `Process ${gone} exited while no supervisor watched it`;
    assert.deepEqual(
      {
        status: status.status,
        stale: status.stale,
        message: status.message,
        restarts: status.restarts,
      },
      { status: "failed", stale: true, message, restarts: 1 },
    );
    assert.equal(await readPid(ctx.paths, "lost"), gone, "a read leaves the PID file");
    assert.equal((await readState(ctx.paths, "lost"))?.status, "running");

    const after = await reconciled(ctx, svc);
    assert.deepEqual([after.status, after.stale, after.message], ["failed", undefined, message]);
    assert.equal(await readPid(ctx.paths, "lost"), undefined);
    const state = await readState(ctx.paths, "lost");
    assert.deepEqual(
      [state?.status, state?.pid, state?.message, state?.restarts],
      ["failed", undefined, message, 1],
    );
  });
});

Deno.test("a stopping service whose process is gone reads as stopped; reconcile records the stop", async () => {
  await withHome(async (ctx) => {
    const gone = deadPid();
    const store = storeOf(ctx);
    await store.starting("halt", "binary", { pid: gone, pid_start: "1" });
    await store.stopping("halt");
    const svc = service("halt", { binary_path: "/bin/true" });
    const status = await binaryDriver.status(svc, ctx);
    assert.deepEqual([status.status, status.stale], ["stopped", true]);
    assert.equal(await readPid(ctx.paths, "halt"), gone);
    const after = await reconciled(ctx, svc);
    assert.deepEqual([after.status, after.stale], ["stopped", undefined]);
    assert.equal(await readPid(ctx.paths, "halt"), undefined);
    assert.equal((await readState(ctx.paths, "halt"))?.status, "stopped");
  });
});

Deno.test("a stale PID naming a foreign live process is reported, never signalled, and cleaned by reconcile", async () => {
  await withHome(async (ctx) => {
    const foreign = spawn("/bin/sleep", ["30"], { stdio: "ignore" });
    const exited = new Promise((r) => foreign.once("exit", r));
    try {
      const pid = foreign.pid!;
      const store = storeOf(ctx);
      const belongs = `PID ${pid} belongs to another process (stale PID file)`;

      // A record of that PID without a start time to tell whose it is.
      await store.starting("web", "binary", { pid });
      await store.running("web");
      const svc = service("web", { binary_path: "/bin/true" });
      const status = await binaryDriver.status(svc, ctx);
      assert.deepEqual(
        [status.status, status.stale, status.message],
        ["failed", true, belongs],
      );
      assert.equal(await readPid(ctx.paths, "web"), pid, "a read leaves the PID file");
      const before = await recordOf(ctx, "web");
      assert.deepEqual(await binaryDriver.stop(svc, ctx, { force: true }), {});
      assert.equal(await isAlive(pid), true, "the foreign process survives the stop");
      assert.equal(foreign.exitCode, null);
      assert.deepEqual(await recordOf(ctx, "web"), before, "the stop writes nothing");
      const after = await reconciled(ctx, svc);
      assert.deepEqual([after.status, after.stale, after.message], ["failed", undefined, belongs]);
      assert.equal(await readPid(ctx.paths, "web"), undefined);

      // A PID file an outsider left, with no record at all.
      await ensureDirs(ctx.paths);
      await writeFile(join(ctx.paths.pids, "api.pid"), `${pid}\n`);
      const api = service("api", { binary_path: "/bin/true" });
      const orphan = await binaryDriver.status(api, ctx);
      assert.deepEqual([orphan.status, orphan.stale, orphan.message], ["stopped", true, belongs]);
      assert.deepEqual(await binaryDriver.stop(api, ctx, { force: true }), {});
      assert.equal(await readPid(ctx.paths, "api"), pid);
      await reconciled(ctx, api);
      assert.equal(await readPid(ctx.paths, "api"), undefined);
      assert.equal((await readState(ctx.paths, "api"))?.status, "stopped");

      // A record naming the PID with another start time: the PID was reused.
      await store.starting("db", "binary", { pid, pid_start: "1" });
      await store.running("db");
      const db = service("db", { binary_path: "/bin/true" });
      const reused = await binaryDriver.status(db, ctx);
      assert.deepEqual([reused.status, reused.stale, reused.pid], ["failed", true, undefined]);
      assert.deepEqual(await binaryDriver.stop(db, ctx, { force: true }), {});
      await reconciled(ctx, db);
      assert.equal(await readPid(ctx.paths, "db"), undefined);

      assert.equal(await isAlive(pid), true, "nothing ever signalled the foreign process");
      assert.equal(foreign.exitCode, null);
    } finally {
      foreign.kill("SIGKILL");
      await exited;
    }
  });
});

Deno.test("binary.start() refuses to start a service that is already running", async () => {
  await withHome(async (ctx, _dir, track) => {
    const svc = service("once", { binary_path: "/bin/sleep", args: ["30"] });
    const { pid } = await launched(ctx, svc);
    track(pid);
    const before = await recordOf(ctx, "once");
    await assert.rejects(binaryDriver.start(svc, ctx), {
      message: `Cannot start "once": already running (pid ${pid})`,
    });
    await assert.rejects(launch(storeOf(ctx), binaryDriver, svc, ctx), {
      message: `Cannot start "once": already running (pid ${pid})`,
    });
    assert.deepEqual(await recordOf(ctx, "once"), before, "a refused start records nothing");
    await stopped(ctx, svc);
  });
});

Deno.test("binary.start() reports a missing binary as a pre-flight failure and records nothing", async () => {
  await withHome(async (ctx) => {
    const svc = service("ghost", { binary_path: "/nonexistent/ghost" });
    await assert.rejects(launch(storeOf(ctx), binaryDriver, svc, ctx), (e: unknown) => {
      assert.ok(e instanceof ProvisioningError);
      assert.equal(e.message, 'Cannot start "ghost": binary "/nonexistent/ghost" not found');
      assert.equal(e.exitCode, ExitCode.preflight);
      return true;
    });
    assert.equal(await readState(ctx.paths, "ghost"), undefined);
    assert.equal(await readPid(ctx.paths, "ghost"), undefined);
  });
});

Deno.test("binary.start() explains a script whose interpreter is missing and records nothing", async () => {
  await withHome(async (ctx, dir) => {
    const script = join(dir, "broken.sh");
    await writeFile(script, "#!/nonexistent/interpreter\necho never\n", { mode: 0o755 });
    const svc = service("broken", { binary_path: script });
    const message =
      `Cannot start "broken": cannot execute "${script}": its interpreter (#! line) or loader is missing`;
    await assert.rejects(launch(storeOf(ctx), binaryDriver, svc, ctx), (e: unknown) => {
      assert.ok(e instanceof ProvisioningError);
      assert.equal(e.message, message);
      return true;
    });
    // The lifecycle records the failure (with this message); the driver does not.
    assert.equal(await readState(ctx.paths, "broken"), undefined);
    assert.equal(await readPid(ctx.paths, "broken"), undefined);
    // Found before anything was spawned (pre-flight reads the #! line): nothing was logged.
    assert.equal(await readLog(ctx, "broken"), "");
    const findings = await binaryDriver.preflight(svc, ctx);
    assert.match(findings.find((f) => !f.ok)?.message ?? "", /needs \/nonexistent\/interpreter/);
  });
});

Deno.test("a service that exits at once reports its exit code", async () => {
  await withHome(async (ctx) => {
    const svc = service("quick", sh("echo bye; exit 3"));
    try {
      const handle = await launched(ctx, svc);
      assert.deepEqual(await waitExit(handle), { code: 3, signal: null });
      const status = await binaryDriver.status(svc, ctx);
      assert.equal(status.status, "failed");
      assert.equal(status.stale, true);
      assert.equal(status.exit_code, 3);
      assert.equal(status.message, `Process ${handle.pid} exited with code 3`);
    } catch (error) { // it may be gone before start() could take its start time
      if (error instanceof assert.AssertionError) throw error;
      assert.match((error as Error).message, /^Cannot start "quick": exited with code 3/);
      assert.equal(await readState(ctx.paths, "quick"), undefined, "nothing recorded");
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
