/**
 * Plugins through the real CLI: lazy loading (`PROVISIONING_TRACE_PLUGINS=1` prints each
 * imported plugin module on stderr), `plugins list`, broken and conflicting plugins that
 * affect only the services using them, and a user plugin driving a service's lifecycle.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CLI_IMPORTS_TS, ROOT, runCli, tempHome } from "../_cli.ts";

const USER = join(ROOT, "tests/fixtures/plugins/user");
const BROKEN = join(ROOT, "tests/fixtures/plugins/broken");

/** Plugin modules the CLI imported, from its trace lines. */
const imported = (stderr: string) =>
  [...stderr.matchAll(/^provisioning: importing (\w+) "([^"]+)" from (.+)$/gm)]
    .map((m) => `${m[1]} ${m[2]}`);

/** `services.toml` in the home dir; returns its path. */
function registry(home: string, text: string): string {
  const file = join(home, "services.toml");
  writeFileSync(file, text);
  return file;
}

const BINARY_SERVICES = `
[services.api.deployment]
mode = "binary"
[services.api.deployment.binary]
binary_path = "/bin/sleep"
args = ["60"]
[services.api.health_check]
type = "tcp"
[services.api.health_check.tcp]
port = 1

[services.worker.deployment]
mode = "binary"
[services.worker.deployment.binary]
binary_path = "/bin/sleep"
`;

Deno.test("--help imports no plugin module", async () => {
  using t = tempHome();
  const r = await runCli(["--help"], {
    env: { PROVISIONING_HOME: t.home, PROVISIONING_TRACE_PLUGINS: "1" },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /plugins/);
  assert.deepEqual(imported(r.stderr), []);
});

Deno.test("services list of binary services imports only the binary driver and their check", async () => {
  using t = tempHome();
  const config = registry(t.home, BINARY_SERVICES);
  const r = await runCli(["services", "list", "--json", "--config", config], {
    env: {
      PROVISIONING_HOME: t.home,
      PROVISIONING_TRACE_PLUGINS: "1",
      PROVISIONING_PLUGIN_PATH: BROKEN, // holds a driver that throws when imported
    },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).map((s: { name: string }) => s.name), ["api", "worker"]);
  assert.deepEqual(imported(r.stderr).sort(), ["check tcp", "driver binary"]);
});

Deno.test("plugins list --json shows bundled and user plugins with their files", async () => {
  using t = tempHome();
  const r = await runCli(["plugins", "list", "--json"], {
    env: { PROVISIONING_HOME: t.home, PROVISIONING_PLUGIN_PATH: USER },
  });
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout);
  assert.deepEqual(rows.find((p: { name: string }) => p.name === "marker"), {
    name: "marker",
    kind: "driver",
    source: USER,
    file: join(USER, "drivers/marker.js"),
  });
  assert.deepEqual(rows.find((p: { name: string }) => p.name === "dns"), {
    name: "dns",
    kind: "check",
    source: "bundled",
    file: "checks/dns.ts",
  });
  assert.equal(rows.filter((p: { error?: string }) => p.error).length, 0);
});

Deno.test({
  name: "plugins list names a broken plugin's file and exits 2",
  ignore: !CLI_IMPORTS_TS, // the broken plugins are .ts files: Node 20 cannot import them at all
  async fn() {
    using t = tempHome();
    const r = await runCli(["plugins", "list", "--all"], {
      env: { PROVISIONING_HOME: t.home, PROVISIONING_PLUGIN_PATH: BROKEN },
    });
    assert.equal(r.code, 2);
    assert.match(r.stdout, /^binary +driver +bundled +drivers\/binary\.ts +✅$/m);
    assert.match(r.stdout, /^exploding +driver .*exploding\.ts +❌$/m);
    assert.ok(
      r.stdout.includes(
        `❌ Cannot load driver plugin "${
          join(BROKEN, "drivers/exploding.ts")
        }": exploding on purpose`,
      ),
      r.stdout,
    );
  },
});

Deno.test("a broken plugin fails only the services that use it", async () => {
  using t = tempHome();
  const config = registry(
    t.home,
    `${BINARY_SERVICES}
[services.boom.deployment]
mode = "exploding"
[services.boom.deployment.exploding]
`,
  );
  const env = { PROVISIONING_HOME: t.home, PROVISIONING_PLUGIN_PATH: BROKEN };
  const list = await runCli(["services", "list", "--json", "--config", config], { env });
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(
    JSON.parse(list.stdout).map((s: { name: string; status: string }) => [s.name, s.status]),
    [["api", "stopped"], ["worker", "stopped"], ["boom", "failed"]],
  );
  const v = await runCli(["services", "validate", "--json", "--config", config], { env });
  assert.equal(v.code, 2);
  const report = JSON.parse(v.stdout);
  const boom = report.services.find((s: { name: string }) => s.name === "boom");
  assert.equal(boom.valid, false);
  assert.match(
    boom.errors[0],
    /services\.boom\.deployment\.mode: Cannot load driver plugin ".*exploding\.ts"/,
  );
  assert.deepEqual(
    report.services.filter((s: { valid: boolean }) => !s.valid).map((s: { name: string }) =>
      s.name
    ),
    ["boom"],
  );
});

Deno.test("a user plugin overriding a built-in without saying so is a conflict on its users only", async () => {
  using t = tempHome();
  const dir = join(t.home, "plugins", "checks");
  mkdirSync(dir, { recursive: true });
  const source = `export default ({ z, defineCheck }) => defineCheck({ type: "tcp", ` +
    `config: z.object({}).passthrough(), run: async () => ({ healthy: true, message: "mine", durationMs: 0 }) });\n`;
  writeFileSync(join(dir, "tcp.js"), source);
  const config = registry(t.home, BINARY_SERVICES);
  const env = { PROVISIONING_HOME: t.home };
  const v = await runCli(["services", "validate", "--json", "--config", config], { env });
  const report = JSON.parse(v.stdout);
  assert.equal(v.code, 2);
  assert.deepEqual(
    report.services.map((s: { name: string; valid: boolean }) => [s.name, s.valid]),
    [["api", false], ["worker", true]], // worker has no tcp check
  );
  assert.match(
    report.services[0].errors[0],
    /Conflicting check plugins for "tcp": "checks\/tcp\.ts" and ".*plugins\/checks\/tcp\.js"/,
  );

  writeFileSync(join(dir, "tcp.override.js"), source);
  rmSync(join(dir, "tcp.js"));
  // An override is used only when the registry asks for it.
  const ignored = await runCli(["services", "validate", "--json", "--config", config], { env });
  assert.equal(ignored.code, 2, ignored.stdout);
  writeFileSync(config, readFileSync(config, "utf8") + '\n[plugins]\noverride = ["tcp"]\n');
  const list = await runCli(["plugins", "list", "--json", "--config", config], { env });
  const tcp = JSON.parse(list.stdout).find((p: { name: string }) => p.name === "tcp");
  assert.deepEqual(tcp, {
    name: "tcp",
    kind: "check",
    source: join(t.home, "plugins"),
    file: join(dir, "tcp.override.js"),
    overrides: "checks/tcp.ts",
  });
  const h = await runCli(["services", "validate", "--json", "--config", config], { env });
  assert.equal(h.code, 0, h.stdout);
});

Deno.test("a user driver plugin starts and stops a service through the CLI", async () => {
  using t = tempHome();
  const up = join(t.home, "svc.up");
  const config = registry(
    t.home,
    `[services.flag.deployment]
mode = "marker"
[services.flag.deployment.marker]
path = "${up}"
`,
  );
  const env = { PROVISIONING_HOME: t.home, PROVISIONING_PLUGIN_PATH: USER };
  const start = await runCli(["services", "start", "flag", "--config", config], { env });
  assert.equal(start.code, 0, start.stdout + start.stderr);
  assert.ok(existsSync(up));
  const status = await runCli(["services", "status", "flag", "--json", "--config", config], {
    env,
  });
  assert.equal(JSON.parse(status.stdout).status, "running");
  const stop = await runCli(["services", "stop", "flag", "--config", config], { env });
  assert.equal(stop.code, 0, stop.stdout + stop.stderr);
  assert.equal(existsSync(up), false);
});

Deno.test("stop of a service whose driver owns nothing is not_managed: left running, exit 0", async () => {
  using t = tempHome();
  const dir = join(t.home, "plugins", "drivers");
  mkdirSync(dir, { recursive: true });
  // A driver for something another host runs: it declares that it owns nothing.
  writeFileSync(
    join(dir, "elsewhere.js"),
    `export default ({ z, defineDriver }) => defineDriver({ mode: "elsewhere", ` +
      `capabilities: { supervision: "none", owns: "external" }, config: z.strictObject({}), ` +
      `preflight: async () => [], start: async () => ({}), ` +
      `stop: async () => { throw new Error("stop must not be called"); }, ` +
      `status: async () => ({ status: "running" }), logs: async function* () {} });\n`,
  );
  const config = registry(
    t.home,
    `[services.remote-api.deployment]
mode = "elsewhere"
elsewhere = {}
`,
  );
  const env = { PROVISIONING_HOME: t.home };
  const stop = await runCli(["services", "stop", "remote-api", "--config", config], { env });
  assert.equal(stop.code, 0, stop.stdout + stop.stderr);
  assert.match(
    stop.stdout,
    /➖ remote-api is not managed here: remote-api is not run by this host; left running/,
  );
  const j = await runCli(["services", "stop", "remote-api", "--json", "--config", config], { env });
  assert.equal(JSON.parse(j.stdout).outcomes[0].status, "not_managed");
});
