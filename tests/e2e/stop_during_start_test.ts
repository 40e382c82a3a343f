/**
 * `platform stop` during `platform start`, through two CLIs at once: the stop waits for the start
 * in flight and then stops in reverse order, so at no sampled moment does a service run while a
 * dependency it needs is stopped.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cliCommand } from "../_cli.ts";
import { until } from "../_until.ts";
import { readState } from "../../core/state/store.ts";
import { statePaths } from "../../core/state/files.ts";
import { Sandbox, type ServiceSpec } from "./_registry.ts";

/** Run the CLI in the background; resolves with its exit code and output. */
function background(sb: Sandbox, args: string[]) {
  const child = spawn(...cliCommand([...args, "--config", sb.config]), {
    env: { ...process.env, PROVISIONING_HOME: sb.home, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  return new Promise<{ code: number | null; out: string }>((resolve) =>
    child.once("close", (code) => resolve({ code, out }))
  );
}

Deno.test("platform stop during platform start waits for it, and no service ever runs without its dependencies", async () => {
  // Four layers of five: each service needs every service of the layer below.
  const specs: ServiceSpec[] = [];
  for (let layer = 0; layer < 4; layer++) {
    for (let i = 0; i < 5; i++) {
      specs.push({
        name: `s${layer}-${i}`,
        readyAfter: 80,
        autoStart: true,
        deps: layer ? [0, 1, 2, 3, 4].map((j) => `s${layer - 1}-${j}`) : [],
      });
    }
  }
  await using sb = await Sandbox.create(specs);
  const paths = statePaths(sb.home);
  const violations: string[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const states = new Map(
        await Promise.all(
          specs.map(async (s) => [s.name, (await readState(paths, s.name))?.status] as const),
        ),
      );
      for (const s of specs) {
        if (states.get(s.name) !== "running") continue;
        const down = (s.deps ?? []).filter((d) => states.get(d) !== "running");
        if (down.length) violations.push(`${s.name} running while ${down.join(", ")} not`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  })();

  const start = background(sb, ["platform", "start"]);
  await until(
    async () => (await readState(paths, "s0-0"))?.status !== undefined,
    "the start to begin",
  );
  const stop = background(sb, ["platform", "stop"]);
  const [started, stopped] = await Promise.all([start, stop]);
  sampling = false;
  await sampler;

  assert.equal(started.code, 0, started.out);
  assert.equal(stopped.code, 0, stopped.out);
  for (const s of specs) {
    assert.equal((await readState(paths, s.name))?.status, "stopped", `${s.name}: ${stopped.out}`);
  }
  assert.deepEqual(violations.slice(0, 5), []);
});
