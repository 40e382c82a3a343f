/**
 * The binary-mode lifecycle through the library (`mod.ts`), against real processes: order,
 * parallel branches, failures, timeouts, stop escalation, process trees and concurrent starts.
 */
import assert from "node:assert/strict";
import { isAlive } from "../../core/process/identity.ts";
import { startServices, stopServices } from "../../mod.ts";
import { EventLog, pidsWithArg, Sandbox, until } from "./_registry.ts";

const pidOf = (log: EventLog, name: string) => {
  const pid = log.get("started", name).pid;
  assert.ok(pid, `no pid in the started event of ${name}`);
  return pid;
};

Deno.test("startServices() starts each dependency before its dependent and stopServices() stops in mirror order", async () => {
  await using sb = await Sandbox.create([
    { name: "db" },
    { name: "api", deps: ["db"] },
    { name: "web", deps: ["api"] },
  ]);
  const p = await sb.open();
  const start = new EventLog();
  const res = await startServices(p, ["web"], { onEvent: start.onEvent });
  assert.equal(res.ok, true, JSON.stringify(res.outcomes));
  assert.deepEqual(res.outcomes.map((o) => [o.name, o.status]), [
    ["db", "started"],
    ["api", "started"],
    ["web", "started"],
  ]);
  assert.ok(start.before(["healthy", "db"], ["starting", "api"]));
  assert.ok(start.before(["healthy", "api"], ["starting", "web"]));
  assert.equal(start.get("starting", "db").dependency, true);
  assert.equal(start.get("starting", "web").dependency, false);
  const pids = ["db", "api", "web"].map((n) => pidOf(start, n));
  for (const n of ["db", "api", "web"]) assert.equal((await p.runtime(n)).status, "running");

  const stop = new EventLog();
  const stopped = await stopServices(p, [], { onEvent: stop.onEvent });
  assert.equal(stopped.ok, true, JSON.stringify(stopped.outcomes));
  assert.ok(stop.before(["stopped", "web"], ["stopping", "api"]));
  assert.ok(stop.before(["stopped", "api"], ["stopping", "db"]));
  for (const pid of pids) assert.equal(await isAlive(pid), false, `pid ${pid} survived the stop`);
});

Deno.test("independent branches start in parallel: both roots are starting before either is healthy", async () => {
  await using sb = await Sandbox.create([
    { name: "left", readyAfter: 400 },
    { name: "right", readyAfter: 400 },
    { name: "join", deps: ["left", "right"] },
  ]);
  const p = await sb.open();
  const log = new EventLog();
  const res = await startServices(p, ["join"], { onEvent: log.onEvent });
  assert.equal(res.ok, true, JSON.stringify(res.outcomes));
  assert.ok(log.before(["starting", "left"], ["healthy", "right"]));
  assert.ok(log.before(["starting", "right"], ["healthy", "left"]));
  assert.ok(log.before(["healthy", "left"], ["starting", "join"]));
  assert.ok(log.before(["healthy", "right"], ["starting", "join"]));
});

Deno.test("a failed dependency blocks its dependents while an unrelated branch still starts", async () => {
  await using sb = await Sandbox.create([
    { name: "bad", readyAfter: 600_000, flags: ["--exit-after", "0", "--exit-code", "3"] },
    { name: "dep", deps: ["bad"] },
    { name: "other" },
  ]);
  const p = await sb.open();
  const log = new EventLog();
  const res = await startServices(p, ["dep", "other"], { onEvent: log.onEvent });
  assert.equal(res.ok, false);
  assert.equal(res.exit_code, 1);
  const by = Object.fromEntries(res.outcomes.map((o) => [o.name, o]));
  assert.equal(by.bad.status, "failed");
  assert.match(by.bad.message ?? "", /code 3/);
  assert.equal(by.dep.status, "blocked");
  assert.equal(by.dep.blocked_by, "bad");
  assert.equal(by.other.status, "started");
  assert.equal(log.get("blocked", "dep").blocked_by, "bad");
  assert.ok(log.before(["failed", "bad"], ["blocked", "dep"]));
  assert.equal(log.events.some((e) => e.type === "starting" && e.service === "dep"), false);
  assert.equal((await p.runtime("bad")).status, "failed");
  assert.equal((await p.runtime("dep")).status, "stopped");
  assert.equal((await p.runtime("other")).status, "running");
});

Deno.test("a service that never becomes ready fails at its start_timeout and its process is gone", async () => {
  await using sb = await Sandbox.create([{ name: "slow", readyAfter: 600_000, startTimeout: 1 }]);
  const p = await sb.open();
  const log = new EventLog();
  const res = await startServices(p, ["slow"], { onEvent: log.onEvent });
  assert.equal(res.exit_code, 1);
  assert.equal(res.outcomes[0].status, "failed");
  assert.match(res.outcomes[0].message ?? "", /start_timeout/);
  assert.match(log.get("failed", "slow").message ?? "", /start_timeout/);
  const pid = pidOf(log, "slow");
  assert.equal(await isAlive(pid), false);
  assert.deepEqual(await pidsWithArg(sb.marker("slow")), []);
  assert.equal((await p.runtime("slow")).status, "failed");
});

Deno.test("a service that ignores SIGTERM is SIGKILLed after shutdown.timeout and is gone", async () => {
  await using sb = await Sandbox.create([
    { name: "stubborn", flags: ["--ignore-sigterm"], shutdownTimeout: 1 },
  ]);
  const p = await sb.open();
  const log = new EventLog();
  assert.equal((await startServices(p, ["stubborn"], { onEvent: log.onEvent })).ok, true);
  const pid = pidOf(log, "stubborn");
  const res = await stopServices(p, ["stubborn"]);
  assert.equal(res.ok, true, JSON.stringify(res.outcomes));
  assert.equal(await isAlive(pid), false);
  assert.match(await sb.log("stubborn"), /stubborn-\w+ ignoring SIGTERM/);
  assert.equal((await p.runtime("stubborn")).status, "stopped");
});

Deno.test("stopping a service that forked grandchildren leaves none of them alive", async () => {
  await using sb = await Sandbox.create([{ name: "forker", flags: ["--fork", "3"] }]);
  const p = await sb.open();
  assert.equal((await startServices(p, ["forker"])).ok, true);
  const forked = async () =>
    [...(await sb.log("forker")).matchAll(/forked pid (\d+)/g)].map((m) => Number(m[1]));
  await until(async () => (await forked()).length === 3, "3 forked pids in the log");
  const kids = await forked();
  for (const pid of kids) assert.equal(await isAlive(pid), true, `grandchild ${pid} not running`);
  assert.equal((await stopServices(p, ["forker"])).ok, true);
  for (const pid of kids) assert.equal(await isAlive(pid), false, `grandchild ${pid} survived`);
  assert.deepEqual(await pidsWithArg(`${sb.marker("forker")}-child`), []);
});

Deno.test("a service without a health check is started once its process runs", async () => {
  await using sb = await Sandbox.create([{ name: "quiet", kind: "plain" }]);
  const p = await sb.open();
  const log = new EventLog();
  const res = await startServices(p, ["quiet"], { onEvent: log.onEvent });
  assert.equal(res.ok, true, JSON.stringify(res.outcomes));
  // Ready for its dependents, but never called healthy: it has no check.
  assert.equal(log.get("ready", "quiet").message, "Started (no health check)");
  assert.equal(log.events.some((e) => e.type === "healthy"), false);
  assert.equal(res.outcomes[0].health, "unknown");
  assert.equal((await p.runtime("quiet")).status, "running");
  assert.equal(await isAlive(pidOf(log, "quiet")), true);
});

Deno.test("two Platforms starting the same service at once run exactly one process and both succeed", async () => {
  await using sb = await Sandbox.create([{ name: "solo", readyAfter: 300 }]);
  const [p1, p2] = await Promise.all([sb.open(), sb.open()]);
  const [a, b] = await Promise.all([startServices(p1, ["solo"]), startServices(p2, ["solo"])]);
  assert.equal(a.ok && b.ok, true, JSON.stringify([a.outcomes, b.outcomes]));
  assert.deepEqual(
    [a.outcomes[0].status, b.outcomes[0].status].sort(),
    ["already_running", "started"],
  );
  assert.equal((await pidsWithArg(sb.marker("solo"))).length, 1);
});

Deno.test("a start that finds its dependency still starting waits until that dependency is healthy", async () => {
  await using sb = await Sandbox.create([
    { name: "slowdb", readyAfter: 700 },
    { name: "app", deps: ["slowdb"] },
  ]);
  const [p1, p2] = await Promise.all([sb.open(), sb.open()]);
  const first = startServices(p1, ["slowdb"]);
  try {
    await until(async () => (await p2.runtime("slowdb")).status === "starting", "slowdb starting");
    const log = new EventLog();
    const second = await startServices(p2, ["app"], { onEvent: log.onEvent });
    const dbHealth = await p2.health("slowdb");
    assert.equal(second.ok, true, JSON.stringify(second.outcomes));
    assert.equal(dbHealth.healthy, true, `app started while slowdb was ${dbHealth.message}`);
    assert.equal(second.outcomes.find((o) => o.name === "slowdb")?.status, "already_running");
    assert.ok(log.before(["running", "slowdb"], ["starting", "app"]));
  } finally {
    assert.equal((await first).ok, true);
  }
});
