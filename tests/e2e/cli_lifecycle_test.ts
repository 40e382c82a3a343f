/**
 * The binary-mode lifecycle through the real CLI (`cli.ts` in a child process), against real
 * processes: progress lines, exit codes, refused stops, pre-flight, stale PIDs, logs, restart.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isAlive } from "../../core/process/identity.ts";
import { pidsWithArg, Sandbox, until } from "./_registry.ts";

const json = (r: { stdout: string; stderr: string }) => {
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new Error(`Not JSON:\n${r.stdout}\n${r.stderr}`);
  }
};

/** Assert that `patterns` match lines of `text` in this order. */
function assertInOrder(text: string, patterns: RegExp[]): void {
  const lines = text.split("\n");
  let at = 0;
  for (const re of patterns) {
    const i = lines.findIndex((l, n) => n >= at && re.test(l));
    assert.ok(i >= 0, `no line matching ${re} after line ${at} in:\n${text}`);
    at = i + 1;
  }
}

Deno.test("services start control-center starts and awaits its dependency first, then refuses to stop it without --force", async () => {
  await using sb = await Sandbox.create([
    { name: "orchestrator" },
    { name: "control-center", deps: ["orchestrator"] },
  ]);
  const start = await sb.cli(["services", "start", "control-center"]);
  assert.equal(start.code, 0, start.stdout + start.stderr);
  assertInOrder(start.stdout, [
    /^Starting dependency: orchestrator\b/,
    /^Waiting for orchestrator to become healthy\.\.\.$/,
    /^✅ Service orchestrator is healthy\b/,
    /^Starting service: control-center\b/,
    /^✅ Service control-center is healthy\b/,
  ]);

  const refused = await sb.cli(["services", "stop", "orchestrator"]);
  assert.equal(refused.code, 4, refused.stdout + refused.stderr);
  assert.match(
    refused.stderr,
    /Cannot stop orchestrator: Dependent services running: control-center\n.*Use --force to stop anyway/,
  );
  assert.equal(
    json(await sb.cli(["services", "status", "orchestrator", "--json"])).status,
    "running",
  );

  const forced = await sb.cli(["services", "stop", "orchestrator", "--force"]);
  assert.equal(forced.code, 0, forced.stdout + forced.stderr);
  assert.equal(
    json(await sb.cli(["services", "status", "orchestrator", "--json"])).status,
    "stopped",
  );
  assert.deepEqual(await pidsWithArg(sb.marker("orchestrator")), []);
});

Deno.test("services start exits 1 naming a failed dependency while the unrelated branch starts", async () => {
  await using sb = await Sandbox.create([
    { name: "bad", readyAfter: 600_000, flags: ["--exit-after", "0", "--exit-code", "3"] },
    { name: "dep", deps: ["bad"] },
    { name: "other" },
  ]);
  const r = await sb.cli(["services", "start", "dep", "other"]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^❌ bad: Exited during startup with code 3\b/m);
  assert.match(r.stdout, /^⏸️ +dep: blocked by bad\b/m);
  assert.match(r.stdout, /^✅ Service other is healthy\b/m);
  assert.match(r.stdout, /^❌ Failed: bad \(Exited during startup with code 3\)$/m);
  const status = json(await sb.cli(["platform", "status", "--json"]));
  const by = Object.fromEntries(status.services.map((s: { name: string }) => [s.name, s]));
  assert.deepEqual([by.bad.status, by.dep.status, by.other.status], [
    "failed",
    "stopped",
    "running",
  ]);
});

Deno.test("services status reports a SIGKILLed service as not running and removes its stale PID file", async () => {
  await using sb = await Sandbox.create([{ name: "victim" }]);
  assert.equal((await sb.cli(["services", "start", "victim"])).code, 0);
  const before = json(await sb.cli(["services", "status", "victim", "--json"]));
  assert.equal(before.status, "running");
  const pidFile = join(sb.home, "services", "pids", "victim.pid");
  assert.equal(Number(await readFile(pidFile, "utf8")), before.pid);

  process.kill(before.pid, "SIGKILL");
  await until(async () => !(await isAlive(before.pid)), `pid ${before.pid} to die`);
  const after = json(await sb.cli(["services", "status", "victim", "--json"]));
  assert.ok(["failed", "stopped"].includes(after.status), `status ${after.status}`);
  assert.equal(after.pid, undefined);
  assert.equal(existsSync(pidFile), false);
});

Deno.test("a stale PID file naming a foreign live process is neither trusted by status nor signalled by stop", async () => {
  await using sb = await Sandbox.create([{ name: "ghost" }]);
  const foreign = sb.adopt(spawn("sleep", ["300"], { stdio: "ignore" }));
  const pid = foreign.pid!;
  await until(() => isAlive(pid), "the foreign sleep to run");
  const pids = join(sb.home, "services", "pids");
  const states = join(sb.home, "services", "state");
  const plant = async () => {
    await mkdir(pids, { recursive: true });
    await mkdir(states, { recursive: true });
    await writeFile(join(pids, "ghost.pid"), `${pid}\n`);
    await writeFile(
      join(states, "ghost.json"),
      JSON.stringify({
        name: "ghost",
        mode: "binary",
        status: "running",
        pid,
        pid_start: "1", // not the start time of the foreign process
        started_at: new Date().toISOString(),
        restarts: 0,
      }),
    );
  };

  await plant();
  const stop = await sb.cli(["platform", "stop", "--force", "ghost"]);
  assert.equal(stop.code, 0, stop.stdout + stop.stderr);
  assert.equal(await isAlive(pid), true, "stop signalled a foreign process");
  assert.equal(foreign.exitCode, null);

  await plant();
  const status = json(await sb.cli(["services", "status", "ghost", "--json"]));
  assert.notEqual(status.status, "running");
  assert.match(status.message ?? "", /another process/);
  // A read writes nothing: the stale record stays until a command that changes state
  // reconciles it.
  assert.equal(existsSync(join(pids, "ghost.pid")), true, "status removed the PID file");
  assert.equal(await isAlive(pid), true, "status signalled a foreign process");
  const again = await sb.cli(["platform", "stop", "--force", "ghost"]);
  assert.equal(again.code, 0, again.stdout + again.stderr);
  assert.equal(existsSync(join(pids, "ghost.pid")), false, "stop did not reconcile the record");
  assert.equal(await isAlive(pid), true, "stop signalled a foreign process");
});

Deno.test("two concurrent CLI starts of one service run exactly one process and both succeed", async () => {
  await using sb = await Sandbox.create([{ name: "solo", readyAfter: 300 }]);
  const [a, b] = await Promise.all([
    sb.cli(["services", "start", "solo"]),
    sb.cli(["services", "start", "solo"]),
  ]);
  assert.equal(a.code, 0, a.stdout + a.stderr);
  assert.equal(b.code, 0, b.stdout + b.stderr);
  assert.equal((await pidsWithArg(sb.marker("solo"))).length, 1);
  assert.match(a.stdout + b.stdout, /solo is already running/);
});

Deno.test("a missing binary fails pre-flight with exit 3; with --force the driver refuses it instead", async () => {
  await using sb = await Sandbox.create([{
    name: "nobin",
    check: "none",
    command: (_port, dir) => ({ binary_path: join(dir, "no-such-binary"), args: [] }),
  }]);
  const r = await sb.cli(["services", "start", "nobin"]);
  assert.equal(r.code, 3, r.stdout + r.stderr);
  assert.match(r.stdout, /Binary not found: .*no-such-binary/);
  const forced = await sb.cli(["services", "start", "--force", "nobin"]);
  // No pre-flight ran; the driver's own refusal of a missing binary keeps exit code 3.
  assert.equal(forced.code, 3, forced.stdout + forced.stderr);
  assert.doesNotMatch(forced.stdout, /pre-flight|Binary not found/i);
  assert.match(forced.stdout, /Cannot start "nobin": binary ".*no-such-binary" not found/);
});

Deno.test("a conflicting foreign process fails pre-flight with exit 3; --force starts anyway", async () => {
  await using sb = await Sandbox.create([{ name: "guarded" }]);
  const foreignName = `fgn${sb.token}`;
  const link = join(sb.dir, foreignName);
  await symlink("/usr/bin/sleep", link);
  const foreign = sb.adopt(spawn(link, ["300"], { stdio: "ignore" }));
  await until(
    async () =>
      (await readFile(`/proc/${foreign.pid}/comm`, "utf8").catch(() => "")).trim() === foreignName,
    "the foreign process to run under its name",
  );
  const toml = (await readFile(sb.config, "utf8"))
    .replace(/conflicts = \[\s*\]/, `conflicts = [ "${foreignName}" ]`);
  assert.match(toml, new RegExp(`conflicts = \\[ "${foreignName}" \\]`));
  await writeFile(sb.config, toml);

  const r = await sb.cli(["services", "start", "guarded"]);
  assert.equal(r.code, 3, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`Conflicting services running: ${foreignName}\\b`));
  assert.deepEqual(await pidsWithArg(sb.marker("guarded")), []);

  const forced = await sb.cli(["services", "start", "--force", "guarded"]);
  assert.equal(forced.code, 0, forced.stdout + forced.stderr);
  assert.doesNotMatch(forced.stdout, /Conflicting/);
  assert.equal((await pidsWithArg(sb.marker("guarded"))).length, 1);

  // The same under `platform start`, whose --force means recreate: --skip-preflight there.
  assert.equal((await sb.cli(["platform", "stop"])).code, 0);
  const plain = await sb.cli(["platform", "start", "guarded"]);
  assert.equal(plain.code, 3, plain.stdout + plain.stderr);
  const skipped = await sb.cli(["platform", "start", "guarded", "--skip-preflight"]);
  assert.equal(skipped.code, 0, skipped.stdout + skipped.stderr);
  assert.doesNotMatch(skipped.stdout, /Conflicting/);
});

Deno.test("--recreate restarts a running service under both groups; platform start --force too (the spec)", async () => {
  await using sb = await Sandbox.create([{ name: "db" }, { name: "web", deps: ["db"] }]);
  assert.equal((await sb.cli(["services", "start", "web"])).code, 0);
  const pid = async (name: string) =>
    JSON.parse((await sb.cli(["services", "status", name, "--json"])).stdout).pid as number;
  const [db, web] = [await pid("db"), await pid("web")];
  const again = await sb.cli(["services", "start", "web"]);
  assert.equal(again.code, 0, again.stdout);
  assert.equal(await pid("web"), web, "without --recreate a running service is left alone");
  const recreated = await sb.cli(["services", "start", "web", "--recreate"]);
  assert.equal(recreated.code, 0, recreated.stdout + recreated.stderr);
  const web2 = await pid("web");
  assert.notEqual(web2, web, "services start --recreate restarted it");
  assert.equal(await pid("db"), db, "its running dependency was left alone");
  const spec = await sb.cli(["platform", "start", "--force", "web"]);
  assert.equal(spec.code, 0, spec.stdout + spec.stderr);
  const web3 = await pid("web");
  assert.notEqual(web3, web2, "platform start --force (the spec's example) restarted it");
  const platform = await sb.cli(["platform", "start", "--recreate", "web"]);
  assert.equal(platform.code, 0, platform.stdout + platform.stderr);
  assert.notEqual(await pid("web"), web3);
});

Deno.test("logs prints the last lines, restart gives a new pid and check --start brings up an operation", async () => {
  await using sb = await Sandbox.create([
    { name: "core", requiredFor: ["deploy"] },
    { name: "web", deps: ["core"], requiredFor: ["deploy"] },
  ]);
  const ensure = await sb.cli(["services", "check", "deploy", "--start"]);
  assert.equal(ensure.code, 0, ensure.stdout + ensure.stderr);
  const check = await sb.cli(["services", "check", "deploy"]);
  assert.equal(check.code, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /^All running: true$/m);

  const logs = await sb.cli(["services", "logs", "web", "--lines", "3"]);
  assert.equal(logs.code, 0, logs.stderr);
  const file = (await sb.log("web")).trimEnd().split("\n");
  assert.ok(file.length > 3, `log too short to tell: ${file.join("\n")}`);
  assert.deepEqual(logs.stdout.trimEnd().split("\n"), file.slice(-3));

  const before = json(await sb.cli(["services", "status", "web", "--json"]));
  const restart = await sb.cli(["platform", "restart", "web"]);
  assert.equal(restart.code, 0, restart.stdout + restart.stderr);
  const after = json(await sb.cli(["services", "status", "web", "--json"]));
  assert.equal(after.status, "running");
  assert.notEqual(after.pid, before.pid);
  assert.equal(await isAlive(before.pid), false);
});

Deno.test("platform status, services list and platform health report running services with pid and uptime", async () => {
  await using sb = await Sandbox.create([
    { name: "web", category: "api" },
    { name: "cache", kind: "tcp", category: "data" },
    { name: "worker", kind: "plain", category: "jobs" },
    { name: "idle", category: "jobs" },
  ]);
  const start = await sb.cli(["platform", "start", "web", "cache", "worker"]);
  assert.equal(start.code, 0, start.stdout + start.stderr);

  const status = json(await sb.cli(["platform", "status", "--json"]));
  assert.deepEqual([status.running, status.total], [3, 4]);
  for (const s of status.services.filter((x: { name: string }) => x.name !== "idle")) {
    assert.equal(s.status, "running", s.name);
    assert.ok(Number.isInteger(s.pid) && s.pid > 0, `${s.name} pid ${s.pid}`);
    assert.ok(Number.isInteger(s.uptime_s) && s.uptime_s >= 0, `${s.name} uptime ${s.uptime_s}`);
  }
  const text = await sb.cli(["platform", "status"]);
  assert.match(text.stdout, /^🟢 web - running \(uptime: \d+s\) ✅$/m);
  assert.match(text.stdout, /^⚪ idle - stopped/m);

  const list = json(await sb.cli(["services", "list", "--json"]));
  const web = list.find((x: { name: string }) => x.name === "web");
  assert.equal(web.status, "running");
  assert.equal(web.pid, status.services.find((x: { name: string }) => x.name === "web").pid);

  const health = await sb.cli(["platform", "health", "--json"]);
  assert.equal(health.code, 0, health.stdout + health.stderr);
  assert.deepEqual(json(health).summary, {
    healthy: 2,
    unhealthy: 0,
    not_running: 1,
    failed: 0,
    unknown: 1,
  });
  // The tcp check connects and resets; the service must survive it.
  assert.equal(json(await sb.cli(["services", "status", "cache", "--json"])).health, "healthy");
});
