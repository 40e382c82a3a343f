import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "../checks/_helpers.ts";
import { bundle } from "../../scripts/build.ts";
import { DEMO_REGISTRY, ROOT, tempHome } from "../_cli.ts";

Deno.test("the esbuild bundle runs the CLI under Node", async () => {
  using t = tempHome();
  const out = await bundle();
  assert.equal(out, join(ROOT, "dist/cli.mjs"));
  const run = (...args: string[]) =>
    spawnSync("node", [out, ...args], {
      encoding: "utf8",
      env: { ...process.env, PROVISIONING_HOME: t.home, NO_COLOR: "1" },
    });
  const help = run("--help");
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /Usage: provisioning/);
  const list = run("services", "list", "--json", "--config", DEMO_REGISTRY);
  assert.equal(list.status, 0, list.stderr);
  assert.equal(JSON.parse(list.stdout).length, 7);
  const bad = run("services", "status", "nope", "--config", DEMO_REGISTRY);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /Unknown service "nope"/);
});

Deno.test("under Node: a start waits on the http check (node:net) and the supervisor runs", async () => {
  using t = tempHome();
  const out = await bundle();
  const [port, closed] = await Promise.all([freePort(), freePort()]);
  const config = join(t.home, "services.toml");
  // PROVISIONING_SERVICES names the registry (`supervisor` commands take no --config).
  const env = {
    ...process.env,
    PROVISIONING_HOME: t.home,
    PROVISIONING_SERVICES: config,
    NO_COLOR: "1",
  };
  const cli = (...args: string[]) =>
    promisify(execFile)("node", [out, ...args], { env }).then(
      ({ stdout }) => ({ code: 0, stdout }),
      (e) => ({ code: e.code as number, stdout: e.stdout as string }),
    );
  const service = join(ROOT, "examples/platform/service.mjs");
  writeFileSync(
    config,
    [["web", port], ["deaf", closed]].map(([name, checked]) =>
      [
        `[services.${name}]`,
        `startup = { start_timeout = 2 }`,
        `[services.${name}.deployment]`,
        `mode = "binary"`,
        `binary = { binary_path = "node", args = [${
          JSON.stringify(service)
        }, "--kind", "http", "--port", "${port}", "--ready-after", "100"] }`,
        `[services.${name}.health_check]`,
        `type = "http"`,
        `http = { endpoint = "http://127.0.0.1:${checked}/health" }`,
      ].join("\n")
    ).join("\n"),
  );
  try {
    const web = await cli("services", "start", "web", "--json");
    assert.equal(web.code, 0, web.stdout);
    const health = JSON.parse((await cli("services", "health", "web", "--json")).stdout);
    assert.equal(health.healthy, true, JSON.stringify(health));
    assert.equal(health.message, "HTTP status 200 matches expected");
    const sup = JSON.parse((await cli("supervisor", "status", "--json")).stdout);
    assert.deepEqual(sup.services.map((x: { name: string }) => x.name), ["web"]);
    await cli("services", "stop", "web");
    const deaf = await cli("services", "start", "deaf", "--json");
    assert.equal(deaf.code, 1);
    assert.match(deaf.stdout, new RegExp(`Connection refused: 127\\.0\\.0\\.1:${closed}`));
  } finally {
    await cli("platform", "stop", "--force");
    await cli("supervisor", "stop");
  }
});
