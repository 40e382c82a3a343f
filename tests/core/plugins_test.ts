import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { builtins } from "../../core/plugins/builtins.ts";
import { isPluginFile } from "../../core/plugins/_files.ts";
import { pluginApi } from "../../core/plugins/api.ts";
import {
  listPlugins,
  pluginDirs,
  PluginError,
  PluginRegistry,
} from "../../core/plugins/registry.ts";
import type { Check, Driver } from "../../core/types.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const FIXTURES = join(ROOT, "tests/fixtures/plugins");
const NOWHERE = { cwd: "/nonexistent", home: "/nonexistent", env: {} };

/** A temp directory with plugin files (`{ "drivers/x.js": "..." }`), removed on dispose. */
function pluginDir(files: Record<string, string>): { dir: string; [Symbol.dispose](): void } {
  const dir = mkdtempSync(join(tmpdir(), "prov-plugins-"));
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), text);
  }
  return { dir, [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A check plugin in factory form (no imports, so it loads from any directory). */
const checkSource = (type: string, message: string) =>
  `export default ({ z, defineCheck }) => defineCheck({ type: ${JSON.stringify(type)}, ` +
  `config: z.strictObject({}), run: () => Promise.resolve({ healthy: true, ` +
  `message: ${JSON.stringify(message)}, durationMs: 0 }) });\n`;

const listing = (dir: string) =>
  readdirSync(join(ROOT, dir)).filter(isPluginFile).map((f) => `${dir}/${f.replace(/\.ts$/, "")}`);

Deno.test("the bundled listing matches the plugin files in drivers/ and checks/", () => {
  const onDisk = ["drivers", "checks"].flatMap(listing);
  assert.deepEqual(Object.keys(builtins).sort(), onDisk.sort());
});

Deno.test("every bundled plugin loads through the loader and declares its file's name", async () => {
  const plugins = PluginRegistry.discover(NOWHERE);
  for (const mode of plugins.names("driver")) {
    assert.equal((await plugins.driver(mode)).mode, mode);
  }
  for (const type of plugins.names("check")) {
    assert.equal((await plugins.check(type)).type, type);
  }
  assert.deepEqual(plugins.names("driver"), [
    "binary",
    "docker",
    "docker-compose",
    "kubernetes",
    "remote",
    "shell",
  ]);
  assert.deepEqual(plugins.names("check"), ["command", "dns", "file", "http", "tcp"]);
});

Deno.test("plugin directories come in order: ./plugins, home, then PROVISIONING_PLUGIN_PATH", () => {
  const dirs = pluginDirs({
    cwd: "/work",
    home: "/home/u/.provisioning",
    env: { PROVISIONING_PLUGIN_PATH: "/opt/a:rel/b::/work/plugins" },
  });
  assert.deepEqual(dirs, [
    "/work/plugins",
    "/home/u/.provisioning/plugins",
    "/opt/a",
    "/work/rel/b",
  ]);
});

Deno.test("discovery lists plugin files without importing any of them", () => {
  const plugins = PluginRegistry.discover({
    ...NOWHERE,
    env: { PROVISIONING_PLUGIN_PATH: join(FIXTURES, "broken") },
  });
  assert.ok(plugins.has("driver", "exploding"));
  assert.ok(plugins.names("check").includes("misnamed"));
});

Deno.test("the project's own plugins/ folder as ./plugins is not listed twice", async () => {
  const plugins = PluginRegistry.discover({ cwd: ROOT, home: "/nonexistent", env: {} });
  assert.equal(plugins.entries("check").filter((e) => e.name === "dns").length, 1);
  assert.equal((await plugins.check("dns")).type, "dns");
});

Deno.test("a later directory offering the same name is a conflict naming both files", async () => {
  using a = pluginDir({ "checks/ping.js": checkSource("ping", "from a") });
  using b = pluginDir({ "checks/ping.mjs": checkSource("ping", "from b") });
  const plugins = PluginRegistry.discover({
    ...NOWHERE,
    env: { PROVISIONING_PLUGIN_PATH: `${a.dir}:${b.dir}` },
  });
  const error = await plugins.check("ping").then(() => undefined, (e) => e);
  assert.ok(error instanceof PluginError);
  assert.equal(
    error.message,
    `Conflicting check plugins for "ping": "${join(a.dir, "checks/ping.js")}" and "${
      join(b.dir, "checks/ping.mjs")
    }" (to replace the first, rename the second to ping.override.mjs)`,
  );
  assert.deepEqual(error.files, [join(a.dir, "checks/ping.js"), join(b.dir, "checks/ping.mjs")]);
});

Deno.test("a <name>.override file in a later directory replaces the earlier plugin when allowed", async () => {
  using a = pluginDir({ "checks/ping.js": checkSource("ping", "from a") });
  using b = pluginDir({ "checks/ping.override.js": checkSource("ping", "from b") });
  const plugins = PluginRegistry.discover({
    ...NOWHERE,
    env: { PROVISIONING_PLUGIN_PATH: `${a.dir}:${b.dir}` },
  });
  plugins.allowOverrides(["ping"]);
  const ctx = { signal: new AbortController().signal, timeoutMs: 100, service: "s", env: {} };
  assert.equal((await (await plugins.check("ping")).run({}, ctx)).message, "from b");
  const row = (await plugins.list()).find((p) => p.name === "ping")!;
  assert.equal(row.file, join(b.dir, "checks/ping.override.js"));
  assert.equal(row.overrides, join(a.dir, "checks/ping.js"));
});

Deno.test("a user plugin may override a built-in only through an override file", async () => {
  using plain = pluginDir({ "checks/tcp.js": checkSource("tcp", "mine") });
  using over = pluginDir({ "checks/tcp.override.js": checkSource("tcp", "mine") });
  const conflict = PluginRegistry.discover({
    ...NOWHERE,
    env: { PROVISIONING_PLUGIN_PATH: plain.dir },
  });
  await assert.rejects(
    conflict.check("tcp"),
    /Conflicting check plugins for "tcp": "checks\/tcp\.ts"/,
  );
  const replaced = PluginRegistry.discover({
    ...NOWHERE,
    env: { PROVISIONING_PLUGIN_PATH: over.dir },
  });
  replaced.allowOverrides(["tcp"]);
  const ctx = { signal: new AbortController().signal, timeoutMs: 100, service: "s", env: {} };
  assert.equal((await (await replaced.check("tcp")).run({}, ctx)).message, "mine");
});

/** A plugin file that records it was imported (in `globalThis.__imported`), then loads fine. */
const recordingCheck = (type: string, marker: string) =>
  `(globalThis.__imported ??= []).push(${JSON.stringify(marker)});\n` + checkSource(type, "over");
const importedNames = () => (globalThis as { __imported?: string[] }).__imported ?? [];

Deno.test("an override file the registry did not allow is an error and is never imported", async () => {
  using over = pluginDir({
    "checks/tcp.override.js": recordingCheck("tcp", "tcp-marker"),
    "drivers/docker.override.js": recordingCheck("docker", "docker-marker"),
  });
  const plugins = PluginRegistry.discover({
    ...NOWHERE,
    env: { PROVISIONING_PLUGIN_PATH: over.dir },
  });
  await assert.rejects(plugins.check("tcp"), (e: unknown) => {
    assert.ok(e instanceof PluginError);
    assert.equal(
      e.message,
      `Not using check plugin "${join(over.dir, "checks/tcp.override.js")}": it would ` +
        `override "tcp" of "checks/tcp.ts", and the registry does not allow it`,
    );
    assert.deepEqual(e.hints, [
      'To use it, add to the registry: [plugins] override = ["tcp"]; else remove the file',
    ]);
    return true;
  });
  const rows = await plugins.list({ load: true }); // even loading every plugin skips it
  assert.match(rows.find((r) => r.name === "docker")!.error!, /does not allow it/);
  assert.deepEqual(importedNames().filter((n) => n.endsWith("-marker")), []);
  plugins.allowOverrides(["tcp"]);
  assert.equal((await plugins.check("tcp")).type, "tcp");
  assert.deepEqual(importedNames().filter((n) => n.endsWith("-marker")), ["tcp-marker"]);
});

Deno.test("plugins list imports only what the registry uses, with its override opt-ins", async () => {
  using d = pluginDir({
    "plugins/checks/tcp.override.js": recordingCheck("tcp", "tcp-list"),
    "plugins/drivers/evil.js": `(globalThis.__imported ??= []).push("evil-list");\n`,
    "services.toml": `[plugins]\noverride = ["tcp"]\n[services.a.deployment]\nmode = "binary"\n` +
      `[services.a.deployment.binary]\nbinary_path = "/bin/true"\n` +
      `[services.a.health_check]\ntype = "tcp"\n[services.a.health_check.tcp]\nport = 1\n`,
  });
  const where = { cwd: d.dir, home: join(d.dir, "home"), env: {} };
  const rows = await listPlugins({ ...where, config: join(d.dir, "services.toml") });
  assert.deepEqual(importedNames().filter((n) => n.endsWith("-list")), ["tcp-list"]);
  const tcp = rows.find((r) => r.name === "tcp")!;
  assert.equal(tcp.file, join(d.dir, "plugins/checks/tcp.override.js"));
  assert.equal(tcp.error, undefined);
  assert.equal(rows.find((r) => r.name === "evil")!.error, undefined); // listed, not run
  await listPlugins({ ...where, config: join(d.dir, "services.toml"), load: "all" });
  assert.ok(importedNames().includes("evil-list"), "load: all imports every plugin");
});

Deno.test("a plugin that throws while imported is an error naming its file", async () => {
  const plugins = PluginRegistry.discover({
    ...NOWHERE,
    env: { PROVISIONING_PLUGIN_PATH: join(FIXTURES, "broken") },
  });
  const file = join(FIXTURES, "broken/drivers/exploding.ts");
  await assert.rejects(plugins.driver("exploding"), (e: Error) => {
    assert.ok(e instanceof PluginError);
    assert.equal(e.message, `Cannot load driver plugin "${file}": exploding on purpose`);
    assert.deepEqual(e.files, [file]);
    return true;
  });
  assert.equal((await plugins.driver("binary")).mode, "binary"); // the others still load
});

Deno.test("a default export of another name or shape is an error naming the file", async () => {
  const plugins = PluginRegistry.discover({
    ...NOWHERE,
    env: { PROVISIONING_PLUGIN_PATH: join(FIXTURES, "broken") },
  });
  await assert.rejects(
    plugins.check("misnamed"),
    new RegExp(
      `^PluginError: Invalid check plugin "${
        join(FIXTURES, "broken/checks/misnamed.ts")
      }": it declares type "renamed" but its file name says "misnamed"$`,
    ),
  );
  await assert.rejects(
    plugins.check("shapeless"),
    /Invalid check plugin ".*shapeless\.ts": its default export is not a Check \(type, config, run\)/,
  );
});

Deno.test("a factory default export receives the plugin API, and a throwing one is reported", async () => {
  using d = pluginDir({
    "checks/seen.js": `export default (api) => { globalThis.__seenApi = api; ` +
      `return api.defineCheck({ type: "seen", config: api.z.object({}), run: async () => ({ healthy: true, message: "", durationMs: 0 }) }); };\n`,
    "checks/fails.js": `export default () => { throw new Error("no luck"); };\n`,
  });
  const plugins = PluginRegistry.discover({ ...NOWHERE, env: { PROVISIONING_PLUGIN_PATH: d.dir } });
  await plugins.check("seen");
  assert.equal((globalThis as { __seenApi?: unknown }).__seenApi, pluginApi);
  await assert.rejects(
    plugins.check("fails"),
    new RegExp(`Cannot load check plugin ".*fails\\.js": its factory threw: no luck`),
  );
});

Deno.test("a module is imported once, on first use, and traced when asked", async () => {
  const lines: string[] = [];
  const base = PluginRegistry.discover(NOWHERE);
  const plugins = new PluginRegistry(base.entries(), { trace: (l) => lines.push(l) });
  assert.deepEqual(lines, []);
  const [a, b] = await Promise.all([plugins.driver("binary"), plugins.driver("binary")]);
  assert.equal(a, b);
  assert.deepEqual(lines, ['provisioning: importing driver "binary" from drivers/binary.ts']);
});

Deno.test("plugins list reports every plugin with its source, and a broken one with its error", async () => {
  const plugins = PluginRegistry.discover({
    ...NOWHERE,
    env: { PROVISIONING_PLUGIN_PATH: `${join(FIXTURES, "user")}:${join(FIXTURES, "broken")}` },
  });
  const rows = await plugins.list({ load: true });
  const row = (name: string) => rows.find((r) => r.name === name)!;
  assert.deepEqual(row("tcp"), {
    name: "tcp",
    kind: "check",
    source: "bundled",
    file: "checks/tcp.ts",
  });
  assert.deepEqual(row("marker"), {
    name: "marker",
    kind: "driver",
    source: join(FIXTURES, "user"),
    file: join(FIXTURES, "user/drivers/marker.js"),
  });
  assert.match(row("exploding").error!, /exploding on purpose/);
  assert.match(row("shapeless").error!, /not a Check/);
  assert.equal(rows.filter((r) => r.error).length, 3);
});

Deno.test("defineCheck and defineDriver return their argument, typed by its config", () => {
  const z = pluginApi.z;
  const check = pluginApi.defineCheck({
    type: "typed",
    config: z.strictObject({ port: z.number().default(80) }),
    run: (cfg) => Promise.resolve({ healthy: cfg.port > 0, message: "", durationMs: 0 }),
  });
  const port: number = check.config.parse({}).port; // C inferred from config
  assert.equal(port, 80);
  const driver: Driver<{ x: string }> = pluginApi.defineDriver({
    mode: "typed",
    config: z.strictObject({ x: z.string() }),
    preflight: () => Promise.resolve([]),
    start: () => Promise.resolve({}),
    stop: () => Promise.resolve(),
    status: () => Promise.resolve({ status: "stopped" }),
    logs: async function* () {},
  });
  const svc = { name: "s", deployment: { mode: "typed", typed: { x: "y" } } };
  assert.equal(pluginApi.driverConfig(driver, svc as never).x, "y");
  assert.throws(
    () => pluginApi.driverConfig(driver, { name: "s", deployment: { mode: "typed" } } as never),
    /Cannot use "s": invalid \[services\.s\.deployment\.typed\]/,
  );
  const asCheck: Check<{ port: number }> = check;
  assert.equal(asCheck, check);
});
