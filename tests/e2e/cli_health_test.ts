/**
 * `platform health` and `services health` are honest gates: a service that should run but does
 * not (it crashed, or waits to be restarted) is a failure, not "not running".
 */
import assert from "node:assert/strict";
import { until } from "../_until.ts";
import { cliStatus, supervisedSandbox } from "./_supervised.ts";

Deno.test("platform health exits 1 and counts a crashed service as failed", async () => {
  await using sb = await supervisedSandbox([{ name: "db" }, { name: "web" }, { name: "idle" }]);
  const start = await sb.cli(["services", "start", "db", "web"]);
  assert.equal(start.code, 0, start.stdout + start.stderr);
  const healthy = await sb.cli(["platform", "health"]);
  assert.equal(healthy.code, 0, healthy.stdout);
  assert.match(healthy.stdout, /Summary: 2 healthy, 0 unhealthy, 1 not running$/m);

  process.kill((await cliStatus(sb, "db")).pid!, "SIGKILL"); // no restart policy: it stays down
  await until(async () => (await cliStatus(sb, "db")).status === "failed", "db to read failed");
  const r = await sb.cli(["platform", "health"]);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stdout, /^🔴 db: Failed - Crashed: killed by SIGKILL/m);
  assert.match(r.stdout, /Summary: 1 healthy, 0 unhealthy, 1 not running, 1 failed$/m);
  const j = JSON.parse((await sb.cli(["platform", "health", "--json"])).stdout);
  assert.equal(j.summary.failed, 1);
  assert.equal(j.services.find((h: { name: string }) => h.name === "db").state, "failed");

  const one = await sb.cli(["services", "health", "db"]);
  assert.equal(one.code, 1, one.stdout);
  assert.match(one.stdout, /Status: failed/);
  const idle = await sb.cli(["services", "health", "idle"]);
  assert.equal(idle.code, 1, "a stopped service is not healthy either");
  assert.match(idle.stdout, /Status: not running/);
});
