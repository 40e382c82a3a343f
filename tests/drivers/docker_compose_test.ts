/**
 * The docker-compose driver against a real engine and the installed compose tool (ignored with
 * a reason without an engine at `DOCKER_HOST`). One compose file (`version: "3"`,
 * `network_mode: host`) with two services, each a registry service.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli } from "../_cli.ts";
import { readState } from "../../core/state/store.ts";
import {
  type LifecycleEvent,
  Platform,
  preflight,
  startServices,
  stopServices,
} from "../../mod.ts";
import {
  dockerTest,
  engine,
  freePort,
  httpdCommand,
  httpStatus,
  IMAGE,
  q,
  qa,
  type Sandbox,
  waitFor,
  withSandbox,
} from "./_docker.ts";

/** A compose file with `alpha` and `beta` (busybox httpd on host ports) and the registry. */
function setup(sb: Sandbox, project: string, ports: { alpha: number; beta: number }): void {
  const service = (port: number) =>
    `    image: ${IMAGE}\n    network_mode: host\n    command: ${
      JSON.stringify(httpdCommand(port))
    }\n`;
  writeFileSync(
    join(sb.dir, "docker-compose.yaml"),
    `version: "3"\nservices:\n  alpha:\n${service(ports.alpha)}  beta:\n${service(ports.beta)}`,
  );
  const entry = (name: string, port: number, deps: string[]) => `
[services.${name}]
category = "compose"
dependencies = ${qa(deps)}
[services.${name}.deployment]
mode = "docker-compose"
[services.${name}.deployment.docker_compose]
compose_file = "\${PROVISIONING_REGISTRY_DIR}/docker-compose.yaml"
service_name = ${q(name)}
project_name = ${q(project)}
[services.${name}.health_check]
type = "http"
interval = 1
[services.${name}.health_check.http]
endpoint = "http://127.0.0.1:${port}/health"
[services.${name}.startup]
start_timeout = 60
[services.${name}.shutdown]
timeout = 5
`;
  sb.write(entry("alpha", ports.alpha, []) + entry("beta", ports.beta, ["alpha"]));
}

const project = () => `provtest${crypto.randomUUID().slice(0, 8)}`;

dockerTest("two compose services start in dependency order, report, log and stop", async () => {
  const ports = { alpha: await freePort(), beta: await freePort() };
  const name = project();
  await withSandbox(async (sb) => {
    setup(sb, name, ports);
    const p = await Platform.open({ config: sb.config, home: sb.home, env: sb.env });
    const findings = await preflight(p, p.service("alpha"));
    assert.ok(findings.some((f) => f.ok && /^Compose found: docker[- ]compose \d/.test(f.message)));
    assert.ok(findings.some((f) => f.ok && f.message === "Compose service defined: alpha"));

    const events: LifecycleEvent[] = [];
    const r = await startServices(p, ["beta"], { onEvent: (e) => events.push(e) });
    assert.ok(r.ok, JSON.stringify(r.outcomes));
    const at = (type: string, service: string) =>
      events.findIndex((e) => e.type === type && e.service === service);
    assert.ok(at("healthy", "alpha") >= 0 && at("healthy", "alpha") < at("starting", "beta"));
    assert.equal(await httpStatus(`http://127.0.0.1:${ports.beta}/health`), 200);

    for (const svc of ["alpha", "beta"]) {
      const st = await p.status(svc);
      assert.equal(st.status, "running", svc);
      assert.equal(st.health, "healthy", svc);
      const state = await readState(p.paths, svc);
      assert.equal(state?.mode, "docker-compose");
      assert.equal(state?.handle?.project, name);
    }
    await httpStatus(`http://127.0.0.1:${ports.alpha}/compose-log`);
    const lines = await waitFor("the request in compose logs", async () => {
      const got: string[] = [];
      for await (const l of p.logs("alpha", { lines: 10 })) got.push(l);
      return got.some((l) => l.includes("/compose-log")) && got;
    });
    assert.ok(lines.every((l) => !l.startsWith("Attaching to") && !l.includes("|")));

    events.length = 0;
    const stop = await stopServices(p, [], { onEvent: (e) => events.push(e) });
    assert.ok(stop.ok, JSON.stringify(stop.outcomes));
    assert.ok(at("stopped", "beta") >= 0 && at("stopped", "beta") < at("stopping", "alpha"));
    for (const svc of ["alpha", "beta"]) assert.equal((await p.status(svc)).status, "stopped");
  }, { projects: [name] });
});

dockerTest("the CLI runs a compose service, sees its crash, and stops it", async () => {
  const ports = { alpha: await freePort(), beta: await freePort() };
  const name = project();
  await withSandbox(async (sb) => {
    setup(sb, name, ports);
    const run = (...args: string[]) => runCli([...args, "--config", sb.config], { env: sb.env });
    const start = await run("services", "start", "alpha");
    assert.equal(start.code, 0, start.stdout + start.stderr);
    assert.match(start.stdout, /✅ Compose found: docker[- ]compose/);
    const status = JSON.parse((await run("services", "status", "alpha", "--json")).stdout);
    assert.equal(status.status, "running");

    const [c] = await engine.listContainers([
      `com.docker.compose.project=${name}`,
      "com.docker.compose.service=alpha",
    ]);
    await engine.json("POST", `/containers/${c.Id}/kill`);
    await waitFor(
      "the container to exit",
      async () => !(await engine.inspectContainer(c.Id))?.State.Running,
    );
    const crashed = JSON.parse((await run("services", "status", "alpha", "--json")).stdout);
    assert.equal(crashed.status, "failed");
    assert.equal(crashed.exit_code, 137);

    const again = await run("services", "start", "alpha");
    assert.equal(again.code, 0, again.stdout + again.stderr);
    const stop = await run("services", "stop", "alpha");
    assert.equal(stop.code, 0, stop.stdout + stop.stderr);
    assert.equal(
      JSON.parse((await run("services", "status", "alpha", "--json")).stdout).status,
      "stopped",
    );
  }, { projects: [name] });
});

dockerTest("compose pre-flight reports a missing file and an undefined service", async () => {
  const name = project();
  await withSandbox(async (sb) => {
    setup(sb, name, { alpha: await freePort(), beta: await freePort() });
    sb.write(
      Deno.readTextFileSync(sb.config)
        .replace('service_name = "beta"', 'service_name = "gamma"') +
        `
[services.lost]
[services.lost.deployment]
mode = "docker-compose"
[services.lost.deployment.docker_compose]
compose_file = "\${PROVISIONING_REGISTRY_DIR}/missing.yaml"
service_name = "lost"
`,
    );
    const r = await runCli(["services", "validate", "--config", sb.config], { env: sb.env });
    assert.equal(r.code, 3);
    assert.match(
      r.stdout,
      /❌ beta:\n\s+- Service "gamma" is not defined in .*docker-compose\.yaml/,
    );
    assert.match(r.stdout, /❌ lost:\n\s+- Compose file not found: .*missing\.yaml/);
    assert.doesNotMatch(r.stdout, /❌ alpha/);
  }, { projects: [name] });
});
