/**
 * One dependency graph across deployment modes: binary services (the demo service.mjs) and
 * docker containers (busybox httpd) depending on each other in both directions, started in
 * order with health gating and stopped in reverse. Ignored with a reason without an engine.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT, runCli } from "../_cli.ts";
import { type LifecycleEvent, Platform, startServices, stopServices } from "../../mod.ts";
import {
  dockerTest,
  dockerToml,
  freePort,
  httpStatus,
  qa,
  type Sandbox,
  withSandbox,
} from "../drivers/_docker.ts";

const SERVICE = join(ROOT, "examples/platform/service.mjs");

/** A binary service: `node service.mjs --kind http --port P`, healthy on /health. */
function binaryToml(name: string, port: number, deps: string[] = []): string {
  return `
[services.${name}]
category = "native"
dependencies = ${qa(deps)}
[services.${name}.deployment]
mode = "binary"
[services.${name}.deployment.binary]
binary_path = "node"
args = ${
    qa([SERVICE, "--name", name, "--kind", "http", "--ready-after", "100", "--port", String(port)])
  }
[services.${name}.health_check]
type = "http"
interval = 1
[services.${name}.health_check.http]
endpoint = "http://127.0.0.1:${port}/health"
[services.${name}.startup]
start_timeout = 20
[services.${name}.shutdown]
timeout = 5
`;
}

/** Index of the first event of `type` for `service` (-1 when none). */
const at = (events: LifecycleEvent[], type: string, service: string) =>
  events.findIndex((e) => e.type === type && e.service === service);

async function startAndStopInOrder(sb: Sandbox, first: string, second: string): Promise<void> {
  const p = await Platform.open({ config: sb.config, home: sb.home, env: sb.env });
  const events: LifecycleEvent[] = [];
  const started = await startServices(p, [second], { onEvent: (e) => events.push(e) });
  assert.ok(started.ok, JSON.stringify(started.outcomes));
  assert.ok(at(events, "healthy", first) >= 0, `${first} became healthy`);
  assert.ok(
    at(events, "healthy", first) < at(events, "starting", second),
    `${second} starts only after ${first} is healthy`,
  );
  for (const name of [first, second]) assert.equal((await p.status(name)).status, "running");

  events.length = 0;
  const stopped = await stopServices(p, [], { onEvent: (e) => events.push(e) });
  assert.ok(stopped.ok, JSON.stringify(stopped.outcomes));
  assert.ok(
    at(events, "stopped", second) >= 0 &&
      at(events, "stopped", second) < at(events, "stopping", first),
    `${first} stops only after ${second} is gone`,
  );
  for (const name of [first, second]) assert.equal((await p.status(name)).status, "stopped");
}

dockerTest(
  "a binary service that depends on a docker service starts after it and stops before it",
  async () => {
    const [db, api] = [await freePort(), await freePort()];
    await withSandbox(async (sb) => {
      await startAndStopInOrder(sb, "db", "api");
    }, { toml: dockerToml("db", { port: db }) + binaryToml("api", api, ["db"]) });
  },
);

dockerTest(
  "a docker service that depends on a binary service starts after it and stops before it",
  async () => {
    const [auth, web] = [await freePort(), await freePort()];
    await withSandbox(async (sb) => {
      await startAndStopInOrder(sb, "auth", "web");
    }, { toml: binaryToml("auth", auth) + dockerToml("web", { port: web, deps: ["auth"] }) });
  },
);

dockerTest(
  "the CLI brings up binary -> docker -> binary and refuses to stop the middle one",
  async () => {
    const [a, b, c] = [await freePort(), await freePort(), await freePort()];
    await withSandbox(async (sb) => {
      const run = (...args: string[]) => runCli([...args, "--config", sb.config], { env: sb.env });
      const start = await run("platform", "start", "front", "--json");
      assert.equal(start.code, 0, start.stdout + start.stderr);
      const events = JSON.parse(start.stdout).events as LifecycleEvent[];
      assert.ok(at(events, "healthy", "base") < at(events, "starting", "middle"));
      assert.ok(at(events, "healthy", "middle") < at(events, "starting", "front"));
      assert.equal(await httpStatus(`http://127.0.0.1:${b}/health`), 200);

      const refused = await run("services", "stop", "middle");
      assert.equal(refused.code, 4, refused.stdout + refused.stderr);
      assert.match(refused.stdout + refused.stderr, /Dependent services running: front/);

      const status = JSON.parse((await run("platform", "status", "--json")).stdout);
      assert.equal(status.running, 3);
      const stop = await run("platform", "stop");
      assert.equal(stop.code, 0, stop.stdout + stop.stderr);
      assert.equal(JSON.parse((await run("platform", "status", "--json")).stdout).running, 0);
    }, {
      toml: binaryToml("base", a) + dockerToml("middle", { port: b, deps: ["base"] }) +
        binaryToml("front", c, ["middle"]),
    });
  },
);

dockerTest("a docker dependency that cannot start blocks its binary dependent", async () => {
  const [db, api] = [await freePort(), await freePort()];
  await withSandbox(async (sb) => {
    const p = await Platform.open({ config: sb.config, home: sb.home, env: sb.env });
    const r = await startServices(p, ["api"]);
    assert.equal(r.ok, false);
    const byName = new Map(r.outcomes.map((o) => [o.name, o]));
    assert.equal(byName.get("db")?.status, "failed");
    assert.match(
      byName.get("db")?.message ?? "",
      /Image "provisioning-test\/absent:0" is not present locally/,
    );
    assert.equal(byName.get("api")?.status, "blocked");
    assert.equal(byName.get("api")?.blocked_by, "db");
    assert.equal(await httpStatus(`http://127.0.0.1:${api}/health`), 0, "api never started");
  }, {
    toml: dockerToml("db", { port: db, image: "provisioning-test/absent:0" }) +
      binaryToml("api", api, ["db"]),
  });
});
