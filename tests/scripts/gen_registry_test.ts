import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parse } from "smol-toml";
import { Graph } from "../../core/graph/graph.ts";
import { generateRegistry, mulberry32 } from "../../scripts/gen_registry.ts";

interface Generated {
  name: string;
  dependencies: string[];
  required_for: string[];
  deployment: { mode: string; binary?: { binary_path: string }; docker?: { image: string } };
  health_check: { type: string; http: { endpoint: string } };
  startup: { start_order: number };
}

const services = (text: string) =>
  Object.values((parse(text) as { services?: Record<string, Generated> }).services ?? {});

Deno.test("generateRegistry() writes a registry whose graph has no problem", () => {
  const list = services(generateRegistry(500, { seed: 42 }));
  assert.equal(list.length, 500);
  assert.equal(list[0].name, "svc-0000");
  assert.equal(list[499].name, "svc-0499");
  const g = new Graph(list);
  assert.deepEqual(g.problems(), []);
  assert.equal(g.order().length, 500);
  assert.ok(g.operations().length > 0, "some required_for operations");
  const ports = new Set(list.map((s) => new URL(s.health_check.http.endpoint).port));
  assert.equal(ports.size, 500, "distinct health-check ports");
  for (const s of list) {
    assert.equal(s.deployment.mode, "binary");
    assert.equal(s.deployment.binary?.binary_path, "/bin/true");
    assert.equal(new URL(s.health_check.http.endpoint).hostname, "127.0.0.1");
    assert.ok(s.dependencies.length <= 3);
    assert.ok(s.dependencies.every((d) => d < s.name), "dependencies on earlier services only");
    assert.ok(s.startup.start_order >= 1 && s.startup.start_order <= 100);
  }
});

Deno.test("generateRegistry() is repeatable per seed and honours its options", () => {
  assert.equal(generateRegistry(50, { seed: 7 }), generateRegistry(50, { seed: 7 }));
  assert.notEqual(generateRegistry(50, { seed: 7 }), generateRegistry(50, { seed: 8 }));
  const wide = services(generateRegistry(200, { maxDeps: 6, mode: "docker" }));
  assert.ok(wide.some((s) => s.dependencies.length > 3));
  assert.ok(wide.every((s) => s.dependencies.length <= 6 && s.deployment.docker?.image));
  const mixed = new Set(
    services(generateRegistry(200, { mode: "mixed" })).map((s) => s.deployment.mode),
  );
  assert.deepEqual([...mixed].sort(), ["binary", "docker"]);
  assert.equal(services(generateRegistry(0)).length, 0);
  assert.throws(() => generateRegistry(10, { mode: "podman" }), RangeError);
  assert.throws(() => generateRegistry(50_000), /ports run out/);
});

Deno.test("mulberry32() gives the same floats in [0, 1) for the same seed", () => {
  const a = mulberry32(99), b = mulberry32(99);
  const xs = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(xs, Array.from({ length: 1000 }, () => b()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  assert.ok(new Set(xs).size > 990);
});

Deno.test("gen_registry.ts prints the registry when run as a script", () => {
  const script = fileURLToPath(new URL("../../scripts/gen_registry.ts", import.meta.url));
  const out = execFileSync(
    Deno.execPath(),
    ["run", script, "12", "--seed", "5", "--max-deps", "2"],
    {
      encoding: "utf8",
    },
  );
  assert.equal(out, generateRegistry(12, { seed: 5, maxDeps: 2 }));
});
