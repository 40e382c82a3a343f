import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expandString } from "../../core/registry/_expand.ts";
import { locateKeys } from "../../core/registry/_toml_lines.ts";
import { PluginRegistry } from "../../core/plugins/registry.ts";
import {
  BUNDLED_REGISTRY,
  discoverRegistry,
  loadRegistry,
  validateRegistry,
} from "../../core/registry/load.ts";
import { RegistryError } from "../../core/errors.ts";

const FIXTURES = fileURLToPath(new URL("../fixtures/registries/", import.meta.url));
const ENV = { HOME: "/home/tester", PATH: "/usr/bin:/bin" };
const plugins = PluginRegistry.discover({ cwd: "/nonexistent", home: "/nonexistent", env: {} });

/** `# expect: ...` lines of a fixture. */
function expectations(text: string, key: string): string[] {
  return [...text.matchAll(new RegExp(`^# ${key}: (.*)$`, "gm"))].map((m) => m[1].trim());
}

for (const file of readdirSync(join(FIXTURES, "invalid")).sort()) {
  const path = join(FIXTURES, "invalid", file);
  Deno.test(`registry rejects invalid/${file} with its path and message`, async () => {
    const text = readFileSync(path, "utf8");
    const expected = expectations(text, "expect");
    assert.ok(expected.length > 0, "fixture must state what it expects");
    const v = await validateRegistry({ config: path, env: ENV, plugins });
    assert.equal(v.registry, undefined);
    const got = v.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message));
    for (const e of expected) {
      assert.ok(
        got.some((g) => g.includes(e)),
        `expected an issue containing\n  ${e}\ngot\n  ${got.join("\n  ")}`,
      );
    }
    for (const line of expectations(text, "expect-line")) {
      assert.ok(
        v.issues.some((i) => i.line === Number(line)),
        `expected an issue on line ${line}: ${JSON.stringify(v.issues)}`,
      );
    }
  });
}

for (const file of readdirSync(join(FIXTURES, "valid")).sort()) {
  const path = join(FIXTURES, "valid", file);
  Deno.test(`registry accepts valid/${file}`, async () => {
    const v = await validateRegistry({ config: path, env: ENV, plugins });
    assert.deepEqual(v.issues, []);
    const names = expectations(readFileSync(path, "utf8"), "expect-services")[0];
    if (names) assert.deepEqual(v.registry!.services.map((s) => s.name), names.split(/,\s*/));
  });
}

Deno.test("registry applies the spec's defaults", async () => {
  const reg = await loadRegistry({
    config: join(FIXTURES, "valid/minimal.toml"),
    env: ENV,
    plugins,
  });
  const api = reg.byName.get("api")!;
  assert.deepEqual(
    { hc: api.health_check, startup: api.startup, shutdown: api.shutdown },
    {
      hc: { type: "none", interval: 10, retries: 3, timeout: 5 },
      startup: {
        auto_start: false,
        start_timeout: 30,
        start_order: 100,
        restart_on_failure: false,
        max_restarts: 3,
        restart_delay: 0.5,
        restart_delay_max: 30,
        restart_window: 60,
      },
      shutdown: { signal: "SIGTERM", timeout: 10 },
    },
  );
  assert.deepEqual(api.logs, { max_size: 10 * 1024 * 1024, keep: 5 });
  assert.deepEqual(api.deployment, {
    mode: "binary",
    binary: { binary_path: "/bin/true", args: [], env: {} },
  });
  assert.equal(api.type, "utility");
});

Deno.test("registry expands ${VAR}, ${VAR:-default}, ${HOME} and a leading ~", async () => {
  const reg = await loadRegistry({
    config: join(FIXTURES, "valid/all_modes_and_checks.toml"),
    env: { ...ENV, PORT: "7100" },
    plugins,
  });
  const bin = reg.byName.get("bin")!.deployment.binary as Record<string, unknown>;
  assert.equal(bin.binary_path, "/home/tester/bin/app");
  assert.deepEqual(bin.args, ["--port", "7100"]);
  assert.equal(bin.working_dir, "/home/tester");
  assert.equal(reg.byName.get("bin")!.shutdown.signal, "SIGTERM");
  assert.equal(expandString("${NOPE:-x}-$${HOME}-~/a", ENV), "x-${HOME}-~/a");
  assert.equal(expandString("~/a", ENV), "/home/tester/a");
  const missing: string[] = [];
  expandString("${A}${B:-b}${C}", {}, missing);
  assert.deepEqual(missing, ["A", "C"]);
});

Deno.test("registry reports every problem at once, with lines", async () => {
  const path = join(FIXTURES, "invalid/several_problems.toml");
  await assert.rejects(loadRegistry({ config: path, env: ENV, plugins }), (e: unknown) => {
    assert.ok(e instanceof RegistryError);
    assert.equal(e.exitCode, 2);
    assert.ok(e.issues.length >= 3);
    assert.ok(e.lines().every((l) => l.startsWith(`${path}:`)), e.lines().join("\n"));
    return true;
  });
});

Deno.test("locateKeys maps headers, dotted keys and inline tables to lines", () => {
  const lines = locateKeys(
    '[services.a]\ntype = "x"\nhealth_check.type = "tcp"\n\n[services."b.c".deployment]\nmode = "binary"\n',
  );
  assert.equal(lines.get("services.a"), 1);
  assert.equal(lines.get("services.a.type"), 2);
  assert.equal(lines.get("services.a.health_check.type"), 3);
  assert.equal(lines.get('services."b.c".deployment.mode'), 6);
});

Deno.test("discoverRegistry follows --config, PROVISIONING_SERVICES, project, home, bundled", () => {
  const dir = mkdtempSync(join(tmpdir(), "prov-discover-"));
  try {
    const home = join(dir, "home");
    const cwd = join(dir, "cwd");
    mkdirSync(join(home, "config"), { recursive: true });
    mkdirSync(join(cwd, "provisioning", "config"), { recursive: true });
    const env = { PROVISIONING_HOME: home };
    assert.deepEqual(discoverRegistry({ cwd, env }), { file: BUNDLED_REGISTRY, source: "bundled" });
    writeFileSync(join(home, "config", "services.toml"), "");
    assert.equal(discoverRegistry({ cwd, env }).source, "home");
    writeFileSync(join(cwd, "provisioning", "config", "services.toml"), "");
    assert.equal(
      discoverRegistry({ cwd, env }).file,
      join(cwd, "provisioning", "config", "services.toml"),
    );
    assert.equal(
      discoverRegistry({ cwd, env: { ...env, PROVISIONING_SERVICES: "x.toml" } }).file,
      join(cwd, "x.toml"),
    );
    assert.equal(
      discoverRegistry({ cwd, env: { ...env, PROVISIONING_SERVICES: "x.toml" }, config: "/y.toml" })
        .file,
      "/y.toml",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("the bundled registry holds the spec's seven services", async () => {
  const reg = await loadRegistry({ config: BUNDLED_REGISTRY, env: ENV, plugins });
  assert.deepEqual(reg.services.map((s) => s.name), [
    "orchestrator",
    "control-center",
    "coredns",
    "gitea",
    "oci-registry",
    "mcp-server",
    "api-gateway",
  ]);
  assert.deepEqual(reg.services.filter((s) => s.startup.auto_start).map((s) => s.name), [
    "orchestrator",
  ]);
  assert.deepEqual(reg.byName.get("api-gateway")!.dependencies, [
    "orchestrator",
    "control-center",
    "mcp-server",
  ]);
});

Deno.test("a missing registry file is one clear issue", async () => {
  const v = await validateRegistry({ config: "/nonexistent/services.toml", env: ENV, plugins });
  assert.deepEqual(v.issues.map((i) => i.message), ["Cannot read registry: no such file"]);
});
