import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PluginRegistry } from "../../core/plugins/registry.ts";
import { Platform } from "../../core/platform.ts";
import { validateRegistry } from "../../core/registry/load.ts";
import { validateServices } from "../../core/registry/validate.ts";
import { startServices } from "../../core/lifecycle/start.ts";
import { stopServices } from "../../core/lifecycle/stop.ts";

const FIXTURES = fileURLToPath(new URL("../fixtures/plugins/", import.meta.url));
const USER = join(FIXTURES, "user");
const BROKEN = join(FIXTURES, "broken");
const EXPLODING = join(BROKEN, "drivers/exploding.ts");

function plugins(...dirs: string[]): PluginRegistry {
  return PluginRegistry.discover({
    cwd: "/nonexistent",
    home: "/nonexistent",
    env: { PROVISIONING_PLUGIN_PATH: dirs.join(":") },
  });
}

/** A temp dir holding `services.toml` (the text) and a home, removed on dispose. */
function registry(text: (dir: string) => string) {
  const dir = mkdtempSync(join(tmpdir(), "prov-regplug-"));
  const config = join(dir, "services.toml");
  writeFileSync(config, text(dir));
  return {
    dir,
    config,
    home: join(dir, "home"),
    [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }),
  };
}

const marker = (name: string, dir: string, extra = "") => `
[services.${name}]
${extra}
[services.${name}.deployment]
mode = "marker"
[services.${name}.deployment.marker]
path = "${dir}/${name}.up"
`;

Deno.test("an unknown mode or check type lists the available ones, user plugins included", async () => {
  const v = await validateRegistry({
    plugins: plugins(USER),
    env: {},
    source: `
[services.a.deployment]
mode = "markr"
[services.b.deployment]
mode = "marker"
[services.b.deployment.marker]
path = "/tmp/x"
[services.b.health_check]
type = "alway"
`,
  });
  const messages = v.issues.map((i) => `${i.path}: ${i.message}`);
  assert.deepEqual(messages, [
    'services.a.deployment.mode: Unknown deployment mode "markr": available: binary, docker, ' +
    "docker-compose, kubernetes, marker, remote, shell",
    'services.b.health_check.type: Unknown health check type "alway": available: always, ' +
    "command, dns, file, http, tcp, none",
  ]);
});

Deno.test("a user plugin's config errors carry TOML paths and lines like the built-ins", async () => {
  const v = await validateRegistry({
    plugins: plugins(USER),
    env: {},
    source: `[services.a.deployment]
mode = "marker"

[services.a.deployment.marker]
pth = "/tmp/x"

[services.a.health_check]
type = "always"

[services.a.health_check.always]
healthy = "yes"
`,
  });
  assert.deepEqual(v.issues.map(({ path, message, line }) => ({ path, message, line })), [
    {
      path: "services.a.deployment.marker.path",
      message: "Missing required key (expected string)",
      line: 4,
    },
    {
      path: "services.a.deployment.marker.pth",
      message: 'Unknown key "pth" (did you mean "path"?)',
      line: 5,
    },
    {
      path: "services.a.health_check.always.healthy",
      message: 'Expected boolean, got string "yes"',
      line: 11,
    },
  ]);
});

Deno.test("a user plugin's table gets its defaults applied", async () => {
  const v = await validateRegistry({
    plugins: plugins(USER),
    env: {},
    source: `${marker("a", "/tmp")}
[services.a.health_check]
type = "always"
[services.a.health_check.always]
`,
  });
  assert.deepEqual(v.issues, []);
  const svc = v.registry!.byName.get("a")!;
  assert.deepEqual(svc.deployment.marker, { path: "/tmp/a.up", content: "up" });
  assert.deepEqual(svc.health_check.always, { healthy: true, message: "as configured" });
});

Deno.test("a broken plugin is reported on the services that use it only", async () => {
  using r = registry((dir) =>
    `${marker("good", dir)}
[services.bad.deployment]
mode = "exploding"
[services.bad.deployment.exploding]
`
  );
  const p = plugins(USER, BROKEN);
  const v = await validateRegistry({ config: r.config, plugins: p, env: {} });
  assert.ok(v.registry, "the registry still loads");
  assert.deepEqual(v.issues.map((i) => [i.service, i.path, i.message]), [[
    "bad",
    "services.bad.deployment.mode",
    `Cannot load driver plugin "${EXPLODING}": exploding on purpose`,
  ]]);
  const report = await validateServices({
    config: r.config,
    plugins: p,
    env: {},
    home: r.home,
  });
  assert.deepEqual(report.services.map((s) => [s.name, s.valid]), [["good", true], [
    "bad",
    false,
  ]]);
  assert.match(report.services[1].errors[0], /exploding\.ts": exploding on purpose/);
  assert.equal(report.config_invalid, true);
});

Deno.test("the lifecycle of other services works while one service's plugin is broken", async () => {
  using r = registry((dir) =>
    `${marker("good", dir)}
[services.bad.deployment]
mode = "exploding"
[services.bad.deployment.exploding]
${marker("needs-bad", dir, 'dependencies = ["bad"]')}`
  );
  const p = await Platform.open({
    config: r.config,
    home: r.home,
    env: {},
    plugins: plugins(USER, BROKEN),
  });
  const bad = await p.status("bad");
  assert.equal(bad.status, "failed");
  assert.equal(bad.message, `Cannot load driver plugin "${EXPLODING}": exploding on purpose`);

  const started = await startServices(p, ["good", "needs-bad"]);
  const outcome = (n: string) => started.outcomes.find((o) => o.name === n)!;
  assert.equal(outcome("good").status, "started");
  assert.equal(outcome("bad").status, "failed");
  assert.match(outcome("bad").message!, /exploding\.ts": exploding on purpose/);
  assert.equal(outcome("needs-bad").status, "blocked");
  assert.ok(existsSync(join(r.dir, "good.up")));
  assert.equal((await p.status("good")).status, "running");

  const stopped = await stopServices(p, ["good"]);
  assert.equal(stopped.ok, true);
  assert.equal(existsSync(join(r.dir, "good.up")), false);
});

Deno.test("an override of a built-in is used only when the registry opts in with [plugins] override", async () => {
  using r = registry(() => "");
  const dir = join(r.dir, "plugins", "checks");
  mkdirSync(dir, { recursive: true });
  // Records that it was imported: without the opt-in it must never run.
  writeFileSync(
    join(dir, "tcp.override.js"),
    `globalThis.__tcpOverrideImported = true;\n` +
      `export default ({ z, defineCheck }) => defineCheck({ type: "tcp", config: z.object({}).passthrough(), ` +
      `run: async () => ({ healthy: true, message: "mine", durationMs: 0 }) });\n`,
  );
  const services = `
[services.web.deployment]
mode = "binary"
[services.web.deployment.binary]
binary_path = "/bin/true"
[services.web.health_check]
type = "tcp"
[services.web.health_check.tcp]
port = 1

[services.worker.deployment]
mode = "binary"
[services.worker.deployment.binary]
binary_path = "/bin/true"
`;
  const discover = () => PluginRegistry.discover({ cwd: r.dir, home: r.home, env: {} });
  const imported = () => (globalThis as { __tcpOverrideImported?: boolean }).__tcpOverrideImported;

  const without = await validateRegistry({ source: services, plugins: discover(), env: {} });
  assert.ok(without.registry, "the other services still load");
  assert.deepEqual(without.issues.map((i) => [i.service, i.path]), [
    ["web", "services.web.health_check.type"],
  ]);
  assert.match(
    without.issues[0].message,
    /^Not using check plugin ".*tcp\.override\.js": it would override "tcp"/,
  );
  assert.equal(imported(), undefined, "the override file was imported without the opt-in");

  const withOptIn = await validateRegistry({
    source: `[plugins]\noverride = ["tcp"]\n${services}`,
    plugins: discover(),
    env: {},
  });
  assert.deepEqual(withOptIn.issues, []);
  assert.equal(imported(), true);
  assert.deepEqual(withOptIn.registry!.byName.get("web")!.health_check.tcp, { port: 1 });
});
