/**
 * Remote services behind another host's agent (`agent = true`), through the CLI, across two test
 * hosts (tests/_hosts.ts: network namespaces made here, or 127.0.0.2/127.0.0.3 where they cannot
 * be made): host B runs a real `provisioning agent` over TLS (a CA and leaf made with openssl)
 * with its own home and real demo services; host A runs the CLI with a home whose registry names
 * B's services. Forwarded start/stop/logs/status (B's events shown as
 * `host/service` in A's progress), B's refusal (exit 4 here), B's pre-flight failure (exit 3), an
 * observed service (stop leaves it), a rejected token, B's agent killed mid-start, and B down.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "smol-toml";
import { cliCommand, ROOT } from "../_cli.ts";
import { testHosts } from "../_hosts.ts";
import { makePki, MISSING } from "../drivers/_remote_fixture.ts";
import { spawnAgent } from "../agent/_agent.ts";
import { Sandbox, until } from "./_registry.ts";
import { cliStatus } from "./_supervised.ts";

/** A's `[services.NAME]` for B's `service`. */
function remoteTable(
  name: string,
  endpoint: string,
  token: string,
  service: string,
  control: string,
  ca: string,
) {
  return {
    name,
    type: "platform",
    category: "remote",
    description: `${service} on host B`,
    dependencies: [],
    deployment: {
      mode: "remote",
      remote: { endpoint, auth_token_path: token, ca_file: ca, agent: true, service, control },
    },
    startup: { start_timeout: 20 },
  };
}

Deno.test({
  name:
    "forwarded to another host's agent: start, status, logs, refusals, pre-flight, observe, failures",
  ignore: !!MISSING,
  fn,
});

async function fn() {
  await using hosts = testHosts();
  await using b = await Sandbox.create([
    { name: "db" },
    { name: "web", deps: ["db"] },
    { name: "slow", readyAfter: 60_000, startTimeout: 60 },
    { name: "broken", command: () => ({ binary_path: "/nonexistent/b-bin", args: [] }) },
  ], { host: hosts.b });
  const pki = await makePki(join(b.dir, "pki"), hosts.b.address);
  const agentB = await spawnAgent(b, ["--tls-cert", pki.leaf.cert, "--tls-key", pki.leaf.key]);
  const endpoint = agentB.url;
  assert.equal(endpoint, `https://${hosts.b.address}:${agentB.port}`);
  const token = join(b.home, "agent", "token");
  const host = new URL(endpoint).host;

  await using a = await Sandbox.create([{ name: "front", deps: ["b-web"] }], { host: hosts.a });
  const doc = parse(readFileSync(a.config, "utf8")) as { services: Record<string, unknown> };
  const wrongToken = join(a.dir, "wrong.token");
  writeFileSync(wrongToken, "not-the-token-of-b-0123456789\n", { mode: 0o600 });
  doc.services["b-web"] = remoteTable("b-web", endpoint, token, "web", "forward", pki.ca);
  doc.services["b-db"] = remoteTable("b-db", endpoint, token, "db", "forward", pki.ca);
  doc.services["b-db-seen"] = remoteTable("b-db-seen", endpoint, token, "db", "observe", pki.ca);
  doc.services["b-broken"] = remoteTable("b-broken", endpoint, token, "broken", "forward", pki.ca);
  doc.services["b-slow"] = remoteTable("b-slow", endpoint, token, "slow", "forward", pki.ca);
  doc.services["b-bad"] = remoteTable("b-bad", endpoint, wrongToken, "web", "forward", pki.ca);
  writeFileSync(a.config, stringify(doc));
  const tokenText = readFileSync(token, "utf8").trim();
  const noToken = (out: string) => assert.ok(!out.includes(tokenText), "B's token was printed");

  // A local service depending on B's web: B starts db and web (its graph), then A starts front.
  const up = await a.cli(["services", "start", "front"]);
  noToken(up.stdout + up.stderr);
  assert.equal(up.code, 0, up.stdout + up.stderr);
  assert.match(up.stdout, new RegExp(`${host}/db: started`));
  assert.match(up.stdout, new RegExp(`${host}/web: (healthy|started)`));
  assert.equal((await cliStatus(b, "web")).status, "running", "B runs web");
  assert.equal((await cliStatus(b, "db")).status, "running", "B runs its dependency db");
  assert.equal((await cliStatus(a, "front")).status, "running");

  // Status and logs come from B's agent; platform status shows the host.
  const st = await cliStatus(a, "b-web");
  assert.equal(st.status, "running");
  assert.match(st.message ?? "", new RegExp(`on ${host} as web`));
  const all = await a.cli(["platform", "status"]);
  assert.match(all.stdout, new RegExp(`b-web @ ${endpoint.replace(/\./g, "\\.")} - running`));
  assert.match(all.stdout, /front - running/, "local and remote services together");
  const logs = await a.cli(["services", "logs", "b-web", "--lines", "5"]);
  assert.equal(logs.code, 0, logs.stderr);
  assert.equal(logs.stdout, (await b.cli(["services", "logs", "web", "--lines", "5"])).stdout);

  // B refuses to stop db while its web runs: a refusal here too.
  const refused = await a.cli(["services", "stop", "b-db"]);
  noToken(refused.stdout + refused.stderr);
  assert.equal(refused.code, 4, refused.stdout + refused.stderr);
  assert.match(refused.stdout + refused.stderr, new RegExp(`${host}/db: stop there: .*web`));
  assert.equal((await cliStatus(b, "db")).status, "running");

  // B's pre-flight failure is ours (exit 3).
  const broken = await a.cli(["services", "start", "b-broken"]);
  assert.equal(broken.code, 3, broken.stdout + broken.stderr);
  assert.match(broken.stdout, new RegExp(`${host}/broken`));

  // Observed: ready because B runs it; a stop leaves it running there.
  const seen = await a.cli(["services", "start", "b-db-seen"]);
  assert.equal(seen.code, 0, seen.stdout + seen.stderr);
  const leave = await a.cli(["services", "stop", "b-db-seen"]);
  assert.equal(leave.code, 0, leave.stdout + leave.stderr);
  assert.match(leave.stdout, /left running/);
  assert.equal((await cliStatus(b, "db")).status, "running");

  // A rejected token: its own line, never the token.
  const bad = await a.cli(["services", "start", "b-bad"]);
  noToken(bad.stdout + bad.stderr);
  assert.equal(bad.code, 1, bad.stdout + bad.stderr);
  assert.match(bad.stdout, /rejected the token of auth_token_path/);

  // A forwarded stop of web (B's graph: nothing there needs it) stops it there.
  const stopWeb = await a.cli(["services", "stop", "front", "b-web"]);
  assert.equal(stopWeb.code, 0, stopWeb.stdout + stopWeb.stderr);
  assert.match(stopWeb.stdout, new RegExp(`${host}/web: stopped`));
  assert.equal((await cliStatus(b, "web")).status, "stopped");

  // B's agent killed while B starts slow: A says so, exit 1.
  const starting = a.adopt(spawn(
    ...hosts.a.argv(...cliCommand(["services", "start", "b-slow", "--config", a.config])),
    { cwd: ROOT, env: { ...process.env, PROVISIONING_HOME: a.home, NO_COLOR: "1" } },
  ));
  let out = "";
  starting.stdout!.on("data", (d) => (out += d));
  starting.stderr!.on("data", (d) => (out += d));
  const code = new Promise<number | null>((r) => starting.once("exit", (c) => r(c)));
  await until(async () => (await cliStatus(b, "slow")).status === "starting", "B to start slow");
  process.kill(agentB.pid, "SIGKILL");
  assert.equal(await code, 1, out);
  assert.match(out, /went away during the start/);
  noToken(out);

  // B down: status says so in its own words.
  const down = await cliStatus(a, "b-web");
  assert.equal(down.status, "failed");
  assert.match(down.message ?? "", /connection refused/);
}
