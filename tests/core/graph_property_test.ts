/**
 * Property tests of the graph on random graphs from a seeded PRNG. A failure names its seed;
 * rerun one case with `GRAPH_SEED=<seed> deno test -A tests/core/graph_property_test.ts`.
 */
import assert from "node:assert/strict";
import process from "node:process";
import { Graph, type GraphNode } from "../../core/graph/graph.ts";
import { DependencyCycleError } from "../../core/errors.ts";
import { mulberry32 } from "../../scripts/gen_registry.ts";

const ONLY = process.env.GRAPH_SEED ? Number(process.env.GRAPH_SEED) : undefined;
const seeds = (base: number, count: number) =>
  ONLY === undefined ? Array.from({ length: count }, (_, i) => base + i) : [ONLY];

/** Run `check` once per seed; a failure says which seed broke it. */
function forEachSeed(base: number, count: number, check: (rng: () => number) => void) {
  for (const seed of seeds(base, count)) {
    try {
      check(mulberry32(seed));
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      throw new Error(`Property failed for GRAPH_SEED=${seed}: ${message}`, { cause: e });
    }
  }
}

interface Random {
  nodes: GraphNode[];
  /** name → names it depends on. */
  deps: Map<string, string[]>;
}

/** A random DAG: edges only from later to earlier creation index; names and input order shuffled. */
function randomDag(rng: () => number, min = 5, max = 60): Random {
  const n = min + Math.floor(rng() * (max - min + 1));
  const density = rng() * 0.3;
  const labels = shuffle(rng, Array.from({ length: n }, (_, i) => `s${i}`));
  const created = labels.map((name, i) => {
    const dependencies = labels.slice(0, i).filter(() => rng() < density);
    const start_order = rng() < 0.2 ? undefined : 1 + Math.floor(rng() * 10);
    return { name, dependencies, start_order };
  });
  const nodes = shuffle(rng, created);
  return { nodes, deps: new Map(nodes.map((x) => [x.name, [...x.dependencies]])) };
}

function shuffle<T>(rng: () => number, items: T[]): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** Brute force: everything `name` reaches along dependencies (itself excluded). */
function reachable(deps: Map<string, string[]>, name: string): Set<string> {
  const seen = new Set<string>();
  const todo = [...deps.get(name)!];
  while (todo.length) {
    const d = todo.pop()!;
    if (seen.has(d)) continue;
    seen.add(d);
    todo.push(...deps.get(d)!);
  }
  return seen;
}

/** Brute force: the heaviest dependency chain among `set`, counting only `set`'s weights. */
function longestChain(
  deps: Map<string, string[]>,
  set: Set<string>,
  w: (n: string) => number,
): number {
  let best = 0;
  const walk = (v: string, sum: number) => {
    const total = sum + (set.has(v) ? w(v) : 0);
    best = Math.max(best, total);
    for (const d of deps.get(v)!) walk(d, total);
  };
  for (const v of set) walk(v, 0);
  return best;
}

const position = (list: string[]) => new Map(list.map((n, i) => [n, i]));

Deno.test("graph.order() respects every edge and picks the lowest start_order among ready services", () => {
  forEachSeed(1000, 200, (rng) => {
    const { nodes, deps } = randomDag(rng);
    const g = new Graph(nodes);
    const order = g.order();
    assert.deepEqual([...order].sort(), nodes.map((x) => x.name).sort());
    const at = position(order);
    for (const [v, ds] of deps) {
      for (const d of ds) assert.ok(at.get(d)! < at.get(v)!, `${d} before ${v}`);
    }
    const key = (name: string) => {
      const i = nodes.findIndex((x) => x.name === name);
      return [nodes[i].start_order ?? 100, i];
    };
    const done = new Set<string>();
    for (const v of order) {
      const ready = nodes.filter((x) =>
        !done.has(x.name) && x.dependencies.every((d) => done.has(d))
      );
      const [want] = ready.map((x) => x.name).sort((a, b) => {
        const [sa, ia] = key(a), [sb, ib] = key(b);
        return sa - sb || ia - ib;
      });
      assert.equal(
        v,
        want,
        "the ready service with the lowest (start_order, input index) goes first",
      );
      done.add(v);
    }
    assert.deepEqual(g.problems(), []);
    assert.equal(g.findCycle(), null);
  });
});

Deno.test("graph.stopOrder() mirrors the start order, also on random subsets", () => {
  forEachSeed(2000, 200, (rng) => {
    const { nodes, deps } = randomDag(rng);
    const g = new Graph(nodes);
    assert.deepEqual(g.stopOrder(), g.order().reverse());
    const subset = nodes.map((x) => x.name).filter(() => rng() < 0.4);
    const stop = g.stopOrder(subset);
    assert.deepEqual([...stop].sort(), [...subset].sort());
    const at = position(stop);
    for (const a of subset) {
      for (const b of reachable(deps, a)) {
        if (at.has(b)) assert.ok(at.get(a)! < at.get(b)!, `${a} stops before its dependency ${b}`);
      }
    }
  });
});

Deno.test("graph.waves() puts every service one wave after its deepest dependency in the set", () => {
  forEachSeed(3000, 200, (rng) => {
    const { nodes, deps } = randomDag(rng);
    const g = new Graph(nodes);
    const subset = rng() < 0.5 ? undefined : nodes.map((x) => x.name).filter(() => rng() < 0.5);
    const set = new Set(subset ?? nodes.map((x) => x.name));
    const waves = g.waves(subset);
    const wave = new Map(waves.flatMap((w, k) => w.map((n) => [n, k] as const)));
    assert.equal(wave.size, set.size);
    assert.equal(waves.flat().length, set.size, "each service in one wave only");
    for (const v of set) {
      const below = [...reachable(deps, v)].filter((d) => set.has(d));
      const want = below.length ? Math.max(...below.map((d) => wave.get(d)!)) + 1 : 0;
      assert.equal(wave.get(v), want, `wave of ${v}`);
    }
    const input = position(nodes.map((x) => x.name));
    const so = (n: string) => nodes[input.get(n)!].start_order ?? 100;
    for (const w of waves) {
      assert.ok(w.length > 0, "no empty wave");
      const sorted = [...w].sort((a, b) => so(a) - so(b) || input.get(a)! - input.get(b)!);
      assert.deepEqual(w, sorted);
    }
  });
});

Deno.test("graph.criticalPath() is a real chain and no chain is longer", () => {
  forEachSeed(4000, 200, (rng) => {
    const { nodes, deps } = randomDag(rng, 5, 14);
    const g = new Graph(nodes);
    const weights = new Map(nodes.map((x) => [x.name, Math.floor(rng() * 5)]));
    const unit = rng() < 0.5;
    const w = unit ? () => 1 : (n: string) => weights.get(n)!;
    const subset = rng() < 0.5 ? undefined : nodes.map((x) => x.name).filter(() => rng() < 0.6);
    const set = new Set(subset ?? nodes.map((x) => x.name));
    const { path, length } = g.criticalPath(subset, w);
    for (let i = 1; i < path.length; i++) {
      assert.ok(reachable(deps, path[i]).has(path[i - 1]), `${path[i]} depends on ${path[i - 1]}`);
      if (!subset) assert.ok(deps.get(path[i])!.includes(path[i - 1]), "a direct edge");
    }
    assert.ok(path.every((n) => set.has(n)));
    assert.equal(length, path.reduce((s, n) => s + w(n), 0));
    assert.equal(length, longestChain(deps, set, w));
    if (unit) assert.equal(length, g.waves(subset).length, "as many waves as the longest chain");
  });
});

Deno.test("graph closure and transitive queries agree with brute-force reachability", () => {
  forEachSeed(5000, 200, (rng) => {
    const { nodes, deps } = randomDag(rng);
    const g = new Graph(nodes);
    const at = position(g.order());
    for (const { name } of nodes) {
      const want = [...reachable(deps, name)].sort((a, b) => at.get(a)! - at.get(b)!);
      assert.deepEqual(g.dependencies(name, { transitive: true }), want);
      assert.deepEqual([...g.closure([name])], [...want, name]);
      for (const d of g.dependents(name, { transitive: true })) {
        assert.ok(reachable(deps, d).has(name));
      }
    }
  });
});

Deno.test("graph.findCycle() and problems() always catch an injected cycle", () => {
  forEachSeed(6000, 200, (rng) => {
    const { nodes, deps } = randomDag(rng, 5, 40);
    const k = 1 + Math.floor(rng() * Math.min(8, nodes.length));
    const ring = shuffle(rng, nodes).slice(0, k).map((x) => x.name);
    ring.forEach((name, i) => {
      const next = ring[(i + 1) % k];
      const node = nodes.find((x) => x.name === name)!;
      if (!node.dependencies.includes(next)) node.dependencies = [...node.dependencies, next];
      deps.set(name, [...node.dependencies]);
    });
    const g = new Graph(nodes);
    const isCycle = (c: string[]) => {
      assert.ok(c.length >= 2 && c[0] === c.at(-1), `closed path ${c.join(" -> ")}`);
      assert.equal(new Set(c).size, c.length - 1, "no service twice");
      for (let i = 1; i < c.length; i++) assert.ok(deps.get(c[i - 1])!.includes(c[i]), "real edge");
    };
    const found = g.findCycle();
    assert.ok(found, "a cycle is found");
    isCycle(found);
    const reported = g.problems().filter((p) => p.message.startsWith("Dependency cycle: "))
      .map((p) => p.message.slice(18).replace(/ \(.*\)$/, "").split(" -> "));
    reported.forEach(isCycle);
    assert.ok(reported.some((c) => c.join() === found.join()), "findCycle() is among the reported");
    const edges = (c: string[]) => c.slice(1).map((b, i) => `${c[i]}>${b}`);
    const injected = new Set(edges([...ring, ring[0]]));
    assert.ok(
      reported.some((c) => edges(c).some((e) => injected.has(e))),
      "the injected cycle is hit",
    );
    assert.throws(
      () => g.order(),
      (e: unknown) => e instanceof DependencyCycleError && (isCycle(e.cycle), true),
    );
  });
});
