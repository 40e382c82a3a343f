import assert from "node:assert/strict";
import { Graph, type GraphNode } from "../../core/graph/graph.ts";
import { DependencyCycleError, UsageError } from "../../core/errors.ts";

/** The spec's seven services, in the bundled registry's order and start orders. */
function platform(): Graph {
  return new Graph([
    {
      name: "orchestrator",
      dependencies: [],
      start_order: 10,
      required_for: ["server", "workflow"],
    },
    {
      name: "control-center",
      dependencies: ["orchestrator"],
      start_order: 20,
      required_for: ["ui"],
    },
    {
      name: "coredns",
      dependencies: [],
      start_order: 5,
      required_for: ["dns"],
      conflicts: ["dnsmasq", "systemd-resolved"],
    },
    { name: "gitea", dependencies: [], start_order: 40, required_for: ["git"] },
    { name: "oci-registry", dependencies: [], start_order: 35, required_for: ["registry"] },
    { name: "mcp-server", dependencies: ["orchestrator"], start_order: 30, required_for: ["mcp"] },
    {
      name: "api-gateway",
      dependencies: ["orchestrator", "control-center", "mcp-server"],
      start_order: 45,
      required_for: ["api"],
    },
  ]);
}

const nodes = (spec: Record<string, string[]>): GraphNode[] =>
  Object.entries(spec).map(([name, dependencies]) => ({ name, dependencies }));

Deno.test("graph.order() starts dependencies first, then by start_order", () => {
  const g = platform();
  assert.deepEqual(g.order(), [
    "coredns",
    "orchestrator",
    "control-center",
    "mcp-server",
    "oci-registry",
    "gitea",
    "api-gateway",
  ]);
  assert.deepEqual(g.order(["api-gateway"]), [
    "orchestrator",
    "control-center",
    "mcp-server",
    "api-gateway",
  ]);
  assert.deepEqual(g.order(["control-center", "control-center"]), [
    "orchestrator",
    "control-center",
  ]);
  assert.deepEqual(g.order([]), []);
});

Deno.test("graph.order() breaks start_order ties by input order and defaults start_order to 100", () => {
  const g = new Graph([
    { name: "late", dependencies: [] },
    { name: "b", dependencies: [], start_order: 50 },
    { name: "a", dependencies: [], start_order: 50 },
    { name: "early", dependencies: [], start_order: 99 },
    { name: "from-startup", dependencies: [], startup: { start_order: 1 } },
  ]);
  assert.deepEqual(g.order(), ["from-startup", "b", "a", "early", "late"]);
});

Deno.test("graph.order() takes a single name given as a string", () => {
  assert.deepEqual(platform().order("control-center"), ["orchestrator", "control-center"]);
});

Deno.test("graph.stopOrder() stops exactly the given services, dependents first", () => {
  const g = platform();
  assert.deepEqual(g.stopOrder(), g.order().reverse());
  assert.deepEqual(g.stopOrder(["orchestrator", "api-gateway", "gitea"]), [
    "api-gateway",
    "gitea",
    "orchestrator",
  ]);
  assert.deepEqual(g.stopOrder(["orchestrator"]), ["orchestrator"]);
});

Deno.test("graph.stopOrder() respects dependencies through services outside the set", () => {
  const g = new Graph(nodes({ db: [], cache: ["db"], web: ["cache"] }));
  assert.deepEqual(g.stopOrder(["db", "web"]), ["web", "db"]);
});

Deno.test("graph.dependents() lists who requires a service, in start order", () => {
  const g = platform();
  assert.deepEqual(g.dependents("orchestrator"), ["control-center", "mcp-server", "api-gateway"]);
  assert.deepEqual(g.dependents("control-center"), ["api-gateway"]);
  assert.deepEqual(g.dependents("gitea"), []);
  const chain = new Graph(nodes({ a: [], b: ["a"], c: ["b"] }));
  assert.deepEqual(chain.dependents("a"), ["b"]);
  assert.deepEqual(chain.dependents("a", { transitive: true }), ["b", "c"]);
});

Deno.test("graph.dependencies() lists direct or transitive dependencies in start order", () => {
  const g = platform();
  assert.deepEqual(g.dependencies("api-gateway"), ["orchestrator", "control-center", "mcp-server"]);
  assert.deepEqual(g.dependencies("control-center", { transitive: true }), ["orchestrator"]);
  const chain = new Graph(nodes({ c: ["b"], b: ["a"], a: [] }));
  assert.deepEqual(chain.dependencies("c"), ["b"]);
  assert.deepEqual(chain.dependencies("c", { transitive: true }), ["a", "b"]);
  assert.deepEqual(chain.dependencies("c", { transitive: true }), ["a", "b"], "cached answer");
});

Deno.test("graph.closure() adds every transitive dependency", () => {
  const g = platform();
  assert.deepEqual([...g.closure(["control-center", "gitea"])], [
    "orchestrator",
    "control-center",
    "gitea",
  ]);
  assert.deepEqual([...g.closure([])], []);
});

Deno.test("graph.waves() groups services whose dependencies are in earlier waves", () => {
  const g = platform();
  assert.deepEqual(g.waves(), [
    ["coredns", "orchestrator", "oci-registry", "gitea"],
    ["control-center", "mcp-server"],
    ["api-gateway"],
  ]);
  assert.deepEqual(g.waves(["api-gateway", "orchestrator"]), [["orchestrator"], ["api-gateway"]]);
  assert.deepEqual(g.waves(["api-gateway", "gitea"]), [["gitea", "api-gateway"]]);
  assert.deepEqual(g.waves([]), []);
});

Deno.test("graph.criticalPath() finds the longest chain, weighted or not", () => {
  const g = platform();
  assert.deepEqual(g.criticalPath(), {
    path: ["orchestrator", "control-center", "api-gateway"],
    length: 3,
  });
  const slow = (n: string) => (n === "mcp-server" ? 10 : 1);
  assert.deepEqual(g.criticalPath(undefined, slow), {
    path: ["orchestrator", "mcp-server", "api-gateway"],
    length: 12,
  });
  assert.deepEqual(g.criticalPath(["gitea"]), { path: ["gitea"], length: 1 });
  assert.deepEqual(g.criticalPath(["api-gateway", "orchestrator"]), {
    path: ["orchestrator", "api-gateway"],
    length: 2,
  });
  assert.deepEqual(g.criticalPath(g.closure(["api-gateway"])).length, 3);
  assert.deepEqual(g.criticalPath([]), { path: [], length: 0 });
});

Deno.test("graph.requiredFor() gives an operation's services and their dependencies", () => {
  const g = platform();
  assert.deepEqual(g.requiredFor("ui"), ["orchestrator", "control-center"]);
  assert.deepEqual(g.requiredFor("api"), [
    "orchestrator",
    "control-center",
    "mcp-server",
    "api-gateway",
  ]);
  assert.deepEqual(g.requiredFor("server"), ["orchestrator"]);
  assert.deepEqual(g.requiredFor("nothing-needs-this"), []);
  assert.deepEqual(g.operations(), [
    "api",
    "dns",
    "git",
    "mcp",
    "registry",
    "server",
    "ui",
    "workflow",
  ]);
});

Deno.test("graph reports no problem for the spec's platform, foreign conflicts included", () => {
  const g = platform();
  assert.deepEqual(g.problems(), []);
  assert.equal(g.findCycle(), null);
  assert.equal(g.has("coredns"), true);
  assert.equal(g.has("dnsmasq"), false);
  assert.deepEqual(g.names, [
    "orchestrator",
    "control-center",
    "coredns",
    "gitea",
    "oci-registry",
    "mcp-server",
    "api-gateway",
  ]);
});

Deno.test("graph methods reject an unknown service with a did-you-mean hint", () => {
  const g = platform();
  for (const call of [() => g.order(["orchestrater"]), () => g.dependents("orchestrater")]) {
    assert.throws(call, (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.equal(e.message, 'Unknown service "orchestrater"');
      assert.deepEqual(e.hints, ['Did you mean "orchestrator"?']);
      assert.equal(e.exitCode, 2);
      return true;
    });
  }
  assert.throws(
    () => g.waves(["zzz"]),
    (e: unknown) => e instanceof UsageError && e.hints.length === 0,
  );
});

Deno.test("graph.problems() names an unknown dependency, with a hint when one is close", () => {
  const g = new Graph(nodes({ orchestrator: [], api: ["orchestrater", "postgres"] }));
  assert.deepEqual(g.problems(), [
    {
      service: "api",
      path: "services.api.dependencies",
      message: 'Unknown dependency "orchestrater" (did you mean "orchestrator"?)',
    },
    { service: "api", path: "services.api.dependencies", message: 'Unknown dependency "postgres"' },
  ]);
  assert.deepEqual(g.order(), ["orchestrator", "api"], "unknown dependencies are skipped");
});

Deno.test("graph reports a self-dependency as the cycle a -> a", () => {
  const g = new Graph(nodes({ ok: [], a: ["a"] }));
  assert.deepEqual(g.findCycle(), ["a", "a"]);
  assert.deepEqual(g.problems(), [
    {
      service: "a",
      path: "services.a.dependencies",
      message: 'Dependency cycle: a -> a ("a" depends on itself)',
    },
  ]);
  assert.throws(() => g.order(), (e: unknown) => {
    assert.ok(e instanceof DependencyCycleError);
    assert.deepEqual(e.cycle, ["a", "a"]);
    assert.equal(e.message, "Dependency cycle: a -> a");
    return true;
  });
  assert.deepEqual(g.order(["ok"]), ["ok"], "the acyclic part still has an order");
});

Deno.test("graph reports a two-service cycle", () => {
  const g = new Graph(nodes({ a: ["b"], b: ["a"] }));
  assert.deepEqual(g.findCycle(), ["a", "b", "a"]);
  assert.deepEqual(g.problems().map((p) => p.message), ["Dependency cycle: a -> b -> a"]);
  assert.throws(() => g.stopOrder(["a"]), DependencyCycleError);
  assert.throws(() => g.waves(), DependencyCycleError);
  assert.throws(() => g.criticalPath(), DependencyCycleError);
});

Deno.test("graph reports a long cycle as its exact path", () => {
  const g = new Graph(nodes({
    entry: ["n4"],
    n1: ["n2"],
    n2: ["n3"],
    n3: ["n4"],
    n4: ["n5"],
    n5: ["n6"],
    n6: ["n1"],
    free: [],
  }));
  const path = ["n1", "n2", "n3", "n4", "n5", "n6", "n1"];
  assert.deepEqual(g.findCycle(), path);
  assert.deepEqual(g.problems(), [
    {
      service: "n1",
      path: "services.n1.dependencies",
      message: `Dependency cycle: ${path.join(" -> ")}`,
    },
  ]);
  assert.throws(() => g.order(["entry"]), (e: unknown) => {
    assert.ok(e instanceof DependencyCycleError);
    assert.deepEqual(e.cycle, path);
    return true;
  });
  assert.deepEqual(g.order(["free"]), ["free"]);
  assert.deepEqual(g.dependents("n1", { transitive: true }).sort(), [
    "entry",
    "n2",
    "n3",
    "n4",
    "n5",
    "n6",
  ]);
});

Deno.test("graph.problems() reports a service that is both a dependency and a conflict", () => {
  const g = new Graph([
    { name: "db", dependencies: [] },
    { name: "api", dependencies: ["db"], conflicts: ["db", "dnsmasq"] },
  ]);
  assert.deepEqual(g.problems(), [{
    service: "api",
    path: "services.api.conflicts",
    message: 'Conflicting dependency "db": listed in both dependencies and conflicts',
  }]);
});

Deno.test("graph.problems() reports conflicts that no start can satisfy", () => {
  const g = new Graph([
    { name: "db", dependencies: [] },
    { name: "cache", dependencies: ["db"] },
    { name: "api", dependencies: ["cache"], conflicts: ["db"] },
    { name: "dns", dependencies: [], conflicts: ["worker"] },
    { name: "worker", dependencies: ["cache"] },
    { name: "web", dependencies: ["dns", "worker"] },
    { name: "lonely", dependencies: [], conflicts: ["db"] },
  ]);
  assert.deepEqual(g.problems().map((p) => `${p.path}: ${p.message}`), [
    'services.api.conflicts: Conflicting dependency "db": needed through api -> cache -> db',
    'services.dns.conflicts: Conflicting service "worker": "web" needs both',
  ]);
  const up = new Graph([
    { name: "db", dependencies: [], conflicts: ["api"] },
    { name: "api", dependencies: ["db"] },
  ]);
  assert.deepEqual(up.problems().map((p) => p.message), [
    'Conflicting service "api" depends on "db": api -> db',
  ]);
});

Deno.test("graph.problems() reports every problem at once, sorted by service", () => {
  const g = new Graph([
    { name: "a", dependencies: ["b"] },
    { name: "b", dependencies: ["a", "gitee"] },
    { name: "gitea", dependencies: ["gitea"] },
    { name: "api", dependencies: ["gitea"], conflicts: ["gitea"] },
    { name: "a", dependencies: [] },
  ]);
  assert.deepEqual(g.problems(), [
    {
      service: "a",
      path: "services.a",
      message: 'Duplicate service "a": only the first definition is used',
    },
    { service: "a", path: "services.a.dependencies", message: "Dependency cycle: a -> b -> a" },
    {
      service: "b",
      path: "services.b.dependencies",
      message: 'Unknown dependency "gitee" (did you mean "gitea"?)',
    },
    {
      service: "gitea",
      path: "services.gitea.dependencies",
      message: 'Dependency cycle: gitea -> gitea ("gitea" depends on itself)',
    },
    {
      service: "api",
      path: "services.api.conflicts",
      message: 'Conflicting dependency "gitea": listed in both dependencies and conflicts',
    },
  ]);
  assert.deepEqual(g.names, ["a", "b", "gitea", "api"]);
});

Deno.test("graph.problems() reports each distinct cycle", () => {
  const g = new Graph(nodes({ a: ["b", "c"], b: ["a"], c: ["a"], x: ["y"], y: ["x"] }));
  assert.deepEqual(g.problems().map((p) => p.message), [
    "Dependency cycle: a -> b -> a",
    "Dependency cycle: a -> c -> a",
    "Dependency cycle: x -> y -> x",
  ]);
});

Deno.test("graph handles a chain far deeper than the call stack", () => {
  const n = 50_000;
  const chain = Array.from({ length: n }, (_, i) => ({
    name: `s${i}`,
    dependencies: i ? [`s${i - 1}`] : [],
  }));
  const g = new Graph(chain);
  assert.equal(g.order()[n - 1], `s${n - 1}`);
  assert.equal(g.criticalPath().length, n);
  assert.equal(g.waves().length, n);
  chain[0].dependencies = [`s${n - 1}`];
  assert.equal(new Graph(chain).findCycle()?.length, n + 1);
});
