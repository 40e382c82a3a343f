/** The fingerprint of a service's configuration, and the keys a reload reports as changed. */
import assert from "node:assert/strict";
import { canonicalJson, configHashes } from "../../core/registry/config_hash.ts";
import { changedKeys } from "../../core/lifecycle/reload.ts";
import type { Service } from "../../core/types.ts";

function service(): Service {
  return {
    name: "api",
    type: "platform",
    category: "api",
    description: "",
    required_for: [],
    dependencies: ["db"],
    conflicts: [],
    deployment: {
      mode: "binary",
      binary: { binary_path: "node", args: ["app.js", "--port", "80"], env: { A: "1" } },
    },
    health_check: { type: "http", interval: 10, retries: 3, timeout: 5, http: { port: 80 } },
    startup: {
      auto_start: true,
      start_timeout: 30,
      start_order: 100,
      restart_on_failure: false,
      max_restarts: 3,
      restart_delay: 0.5,
      restart_delay_max: 30,
      restart_window: 60,
      restart_with_dependencies: false,
    },
    shutdown: { signal: "SIGTERM", timeout: 10 },
    logs: { max_size: 1024, keep: 5 },
  };
}

Deno.test("canonicalJson() sorts keys at every level and leaves undefined out", () => {
  assert.equal(
    canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: undefined } }),
    '{"a":{"d":[1,{"y":2,"z":1}]},"b":1}',
  );
});

/** `value` with the keys of every object in reverse order. */
function reversed(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(reversed);
  const entries = Object.entries(value).reverse().map(([k, v]) => [k, reversed(v)]);
  return Object.fromEntries(entries);
}

Deno.test("configHashes() is short hex and stable whatever the order of keys", () => {
  const a = service();
  const b = reversed(a) as Service;
  assert.notEqual(JSON.stringify(b), JSON.stringify(a));
  assert.match(configHashes(a).config_hash, /^[0-9a-f]{12}$/);
  assert.deepEqual(configHashes(b), configHashes(a));
});

Deno.test("configHashes(): a health check change is no deployment change; args and inputs are", () => {
  const base = configHashes(service());
  const check = service();
  check.health_check.interval = 2;
  assert.notEqual(configHashes(check).config_hash, base.config_hash);
  assert.equal(configHashes(check).deployment_hash, base.deployment_hash);

  const args = service();
  (args.deployment.binary as { args: string[] }).args.push("--debug");
  assert.notEqual(configHashes(args).deployment_hash, base.deployment_hash);

  const env = configHashes(service(), { "deployment.binary.env_file": { TOKEN: "b" } });
  assert.notEqual(env.deployment_hash, base.deployment_hash);
  assert.notEqual(env.config_hash, base.config_hash);
});

Deno.test("changedKeys() names the TOML paths that differ; an array is one value", () => {
  const before = service();
  const after = service();
  (after.deployment.binary as { args: string[] }).args[2] = "81";
  (after.deployment.binary as { env: Record<string, string> }).env.B = "2";
  after.health_check.interval = 2;
  after.dependencies = [];
  assert.deepEqual(changedKeys(before, after), [
    "dependencies",
    "deployment.binary.args",
    "deployment.binary.env.B",
    "health_check.interval",
  ]);
  assert.deepEqual(changedKeys(before, service()), []);
});
