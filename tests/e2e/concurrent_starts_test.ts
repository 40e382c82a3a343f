/**
 * Starts asked for at once in one process (the agent serving two forwarded starts, a library
 * user) run together under one hold of the home's platform lock; a stop asked for meanwhile waits
 * for them, and a start asked for after that stop waits for the stop. Across processes the lock
 * stays exclusive (tests/e2e/crash_safety_test.ts and the CLI tests).
 */
import assert from "node:assert/strict";
import { startServices, stopServices } from "../../mod.ts";
import type { LifecycleEvent } from "../../mod.ts";
import { Sandbox } from "./_registry.ts";

/** Events of one operation with the wall time each arrived (operations' clocks differ). */
class Stamped {
  readonly seen: { e: LifecycleEvent; t: number }[] = [];
  readonly onEvent = (e: LifecycleEvent) => this.seen.push({ e, t: performance.now() });
  at(type: LifecycleEvent["type"], service: string): number {
    const hit = this.seen.find((s) => s.e.type === type && s.e.service === service);
    if (!hit) throw new Error(`no ${type} of ${service}`);
    return hit.t;
  }
}

Deno.test("starts in one process run together; a stop waits for them, a later start for the stop", async () => {
  await using sb = await Sandbox.create([
    { name: "a", readyAfter: 400 },
    { name: "b", readyAfter: 400 },
    { name: "shared", readyAfter: 100 },
    { name: "c", deps: ["shared"] },
    { name: "d", deps: ["shared"] },
  ]);
  const p = await sb.open();
  const one = new Stamped();
  const two = new Stamped();
  const [ra, rb] = await Promise.all([
    startServices(p, ["a"], { onEvent: one.onEvent }),
    startServices(p, ["b"], { onEvent: two.onEvent }),
  ]);
  assert.ok(ra.ok && rb.ok, JSON.stringify([ra.outcomes, rb.outcomes]));
  // Together: b started before a was healthy (one after the other, b would wait 400 ms for a).
  assert.ok(two.at("started", "b") < one.at("healthy", "a"), "the second start waited");

  // Two starts needing the same dependency: it is started once, the other waits for it.
  const [rc, rd] = await Promise.all([startServices(p, ["c"]), startServices(p, ["d"])]);
  assert.ok(rc.ok && rd.ok, JSON.stringify([rc.outcomes, rd.outcomes]));
  const shared = [rc, rd].map((r) => r.outcomes.find((o) => o.name === "shared")!.status).sort();
  assert.deepEqual(shared, ["already_running", "started"]);

  // A stop asked for while a start runs waits for it; a start asked for after the stop waits
  // for the stop (it finds a stopped, and starts it again).
  await stopServices(p, ["a", "b", "c", "d", "shared"]);
  const order: string[] = [];
  const first = startServices(p, ["a"]).then((r) => (order.push("start a"), r));
  const stop = stopServices(p, ["a"]).then((r) => (order.push("stop a"), r));
  const again = startServices(p, ["a"]).then((r) => (order.push("start a again"), r));
  const [r1, r2, r3] = await Promise.all([first, stop, again]);
  assert.deepEqual(order, ["start a", "stop a", "start a again"]);
  assert.equal(r1.outcomes[0].status, "started");
  assert.equal(r2.outcomes[0].status, "stopped");
  assert.equal(r3.outcomes.find((o) => o.name === "a")!.status, "started");
});
