/**
 * The examples of `docs/plugins.md` work as written: the code blocks are extracted, installed in
 * a temp plugin directory and run for real (a real redis-server when installed, real sockets).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PluginRegistry } from "../../core/plugins/registry.ts";
import { validateRegistry } from "../../core/registry/load.ts";
import type { Check, Service } from "../../core/types.ts";
import { checkContext, close, freePort, listen, waitFor } from "../checks/_helpers.ts";
import { findProgram } from "../_plugin_helpers.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DOC = readFileSync(join(ROOT, "docs/plugins.md"), "utf8");
const REDIS = findProgram("redis-server", ["/usr/bin/redis-server"]);

/** The fenced code block whose first line is `// <file>`. */
function block(file: string): string {
  const m = new RegExp("```js\\n(// " + file.replace(".", "\\.") + "[^]*?)```").exec(DOC);
  assert.ok(m, `docs/plugins.md has no js block starting with "// ${file}"`);
  return m[1];
}

/** The fenced TypeScript block whose first line is `// <file>`. */
function tsBlock(file: string): string {
  const m = new RegExp("```ts\\n(// " + file.replace(".", "\\.") + "[^]*?)```").exec(DOC);
  assert.ok(m, `docs/plugins.md has no ts block starting with "// ${file}"`);
  return m[1];
}

/** The doc's examples installed in a temp plugin dir, removed on dispose. */
function installed() {
  const dir = mkdtempSync(join(tmpdir(), "prov-docs-"));
  for (const file of ["checks/redis_ping.mjs", "drivers/marker.js"]) {
    mkdirSync(join(dir, file, ".."), { recursive: true });
    writeFileSync(join(dir, file), block(file));
  }
  const plugins = PluginRegistry.discover({
    cwd: dir,
    home: join(dir, "home"),
    env: { PROVISIONING_PLUGIN_PATH: dir },
  });
  return { dir, plugins, [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) };
}

async function ping(check: Check, port: number) {
  return await check.run(check.config.parse({ port }), checkContext(2_000));
}

Deno.test("the doc's redis_ping check loads from a plugin directory and reads its table", async () => {
  using d = installed();
  const rows = await d.plugins.list({ load: true });
  assert.deepEqual(rows.find((r) => r.name === "redis_ping"), {
    name: "redis_ping",
    kind: "check",
    source: d.dir,
    file: join(d.dir, "checks/redis_ping.mjs"),
  });
  const v = await validateRegistry({
    plugins: d.plugins,
    env: {},
    source: `[services.cache.deployment]
mode = "marker"
[services.cache.deployment.marker]
path = "/tmp/x"
[services.cache.health_check]
type = "redis_ping"
interval = 5

[services.cache.health_check.redis_ping]
prot = 6380
`,
  });
  assert.deepEqual(v.issues.map((i) => `${i.line}: ${i.path}: ${i.message}`), [
    '10: services.cache.health_check.redis_ping.prot: Unknown key "prot" (did you mean "port"?)',
  ]);
});

Deno.test({
  name: "the doc's redis_ping check is healthy against a real redis-server",
  ignore: !REDIS,
  async fn() {
    using d = installed();
    const check = await d.plugins.check("redis_ping");
    const port = await freePort();
    const redis = spawn(REDIS!, [
      ...["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    ], { stdio: "ignore", cwd: d.dir });
    const exited = new Promise((resolve) => redis.once("exit", resolve));
    try {
      await waitFor(async () => (await ping(check, port)).healthy, "redis answers PONG");
      assert.deepEqual(
        { ...(await ping(check, port)), durationMs: 0 },
        { healthy: true, message: `PING 127.0.0.1:${port}: PONG`, durationMs: 0 },
      );
    } finally {
      redis.kill("SIGTERM");
      await exited;
    }
  },
});

Deno.test("the doc's redis_ping check is unhealthy on a wrong reply or a closed port", async () => {
  using d = installed();
  const check = await d.plugins.check("redis_ping");
  const server: Server = createServer((s) => s.on("data", () => s.end("-NOAUTH required\r\n")));
  const port = await listen(server);
  try {
    const r = await ping(check, port);
    assert.deepEqual([r.healthy, r.message], [
      false,
      `PING 127.0.0.1:${port}: replied -NOAUTH required`,
    ]);
  } finally {
    await close(server);
  }
  const closed = await freePort();
  assert.equal((await ping(check, closed)).message, `PING 127.0.0.1:${closed}: ECONNREFUSED`);
});

Deno.test("the doc's marker driver starts, reports and stops", async () => {
  using d = installed();
  const driver = await d.plugins.driver("marker");
  const path = join(d.dir, "svc.up");
  const svc = { name: "m", deployment: { mode: "marker", marker: { path } } } as unknown as Service;
  const ctx = { paths: {} as never, env: {}, cwd: d.dir };
  assert.equal((await driver.status(svc, ctx)).status, "stopped");
  await driver.start(svc, ctx);
  assert.ok(existsSync(path));
  assert.equal((await driver.status(svc, ctx)).status, "running");
  await driver.stop(svc, ctx);
  assert.equal((await driver.status(svc, ctx)).status, "stopped");
});

Deno.test("the doc imports the plugin API from plugin.ts, which exports what it names", async () => {
  const imports = [...DOC.matchAll(/from "([^"]*\/(?:mod|plugin)\.ts)"/g)].map((m) => m[1]);
  assert.ok(imports.length >= 2, imports.join(", "));
  for (const path of imports) assert.match(path, /\/plugin\.ts$/, `the doc imports ${path}`);
  for (const old of ["plugins/drivers/shell.ts", "plugins/checks/dns.ts"]) {
    assert.ok(!DOC.includes(old), `the doc still names ${old}`);
  }
  for (const file of ["drivers/shell.ts", "checks/dns.ts"]) {
    assert.ok(DOC.includes(`(../${file})`), `the doc links ${file}`);
    assert.ok(existsSync(join(ROOT, file)), file);
  }
  const api = await import("../../plugin.ts");
  for (const name of ["defineDriver", "defineCheck", "driverConfig", "pluginApi"] as const) {
    assert.equal(typeof api[name], name === "pluginApi" ? "object" : "function", name);
  }
  // The factory form's argument, as the doc lists it.
  assert.deepEqual(Object.keys(api.pluginApi).sort(), [
    "ExitCode",
    "ProvisioningError",
    "defineCheck",
    "defineDriver",
    "driverConfig",
    "z",
  ]);
});

Deno.test("the doc's plugin test runs as written, from a directory outside the project", () => {
  using d = installed();
  const test = tsBlock("redis_ping_test.ts");
  const where = "/path/to/provisioning/";
  assert.ok(test.includes(`"${where}plugin.ts"`));
  writeFileSync(join(d.dir, "redis_ping_test.ts"), test.replaceAll(where, ROOT));
  const command = /run with: (.+)$/m.exec(test)?.[1].replaceAll(where, ROOT).split(" ");
  assert.equal(command?.[0], "deno", test.split("\n")[0]);
  const run = spawnSync(Deno.execPath(), command!.slice(1), {
    cwd: d.dir,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
    timeout: 120_000,
  });
  assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
  assert.match(run.stdout, /redis_ping is healthy when the server answers PONG \.\.\. ok/);
  assert.match(run.stdout, /1 passed \| 0 failed/);
});
