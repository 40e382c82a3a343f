/**
 * The shipped `shell` driver, for real: commands run by /bin/sh, a redis-server that daemonizes
 * itself (skipped when redis-server is not installed), background processes, pid files.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServices } from "../../core/lifecycle/start.ts";
import { stopServices } from "../../core/lifecycle/stop.ts";
import { Platform } from "../../core/platform.ts";
import { PluginRegistry } from "../../core/plugins/registry.ts";
import type { Driver } from "../../core/types.ts";
import { pidGone, waitFor } from "../checks/_helpers.ts";
import { findProgram } from "../_plugin_helpers.ts";

const REDIS = findProgram("redis-server", ["/usr/bin/redis-server"]);
if (!REDIS) console.warn("shell driver redis test skipped: redis-server is not installed");

/** A temp dir with a registry of shell services; kills what the services left on dispose. */
async function sandbox(toml: (dir: string) => string) {
  const dir = mkdtempSync(join(tmpdir(), "prov-shell-"));
  writeFileSync(join(dir, "services.toml"), toml(dir));
  const env = { PATH: process.env.PATH, HOME: dir };
  const p = await Platform.open({
    config: join(dir, "services.toml"),
    home: join(dir, "home"),
    env,
    plugins: PluginRegistry.discover({ cwd: dir, home: join(dir, "home"), env }),
  });
  const driver = await p.plugins.driver("shell");
  return {
    dir,
    p,
    driver,
    ctx: p.context(),
    /** The PID written to `<dir>/<file>`. */
    pid: (file = "pid") => Number(readFileSync(join(dir, file), "utf8").trim()),
    async [Symbol.asyncDispose]() {
      for (const file of ["pid", "pid2", "redis.pid"]) {
        try {
          const pid = Number(readFileSync(join(dir, file), "utf8").trim());
          if (pid > 0 && !(await pidGone(pid))) process.kill(pid, "SIGKILL");
          await waitFor(() => pidGone(pid), `pid ${pid} gone`);
        } catch { /* no such file, or gone */ }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `[services.NAME]` with mode shell and the given shell table and extra tables. */
function service(name: string, shell: Record<string, unknown>, extra = ""): string {
  const value = (v: unknown): string =>
    typeof v === "object" && v !== null
      ? `{ ${Object.entries(v).map(([k, x]) => `${k} = ${value(x)}`).join(", ")} }`
      : JSON.stringify(v);
  const lines = Object.entries(shell).map(([k, v]) => `${k} = ${value(v)}`);
  return `[services.${name}.deployment]\nmode = "shell"\n` +
    `[services.${name}.deployment.shell]\n${lines.join("\n")}\n${extra}\n`;
}

/** A service that starts `sleep 300` in the background of its start command. */
const sleeper = (dir: string, name: string, pidFile: string, extra: Record<string, unknown> = {}) =>
  service(name, {
    start: `echo launching; sleep 300 & echo $! > ${pidFile}`,
    stop: `kill $(cat ${pidFile})`,
    status: `kill -0 $(cat ${pidFile})`,
    working_dir: dir,
    ...extra,
  });

Deno.test({
  name: "shell driver runs a redis-server that daemonizes itself: healthy, pid, logs, stop",
  ignore: !REDIS,
  async fn() {
    const { createServer } = await import("node:net");
    const probe = createServer();
    const port = await new Promise<number>((resolve) =>
      probe.listen(0, "127.0.0.1", () => resolve((probe.address() as { port: number }).port))
    );
    await new Promise((resolve) => probe.close(resolve));
    await using sb = await sandbox((dir) =>
      service(
        "cache",
        {
          start: `${REDIS} --port ${port} --bind 127.0.0.1 --daemonize yes --save '' ` +
            `--appendonly no --dir ${dir} --pidfile ${dir}/redis.pid --logfile ${dir}/redis.log`,
          stop: `kill $(cat ${dir}/redis.pid)`,
          status: `kill -0 $(cat ${dir}/redis.pid)`,
          logs: `tail -n $PROVISIONING_LOG_LINES ${dir}/redis.log`,
          pid_file: `${dir}/redis.pid`,
        },
        `[services.cache.health_check]
type = "tcp"
[services.cache.health_check.tcp]
host = "127.0.0.1"
port = ${port}`,
      )
    );
    const up = await startServices(sb.p, ["cache"]);
    assert.equal(up.ok, true, JSON.stringify(up.outcomes));
    const status = await sb.p.status("cache");
    assert.equal(status.status, "running");
    assert.equal(status.health, "healthy");
    assert.equal(status.pid, sb.pid("redis.pid"));
    const lines: string[] = [];
    for await (const line of sb.p.logs("cache", { lines: 20 })) lines.push(line);
    assert.ok(lines.some((l) => l.includes("Ready to accept connections")), lines.join("\n"));

    const pid = sb.pid("redis.pid");
    const down = await stopServices(sb.p, ["cache"]);
    assert.equal(down.ok, true, JSON.stringify(down.outcomes));
    await waitFor(() => pidGone(pid), "redis-server gone after stop");
    assert.equal((await sb.p.status("cache")).status, "stopped");
  },
});

Deno.test("a start command may leave a background process holding its output", async () => {
  await using sb = await sandbox((dir) => sleeper(dir, "bg", `${dir}/pid`));
  // If the driver waited for the command's output to close, this start would hang on `sleep
  // 300` until start_timeout (30 s) and fail.
  const up = await startServices(sb.p, ["bg"]);
  assert.equal(up.ok, true, JSON.stringify(up.outcomes));
  const pid = sb.pid();
  assert.equal((await sb.p.status("bg")).status, "running");
  const log: string[] = [];
  for await (const line of sb.p.logs("bg", { lines: 10 })) log.push(line);
  assert.ok(log.includes("launching"), log.join("\n"));
  assert.ok(log.some((l) => l.includes("starting bg: echo launching")), log.join("\n"));

  assert.equal((await stopServices(sb.p, ["bg"])).ok, true);
  await waitFor(() => pidGone(pid), "sleep gone after stop");
  assert.equal((await sb.p.status("bg")).status, "stopped");
});

Deno.test("a failing start command fails the start with its exit code and last line", async () => {
  await using sb = await sandbox(() =>
    service("broken", { start: "echo cannot bind port >&2; exit 3", stop: "true", status: "false" })
  );
  const r = await startServices(sb.p, ["broken"]);
  assert.equal(r.ok, false);
  assert.equal(
    r.outcomes[0].message,
    'Cannot start "broken": start command exited with code 3: cannot bind port',
  );
});

Deno.test("a start whose status never says running fails, naming the status command", async () => {
  await using sb = await sandbox(() =>
    service(
      "liar",
      { start: "true", stop: "true", status: "exit 4" },
      `
[services.liar.startup]
start_timeout = 0.3`,
    )
  );
  const r = await startServices(sb.p, ["liar"]);
  assert.equal(r.ok, false);
  assert.equal(
    r.outcomes[0].message,
    'Cannot start "liar": the start command succeeded but the status command does not report ' +
      "it running (status command exited with code 4)",
  );
});

Deno.test("status turns failed when a service we started is gone behind our back", async () => {
  await using sb = await sandbox((dir) => sleeper(dir, "bg", `${dir}/pid`));
  assert.equal((await startServices(sb.p, ["bg"])).ok, true);
  const pid = sb.pid();
  process.kill(pid, "SIGKILL");
  // `kill -0` still succeeds on the zombie until PID 1 reaps it: poll the status command's view.
  let status = await sb.p.status("bg");
  await waitFor(async () => (status = await sb.p.status("bg")).status !== "running", "not running");
  assert.equal(status.status, "failed");
  assert.match(status.message!, /^Not running any more: the status command exits \d+$/);
});

Deno.test("a missing program fails pre-flight and makes status failed, not stopped", async () => {
  await using sb = await sandbox(() =>
    service("ghost", {
      start: "no-such-program-x1 --up",
      stop: "true",
      status: "no-such-program-x1",
    })
  );
  const svc = sb.p.service("ghost");
  const findings = await sb.driver.preflight(svc, sb.ctx);
  assert.deepEqual(findings.filter((f) => !f.ok).map((f) => f.message), [
    'Program "no-such-program-x1" of the start command not found',
  ]);
  const status = await sb.driver.status(svc, sb.ctx);
  assert.deepEqual(status, {
    status: "failed",
    message: "status command failed: command not found (exit 127)",
  });
});

Deno.test("stop falls back to SIGKILL of the pid_file when the stop command does not stop it", async () => {
  await using sb = await sandbox((dir) =>
    sleeper(dir, "stubborn", `${dir}/pid`, { stop: "echo ignoring", pid_file: `${dir}/pid` }) +
    `[services.stubborn.shutdown]\ntimeout = 0.2\n` +
    sleeper(dir, "nopid", `${dir}/pid2`, { stop: "echo ignoring" }) +
    `[services.nopid.shutdown]\ntimeout = 0.2\n`
  );
  assert.equal((await startServices(sb.p, ["stubborn", "nopid"])).ok, true);
  const pid = sb.pid();
  await sb.driver.stop(sb.p.service("stubborn"), sb.ctx);
  await waitFor(() => pidGone(pid), "killed through its pid_file");
  await assert.rejects(
    sb.driver.stop(sb.p.service("nopid"), sb.ctx),
    /^ProvisioningError: Cannot stop "nopid": the status command still reports it running 1s after the stop command$/,
  );
});

Deno.test("a logs command gets the line count, and following stops when the signal aborts", async () => {
  await using sb = await sandbox((dir) =>
    service("talker", {
      start: "true",
      stop: "true",
      status: "true",
      logs: 'seq 1 100 | tail -n $PROVISIONING_LOG_LINES; [ "$PROVISIONING_LOG_FOLLOW" = 0 ] || ' +
        `{ sleep 300 & echo $! > ${dir}/pid; echo following; wait; }`,
    })
  );
  const svc = sb.p.service("talker");
  const last: string[] = [];
  for await (const line of sb.driver.logs(svc, sb.ctx, { lines: 3 })) last.push(line);
  assert.deepEqual(last, ["98", "99", "100"]);

  const ac = new AbortController();
  const followed: string[] = [];
  for await (
    const line of sb.driver.logs(svc, sb.ctx, { lines: 2, follow: true, signal: ac.signal })
  ) {
    followed.push(line);
    if (line === "following") ac.abort();
  }
  assert.deepEqual(followed, ["99", "100", "following"]);
  const pid = sb.pid(); // written before "following"
  await waitFor(() => pidGone(pid), "the follow command's children are killed");
});

Deno.test("commands run in working_dir with env and PROVISIONING_SERVICE", async () => {
  await using sb = await sandbox((dir) =>
    service("envy", {
      start: 'pwd > out.txt; echo "$GREETING $PROVISIONING_SERVICE" >> out.txt',
      stop: "rm out.txt",
      status: "test -f out.txt",
      working_dir: dir,
      env: { GREETING: "hello" },
    })
  );
  assert.equal((await startServices(sb.p, ["envy"])).ok, true);
  assert.equal(readFileSync(join(sb.dir, "out.txt"), "utf8"), `${sb.dir}\nhello envy\n`);
  assert.equal((await stopServices(sb.p, ["envy"])).ok, true);
  assert.equal((await sb.p.status("envy")).status, "stopped");
});

Deno.test("shell config requires start, stop and status and rejects unknown keys", async () => {
  const driver: Driver = (await import("../../drivers/shell.ts")).default as Driver;
  for (
    const bad of [
      {},
      { start: "a", stop: "b" },
      { start: " ", stop: "b", status: "c" },
      { start: "a", stop: "b", status: "c", restart: "d" },
    ]
  ) {
    assert.equal(driver.config.safeParse(bad).success, false, JSON.stringify(bad));
  }
  assert.deepEqual(driver.config.parse({ start: "a", stop: "b", status: "c" }), {
    start: "a",
    stop: "b",
    status: "c",
    env: {},
  });
});
