/**
 * The supervisor against real processes: crashes (`kill -9`) recovered, crash loops backed off
 * and given up, user stops respected, dependents left alone, liveness failures acted on, and the
 * supervisor's own death survived (re-adoption), with `status` telling the truth throughout.
 */
import assert from "node:assert/strict";
import { readFile, readlink, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BINARY, BUNDLE, CLI_RUNTIME } from "../_cli.ts";
import { isAlive } from "../../core/process/identity.ts";
import { readState } from "../../core/state/store.ts";
import { startServices } from "../../mod.ts";
import { pidsWithArg, type Sandbox, until } from "./_registry.ts";
import {
  cliStatus,
  cliSupervisorStatus,
  readyFile,
  spawnLines,
  supervisedSandbox,
  supervisorLines,
  supervisorPid,
} from "./_supervised.ts";

const restart = { restart_on_failure: true };

/** Start `names` through the CLI; fail the test unless it succeeds. */
async function start(sb: Sandbox, ...names: string[]): Promise<void> {
  const r = await sb.cli(["services", "start", ...names]);
  assert.equal(r.code, 0, `services start ${names.join(" ")}: ${r.stdout}${r.stderr}`);
}

/** The PID of a running service. */
async function pidOf(sb: Sandbox, name: string): Promise<number> {
  const s = await cliStatus(sb, name);
  assert.equal(s.status, "running", `${name} is ${s.status}: ${s.message ?? ""}`);
  assert.ok(s.pid, `${name} runs without a pid`);
  return s.pid;
}

/** Poll (through the library) until `name` runs healthy under a PID other than `old`. */
async function untilRecovered(sb: Sandbox, name: string, old: number, ms = 15_000) {
  const p = await sb.open();
  let last: unknown;
  try {
    await until(
      async () => {
        const s = last = await p.status(name);
        return s.status === "running" && s.health === "healthy" && !!s.pid && s.pid !== old;
      },
      `${name} to run healthy again under a new pid`,
      ms,
    );
  } catch (e) {
    throw new Error(
      `${(e as Error).message}; last status ${JSON.stringify(last)}\n${await diagnose(sb, name)}`,
    );
  }
}

/** The service's log and the supervisor's, for a failure message. */
async function diagnose(sb: Sandbox, name: string): Promise<string> {
  const sup = await readFile(join(sb.home, "run", "supervisor.log"), "utf8").catch(() => "");
  return `--- ${name}.log:\n${await sb.log(name)}--- supervisor.log:\n${sup}`;
}

Deno.test("a service killed with SIGKILL is restarted by the supervisor: healthy again, new pid, restarts counted", async () => {
  await using sb = await supervisedSandbox([{ name: "api", startup: restart }]);
  await start(sb, "api");
  const old = await pidOf(sb, "api");
  process.kill(old, "SIGKILL");
  await untilRecovered(sb, "api", old);

  const s = await cliStatus(sb, "api");
  assert.equal(s.status, "running");
  assert.equal(s.health, "healthy");
  assert.notEqual(s.pid, old);
  assert.ok((s.restarts ?? 0) >= 1, `restarts = ${s.restarts}`);
  assert.equal(await isAlive(old), false);
  assert.deepEqual(await pidsWithArg(sb.marker("api")), [s.pid]);
  const lines = await supervisorLines(sb, "api");
  assert.ok(
    lines.some((l) => /killed by SIGKILL/.test(l.text)),
    `no supervisor line about the SIGKILL in:\n${await sb.log("api")}`,
  );
  assert.ok(lines.some((l) => l.text.startsWith(`restarted, healthy (pid ${s.pid})`)));
});

Deno.test("a crash-looping service backs off between restarts and is left failed after max_restarts", async () => {
  await using sb = await supervisedSandbox([{
    name: "loop",
    readyAfter: 50,
    flags: ["--exit-after", "300", "--exit-code", "3"],
    startup: { ...restart, max_restarts: 3, restart_delay: 0.2 },
  }]);
  await start(sb, "loop");
  await until(
    async () => (await supervisorLines(sb, "loop")).some((l) => /^Gave up/.test(l.text)),
    "the supervisor to give up",
    20_000,
  );

  // The first status after giving up (nothing has cleaned up after the supervisor yet).
  const s = await cliStatus(sb, "loop");
  assert.equal(s.status, "failed");
  assert.match(s.message ?? "", /Gave up after 3 restarts/);
  assert.match(s.message ?? "", /exited with code 3/);
  assert.equal(s.exit_code, 3);
  assert.equal(s.restarts, 3);
  assert.deepEqual(await pidsWithArg(sb.marker("loop")), []);

  // Backoff: from each "restart k" line to the spawn that follows it, the wait grows.
  const sup = await supervisorLines(sb, "loop");
  const spawns = await spawnLines(sb, "loop");
  const waits = [1, 2, 3].map((k) => {
    const line = sup.find((l) => l.text.includes(`restart ${k} of 3`));
    assert.ok(line, `no "restart ${k} of 3" line in:\n${sup.map((l) => l.text).join("\n")}`);
    const next = spawns.find((x) => x.at >= line.at);
    assert.ok(next, `no spawn after restart ${k}`);
    return next.at - line.at;
  });
  assert.match(sup.find((l) => l.text.includes("restart 1 of 3"))!.text, / in 0\.00s$/);
  assert.ok(waits[0] < waits[1] && waits[1] < waits[2], `waits do not grow: ${waits} ms`);
  // restart_delay 0.2 s, doubling, at most 10 % jitter: at least 180 ms, then 360 ms.
  assert.ok(waits[1] >= 175, `2nd restart after ${waits[1]} ms`);
  assert.ok(waits[2] >= 355, `3rd restart after ${waits[2]} ms`);
  assert.ok(sup.some((l) => /^Gave up after 3 restarts: exited with code 3/.test(l.text)));
});

Deno.test("a stop asked for by a user is no crash: nothing restarts the service and the supervisor exits once idle", async () => {
  await using sb = await supervisedSandbox([{ name: "solo", startup: restart }]);
  await start(sb, "solo");
  const pid = await pidOf(sb, "solo");
  const sup = await supervisorPid(sb);
  assert.ok(sup && (await isAlive(sup)), "no supervisor runs after the start");

  const r = await sb.cli(["services", "stop", "solo"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  await until(
    async () => (await cliSupervisorStatus(sb)).running === false,
    "the supervisor to exit by itself",
    15_000,
  );
  // With no supervisor left, nothing can restart it any more: check that nothing did.
  await until(async () => !(await isAlive(sup)), "the supervisor process to be gone");
  assert.equal(await isAlive(pid), false);
  assert.deepEqual(await pidsWithArg(sb.marker("solo")), []);
  const s = await cliStatus(sb, "solo");
  assert.equal(s.status, "stopped");
  assert.equal(s.restarts ?? 0, 0);
  assert.equal((await supervisorLines(sb, "solo")).some((l) => /Restarting/.test(l.text)), false);
});

Deno.test("the dependents of a restarting service are not torn down: they keep their pid", async () => {
  await using sb = await supervisedSandbox([
    { name: "db", startup: restart },
    { name: "app", deps: ["db"] },
  ]);
  await start(sb, "app");
  const [db, app] = [await pidOf(sb, "db"), await pidOf(sb, "app")];
  process.kill(db, "SIGKILL");
  await untilRecovered(sb, "db", db);

  const s = await cliStatus(sb, "app");
  assert.equal(s.status, "running");
  assert.equal(s.pid, app);
  assert.equal(await isAlive(app), true);
  assert.doesNotMatch(await sb.log("app"), /received SIG/);
  assert.deepEqual(await pidsWithArg(sb.marker("app")), [app]);
});

Deno.test("a running service whose liveness check keeps failing is restarted after `retries` failures", async () => {
  await using sb = await supervisedSandbox([{
    name: "live",
    readyFile: true,
    startup: restart,
    health: { interval: 0.2, retries: 2 },
  }]);
  await start(sb, "live");
  const old = await pidOf(sb, "live");
  await rm(readyFile(sb, "live"));
  await untilRecovered(sb, "live", old);

  const s = await cliStatus(sb, "live");
  assert.ok((s.restarts ?? 0) >= 1, `restarts = ${s.restarts}`);
  assert.equal(await isAlive(old), false);
  const lines = await supervisorLines(sb, "live");
  assert.ok(
    lines.some((l) =>
      /^unhealthy after 2 failed checks: .*does not exist; restarting/.test(l.text)
    ),
    `no liveness line in:\n${lines.map((l) => l.text).join("\n")}`,
  );
});

Deno.test("without restart_on_failure a failing liveness check is reported unhealthy and nothing is restarted", async () => {
  await using sb = await supervisedSandbox([{
    name: "flaky",
    readyFile: true,
    health: { interval: 0.2, retries: 2 },
  }]);
  await start(sb, "flaky");
  const pid = await pidOf(sb, "flaky");
  await rm(readyFile(sb, "flaky"));
  const p = await sb.open();
  await until(
    async () => /^Unhealthy: /.test((await readState(p.paths, "flaky"))?.message ?? ""),
    "the supervisor to record the failed liveness check",
  );

  const s = await cliStatus(sb, "flaky");
  assert.equal(s.status, "running");
  assert.equal(s.pid, pid);
  assert.equal(s.health, "unhealthy");
  assert.match(s.message ?? "", /^Unhealthy: File .* does not exist/);
  assert.equal(s.restarts ?? 0, 0);
  assert.deepEqual(await pidsWithArg(sb.marker("flaky")), [pid]);

  // Healthy again: the supervisor takes its word back.
  await writeFile(readyFile(sb, "flaky"), "back\n");
  await until(
    async () => (await readState(p.paths, "flaky"))?.message === undefined,
    "the message to clear",
  );
  const again = await cliStatus(sb, "flaky");
  assert.deepEqual([again.status, again.health, again.pid, again.message], [
    "running",
    "healthy",
    pid,
    undefined,
  ]);
});

Deno.test("after the supervisor is killed its services keep running; the next status revives it and it recovers their crashes", async () => {
  await using sb = await supervisedSandbox([
    { name: "one", startup: restart },
    { name: "two", startup: restart },
  ]);
  await start(sb, "one", "two");
  const [one, two] = [await pidOf(sb, "one"), await pidOf(sb, "two")];
  const first = await supervisorPid(sb);
  assert.ok(first, "no supervisor.pid after the start");
  process.kill(first, "SIGKILL");
  await until(async () => !(await isAlive(first)), "the supervisor to die");
  assert.equal(await isAlive(one), true);
  assert.equal(await isAlive(two), true);

  const r = await sb.cli(["platform", "status", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).running, 2);
  const report = await cliSupervisorStatus(sb);
  assert.ok(report.pid && report.pid !== first, `no new supervisor: ${JSON.stringify(report)}`);
  assert.deepEqual(
    report.services?.map((x) => [x.name, x.phase, x.pid]).sort(),
    [["one", "running", one], ["two", "running", two]],
  );

  process.kill(one, "SIGKILL");
  await untilRecovered(sb, "one", one);
  assert.equal(await pidOf(sb, "two"), two);
  assert.equal((await pidsWithArg(sb.marker("one"))).length, 1);
});

Deno.test("status never says running for a service that died while no supervisor watched it", async () => {
  await using sb = await supervisedSandbox([
    { name: "gone", startup: restart },
    { name: "stays", startup: restart },
  ]);
  await start(sb, "gone", "stays");
  const [gone, stays] = [await pidOf(sb, "gone"), await pidOf(sb, "stays")];
  const sup = (await supervisorPid(sb))!;
  process.kill(sup, "SIGKILL");
  await until(async () => !(await isAlive(sup)), "the supervisor to die");
  process.kill(gone, "SIGKILL");
  await until(async () => !(await isAlive(gone)), "the service to die");

  const s = await cliStatus(sb, "gone");
  assert.ok(["failed", "stopped"].includes(s.status), `status says ${s.status}`);
  assert.equal(s.pid, undefined);
  const r = await sb.cli(["platform", "status", "--json"]);
  const all = JSON.parse(r.stdout) as {
    running: number;
    services: { name: string; status: string }[];
  };
  const byName = Object.fromEntries(all.services.map((x) => [x.name, x.status]));
  assert.notEqual(byName.gone, "running");
  if ((await pidsWithArg(sb.marker("gone"))).length === 0) {
    assert.ok(["failed", "stopped"].includes(byName.gone), `platform status says ${byName.gone}`);
  }
  assert.equal(byName.stays, "running");
  assert.equal(await pidOf(sb, "stays"), stays);
  // The revived supervisor found it dead too, and says so in its log and its state.
  await until(
    async () => /exited while no supervisor watched it/.test(await sb.log("gone")),
    "the revived supervisor to record the death",
  );
  assert.ok(["failed", "stopped"].includes((await cliStatus(sb, "gone")).status));
});

Deno.test("`services start` brings back a service that died while no supervisor watched it", async () => {
  await using sb = await supervisedSandbox([{ name: "back", startup: restart }]);
  const p = await sb.open();
  assert.equal((await startServices(p, ["back"])).ok, true);
  const old = (await p.status("back")).pid!;
  const sup = (await supervisorPid(sb))!;
  process.kill(sup, "SIGKILL");
  await until(async () => !(await isAlive(sup)), "the supervisor to die");
  process.kill(old, "SIGKILL");
  await until(async () => !(await isAlive(old)), "the service to die");
  await start(sb, "back");
  const s = await cliStatus(sb, "back");
  assert.equal(s.status, "running");
  assert.equal(s.health, "healthy");
  assert.notEqual(s.pid, old);
  const report = await cliSupervisorStatus(sb);
  assert.deepEqual(report.services?.map((x) => x.name), ["back"]);
});

Deno.test("the supervisor runs as a small daemon: its own entry, V8 flags, and it reports its memory", async () => {
  await using sb = await supervisedSandbox([{ name: "api", startup: restart }]);
  await start(sb, "api");
  const pid = await supervisorPid(sb);
  assert.ok(pid, "no supervisor pid file");
  const argv = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").filter(Boolean);
  const exe = await readlink(`/proc/${pid}/exe`);
  const environ = (await readFile(`/proc/${pid}/environ`, "utf8")).split("\0");
  // The CLI runs its supervisor on its own runtime (core/runtime/self.ts).
  if (CLI_RUNTIME === "binary") {
    assert.equal(exe, BINARY, "the binary's supervisor is the binary itself");
    assert.deepEqual(argv.slice(1), ["supervisor", "run"]);
  } else if (CLI_RUNTIME === "node") {
    assert.match(exe, /\/node$/, `the bundle's supervisor runs under Node, not ${exe}`);
    assert.deepEqual(argv.slice(-3), [BUNDLE, "supervisor", "run"]);
    assert.ok(argv.includes("--lite-mode"), argv.join(" "));
  } else {
    assert.ok(argv.some((a) => a.endsWith("core/supervisor/main.ts")), argv.join(" "));
    assert.ok(argv.some((a) => a.startsWith("--v8-flags=") && a.includes("--lite-mode")));
    assert.ok(environ.includes("DENO_NO_UPDATE_CHECK=1"));
    assert.ok(environ.some((l) => l.startsWith("GLIBC_TUNABLES=")));
  }
  const report = await cliSupervisorStatus(sb);
  assert.ok(report.memory, JSON.stringify(report));
  assert.ok(report.memory.rss > report.memory.heap_used && report.memory.heap_used > 0);
  // The service it started gets the CLI's environment, not the supervisor's own settings.
  const child = (await readFile(`/proc/${await pidOf(sb, "api")}/environ`, "utf8")).split("\0");
  assert.equal(
    child.some((l) => l.startsWith("GLIBC_TUNABLES=")),
    process.env.GLIBC_TUNABLES !== undefined,
  );
});
