import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parse } from "smol-toml";
import { Graph } from "../../core/graph/graph.ts";
import {
  generateRegistry,
  mulberry32,
  pm2Ecosystem,
  sleepDag,
  sleepRegistry,
} from "../../scripts/gen_registry.ts";

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

interface SleepGenerated {
  dependencies: string[];
  deployment: {
    mode: string;
    binary: { binary_path: string; args: string[]; env?: Record<string, string> };
  };
  health_check: { type: string; interval: number; file: { path: string } };
  startup: { auto_start: boolean; restart_on_failure: boolean };
}

/** The services of `text` as plain objects (inline tables parse with a null prototype). */
const sleepTables = (text: string): Record<string, SleepGenerated> =>
  JSON.parse(JSON.stringify(parse(text))).services ?? {};

Deno.test("sleepDag() makes a seeded DAG of exactly the waves asked for", () => {
  const dag = sleepDag(200, { seed: 3 });
  assert.deepEqual(sleepDag(200, { seed: 3 }), dag);
  assert.notDeepEqual(sleepDag(200, { seed: 4 }), dag);
  const g = new Graph(dag.map((s) => ({ name: s.name, dependencies: s.dependencies })));
  assert.deepEqual(g.problems(), []);
  const waves = g.waves().filter((w) => w.length);
  assert.equal(waves.length, 9);
  for (const [i, wave] of waves.entries()) {
    for (const name of wave) assert.equal(dag.find((s) => s.name === name)!.wave, i);
  }
  assert.ok(waves.every((w) => w.length >= 22 && w.length <= 23), "even waves of 200");
  for (const s of dag) {
    assert.ok(s.dependencies.every((d) => d < s.name), "dependencies on earlier services only");
    assert.ok(s.dependencies.length <= 3);
    assert.equal(s.wave === 0, s.dependencies.length === 0);
  }
  assert.equal(new Graph(sleepDag(1000).map((s) => s)).waves().filter((w) => w.length).length, 9);
  assert.equal(sleepDag(4, { waves: 9 }).at(-1)!.wave, 3, "fewer services than waves");
  assert.ok(sleepDag(300, { maxDeps: 1 }).every((s) => s.dependencies.length <= 1));
  assert.deepEqual(sleepDag(0), []);
  assert.throws(() => sleepDag(10, { waves: 0 }), RangeError);
  assert.throws(() => sleepDag(10, { maxDeps: 0 }), RangeError);
});

Deno.test("generateRegistry() in sleep mode writes auto-start sleeps with file checks", () => {
  const text = generateRegistry(200, { mode: "sleep", seed: 3 });
  assert.equal(text, sleepRegistry(sleepDag(200, { seed: 3 })));
  const table = sleepTables(text);
  const dag = sleepDag(200, { seed: 3 });
  assert.deepEqual(Object.keys(table), dag.map((s) => s.name));
  for (const s of dag) {
    const t = table[s.name];
    assert.deepEqual(t.dependencies, s.dependencies);
    assert.deepEqual(t.deployment, {
      mode: "binary",
      binary: { binary_path: "/bin/sleep", args: ["3600"] },
    });
    assert.deepEqual(t.health_check, { type: "file", interval: 30, file: { path: "/dev/null" } });
    assert.equal(t.startup.auto_start, true);
    assert.equal(t.startup.restart_on_failure, false);
  }
  const custom = sleepTables(sleepRegistry(dag.slice(0, 3), {
    readyPath: "/tmp/{name}.ready",
    restartOnFailure: true,
    interval: 5,
    env: { MARK: "x" },
  }));
  assert.equal(custom["svc-0001"].health_check.file.path, "/tmp/svc-0001.ready");
  assert.equal(custom["svc-0001"].health_check.interval, 5);
  assert.equal(custom["svc-0001"].startup.restart_on_failure, true);
  assert.deepEqual(custom["svc-0001"].deployment.binary.env, { MARK: "x" });
  assert.ok(generateRegistry(50_000, { mode: "sleep" }).length > 0, "no ports to run out of");
});

Deno.test("pm2Ecosystem() lists the same programs for PM2, unordered, autorestart on", () => {
  const dag = sleepDag(50, { seed: 9 });
  const { apps } = pm2Ecosystem(dag);
  assert.deepEqual(apps.map((a) => a.name), dag.map((s) => s.name));
  assert.deepEqual(apps[0], {
    name: "svc-0000",
    script: "/bin/sleep",
    args: "3600",
    interpreter: "none",
    exec_mode: "fork",
    autorestart: true,
  });
  const script = fileURLToPath(new URL("../../scripts/gen_registry.ts", import.meta.url));
  const out = execFileSync(
    Deno.execPath(),
    ["run", script, "50", "--seed", "9", "--mode", "sleep", "--pm2"],
    { encoding: "utf8" },
  );
  assert.deepEqual(JSON.parse(out), { apps });
  const toml = execFileSync(
    Deno.execPath(),
    ["run", script, "50", "--seed", "9", "--mode", "sleep", "--waves", "4"],
    { encoding: "utf8" },
  );
  assert.equal(toml, sleepRegistry(sleepDag(50, { seed: 9, waves: 4 })));
});
