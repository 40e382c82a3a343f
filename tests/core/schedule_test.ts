/**
 * The DAG scheduler shared by start and stop (core/lifecycle/_schedule.ts): on seeded random
 * graphs with random failures, a node runs only after everything it waits for is done, a node
 * with a failed ancestor is blocked (by that ancestor's name) and never runs, every other node
 * runs once, nodes ready together start in the order given, and it ends.
 */
import assert from "node:assert/strict";
import { schedule } from "../../core/lifecycle/_schedule.ts";
import { mulberry32 } from "../../scripts/gen_registry.ts";

Deno.test("schedule: order, blocking by the root cause, each node once, on random DAGs", async () => {
  for (let seed = 1; seed <= 20; seed++) {
    const rng = mulberry32(seed);
    const n = 40 + Math.floor(rng() * 200);
    const names = Array.from({ length: n }, (_, i) => `s${i}`);
    const deps = new Map(names.map((name, i) => {
      const d = new Set<string>();
      const want = Math.floor(rng() * Math.min(4, i + 1));
      while (d.size < want && i > 0) d.add(names[Math.floor(rng() * i)]);
      return [name, [...d]];
    }));
    const fails = new Set(names.filter(() => rng() < 0.05));
    const early = new Set(names.filter(() => rng() < 0.3)); // ready() before work resolves
    const done = new Set<string>();
    const ran: string[] = [];
    const blocked = new Map<string, string>();
    await schedule(names, (x) => deps.get(x)!, async (name, ready) => {
      for (const d of deps.get(name)!) assert.ok(done.has(d), `${name} ran before ${d}`);
      assert.ok(!ran.includes(name), `${name} ran twice`);
      ran.push(name);
      await Promise.resolve();
      if (fails.has(name)) return false;
      if (early.has(name)) {
        done.add(name);
        ready();
      }
      await new Promise((r) => setTimeout(r, rng() < 0.5 ? 0 : 1));
      done.add(name);
      return true;
    }, (name, by) => blocked.set(name, by));
    // The expected fate of each node, from the graph alone.
    const rootOf = new Map<string, string | undefined>();
    for (const name of names) {
      const bad = deps.get(name)!.map((d) => fails.has(d) ? d : rootOf.get(d)).find(Boolean);
      rootOf.set(name, bad);
    }
    for (const name of names) {
      const root = rootOf.get(name);
      if (root) {
        assert.ok(!ran.includes(name), `seed ${seed}: ${name} ran though ${root} failed`);
        assert.ok(blocked.has(name), `seed ${seed}: ${name} not blocked (root ${root})`);
        assert.ok(fails.has(blocked.get(name)!), `seed ${seed}: ${name} blocked by a non-failure`);
      } else {
        assert.ok(ran.includes(name), `seed ${seed}: ${name} never ran`);
        assert.ok(!blocked.has(name));
      }
    }
    // Nodes with nothing to wait for start at once, in the order given.
    const roots = names.filter((x) => deps.get(x)!.length === 0);
    assert.deepEqual(ran.slice(0, roots.length), roots);
  }
});

Deno.test("schedule: an empty list ends at once; waits outside the list are ignored", async () => {
  await schedule([], () => [], () => Promise.resolve(true), () => {});
  const ran: string[] = [];
  await schedule(["a", "b"], (x) => (x === "b" ? ["a", "elsewhere"] : []), (name) => {
    ran.push(name);
    return Promise.resolve(true);
  }, () => {});
  assert.deepEqual(ran, ["a", "b"]);
});
