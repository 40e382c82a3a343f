import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
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
