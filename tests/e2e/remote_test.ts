/**
 * `mode = "remote"` through the CLI across two test hosts (tests/_hosts.ts: network namespaces
 * made here, or 127.0.0.2/127.0.0.3 where they cannot be made): the CLI and its services run on
 * host A, a real nginx serves https on host B with a CA and certificates made at test time (the
 * fixture of tests/drivers/remote_test.ts). A local binary service waits for the remote
 * endpoint, which comes up only after the start began;
 * stops leave nginx running and say `not_managed`; status follows nginx; every failure has its
 * own message, and no token is ever printed.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { appendFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { cliCommand, ROOT } from "../_cli.ts";
import { testHosts } from "../_hosts.ts";
import { isAlive } from "../../core/process/identity.ts";
import {
  gate,
  MISSING,
  nginxFixture,
  remoteToml,
  TOKENS,
  writeToken,
} from "../drivers/_remote_fixture.ts";
import { Sandbox, until } from "./_registry.ts";

/** The CLI running in the background, its output as it comes. */
function spawnCli(sb: Sandbox, args: string[]) {
  const argv = cliCommand([...args, "--config", sb.config]);
  const child: ChildProcess = spawn(
    ...(sb.host ? sb.host.argv(...argv) : argv),
    {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: "1", PROVISIONING_HOME: sb.home },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  sb.adopt(child);
  const out = { text: "" };
  child.stdout!.on("data", (d) => (out.text += d));
  child.stderr!.on("data", (d) => (out.text += d));
  const code = new Promise<number>((r) => child.on("close", (c) => r(c ?? -1)));
  return { out, code };
}

const json = (r: { stdout: string; stderr: string }) => {
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new Error(`not JSON: ${r.stdout}${r.stderr}`);
  }
};

/** No token of ours in `text`. */
function noToken(text: string, ...more: string[]): void {
  for (const t of [...Object.values(TOKENS), ...more]) {
    assert.ok(!text.includes(t), `a token was printed:\n${text}`);
  }
}

Deno.test({
  name:
    "remote via the CLI: a local service waits for the endpoint; stops leave it running (not_managed); status follows it",
  ignore: !!MISSING,
  async fn() {
    await using hosts = testHosts();
    const HOST = hosts.b.address;
    await using sb = await Sandbox.create([{ name: "app", deps: ["orchestrator"] }], {
      host: hosts.a,
    });
    await using fx = await nginxFixture("prov-remote-", hosts.b);
    const token = join(fx.dir, "orchestrator.token");
    await writeToken(token, TOKENS.a);
    const endpoint = `https://${HOST}:${fx.nginx.ports.main}`;
    await appendFile(
      sb.config,
      "\n" + remoteToml("orchestrator", {
        endpoint,
        tls_enabled: true,
        ca_file: fx.pki.ca,
        auth_token_path: token,
      }, { startTimeout: 30 }),
    );

    // The start begins while nothing serves the endpoint: it must wait, polling, not fail.
    const g = await gate(fx.nginx.ports.main, hosts.b);
    const start = spawnCli(sb, ["services", "start", "app"]);
    await until(
      () => start.out.text.includes("Starting dependency: orchestrator") && g.hits >= 3,
      "the CLI waiting for orchestrator",
      20_000,
    );
    assert.ok(!start.out.text.includes("Starting service: app"), start.out.text);
    await g.close();
    await fx.nginx.start();
    if (hosts.kind === "netns") {
      const own = execFileSync("ip", ["-o", "addr"], { encoding: "utf8" });
      assert.ok(!own.includes(HOST), "host B's address is inside its namespace only");
    } else if (process.getuid?.() === 0 && !process.env.PROVISIONING_TEST_HOSTS) {
      assert.fail("as root the hosts are network namespaces");
    }
    assert.equal(await start.code, 0, start.out.text);
    const out = start.out.text;
    const healthy = out.indexOf("✅ Service orchestrator is healthy");
    assert.ok(healthy >= 0, out);
    assert.ok(healthy < out.indexOf("Starting service: app"), out);
    noToken(out);

    const st = json(await sb.cli(["services", "status", "orchestrator", "--json"]));
    assert.equal(st.status, "running");
    assert.equal(st.pid, undefined);
    assert.match(st.message, /answered 200 OK in \d+ ms$/);
    assert.equal(json(await sb.cli(["services", "status", "app", "--json"])).status, "running");
    const health = await sb.cli(["services", "health", "orchestrator", "--json"]);
    assert.match(health.stdout, /"healthy": true/, health.stdout + health.stderr);

    // Its local dependent stops first; orchestrator is left running and says so, exit 0.
    const stop = await sb.cli(["services", "stop", "app", "orchestrator"]);
    assert.equal(stop.code, 0, stop.stdout + stop.stderr);
    assert.match(stop.stdout, /✅ Stopped app/);
    assert.match(stop.stdout, /➖ orchestrator is not managed here: /);
    assert.ok(stop.stdout.indexOf("Stopped app") < stop.stdout.indexOf("➖ orchestrator"));
    assert.ok(fx.nginx.pid && (await isAlive(fx.nginx.pid)), "nginx still runs");
    noToken(stop.stdout + stop.stderr);

    // Again, and the whole platform: orchestrator is already there; platform stop leaves it.
    const again = await sb.cli(["services", "start", "app"]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /orchestrator is already running/);
    const pstop = await sb.cli(["platform", "stop"]);
    assert.equal(pstop.code, 0, pstop.stdout + pstop.stderr);
    assert.match(pstop.stdout, /➖ orchestrator is not managed here/);
    assert.match(pstop.stdout, /1 stopped, 1 not managed here/);
    const pj = json(await sb.cli(["services", "stop", "orchestrator", "--json"]));
    assert.equal(pj.outcomes[0].status, "not_managed");
    assert.ok(fx.nginx.pid && (await isAlive(fx.nginx.pid)), "nginx still runs");

    // nginx dies (killed by its PID): status says failed, and why.
    await fx.nginx.kill();
    const down = json(await sb.cli(["services", "status", "orchestrator", "--json"]));
    assert.equal(down.status, "failed");
    assert.equal(
      down.message,
      `${endpoint}: connection refused (nothing listens on ${HOST}:${fx.nginx.ports.main}: is it down?)`,
    );
  },
});

Deno.test({
  name: "remote via the CLI: each failure its own message and exit code, never a token",
  ignore: !!MISSING,
  async fn() {
    await using hosts = testHosts();
    const HOST = hosts.b.address;
    await using sb = await Sandbox.create([], { host: hosts.a });
    await using fx = await nginxFixture("prov-remote-", hosts.b);
    await fx.nginx.start();
    const good = join(fx.dir, "good.token");
    const wrong = join(fx.dir, "wrong.token");
    const open = join(fx.dir, "open.token");
    await writeToken(good, TOKENS.a);
    await writeToken(wrong, "tok-WRONG-33ab");
    await writeToken(open, TOKENS.b, 0o644);
    const { main, expired } = fx.nginx.ports;
    const down = await hosts.b.freePort();
    const at = (port: number) => `https://${HOST}:${port}`;
    const cases: {
      name: string;
      remote: Record<string, unknown>;
      exit: number;
      message: string;
    }[] = [
      {
        name: "wrong-ca",
        remote: { endpoint: at(main), ca_file: fx.pki.otherCa, auth_token_path: good },
        exit: 1,
        message:
          `TLS: the certificate (issued by "ca test") is not signed by a CA of ca_file ${fx.pki.otherCa}`,
      },
      {
        name: "expired",
        remote: { endpoint: at(expired), ca_file: fx.pki.ca, auth_token_path: good },
        exit: 1,
        message: "TLS: the certificate expired on 2020-01-02T00:00:00Z (CERT_HAS_EXPIRED)",
      },
      {
        name: "wrong-name",
        remote: {
          endpoint: at(main),
          ca_file: fx.pki.ca,
          auth_token_path: good,
          tls_server_name: "wrong.test",
        },
        exit: 1,
        message: `TLS: the certificate is for IP Address:${HOST}, DNS:remote.test, not wrong.test`,
      },
      {
        name: "bad-token",
        remote: { endpoint: at(main), ca_file: fx.pki.ca, auth_token_path: wrong },
        exit: 1,
        message: `${at(main)}: 401 Unauthorized: the token of auth_token_path was rejected`,
      },
      {
        name: "host-down",
        remote: { endpoint: at(down), ca_file: fx.pki.ca, auth_token_path: good },
        exit: 1,
        message: `Not ready after 1s (start_timeout): ${at(down)}: connection refused`,
      },
      {
        name: "no-token-file",
        remote: {
          endpoint: at(main),
          ca_file: fx.pki.ca,
          auth_token_path: join(fx.dir, "missing.token"),
        },
        exit: 3,
        message: `Token file ${join(fx.dir, "missing.token")} (auth_token_path) does not exist`,
      },
      {
        name: "open-token-file",
        remote: { endpoint: at(main), ca_file: fx.pki.ca, auth_token_path: open },
        exit: 3,
        message: `Token file ${open} (auth_token_path) is readable by others (mode 0644)`,
      },
    ];
    await writeFile(
      sb.config,
      cases.map((c) => remoteToml(c.name, c.remote, { startTimeout: 1 })).join("\n") +
        remoteToml("fine", { endpoint: at(main), ca_file: fx.pki.ca, auth_token_path: good }),
    );
    for (const c of cases) {
      const r = await sb.cli(["services", "start", c.name]);
      const all = r.stdout + r.stderr;
      assert.equal(r.code, c.exit, `${c.name}: ${all}`);
      assert.ok(all.includes(c.message), `${c.name}: wanted "${c.message}" in:\n${all}`);
      noToken(all, "tok-WRONG-33ab");
    }
    // The token does reach nginx, from the right file: the only requests with one are "a"s.
    const ok = await sb.cli(["services", "start", "fine"]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    await until(async () => (await fx.nginx.who()).includes("a"), "the token reaching nginx");
    assert.deepEqual([...new Set(await fx.nginx.who())].sort(), ["a", "none"]);
  },
});

Deno.test({
  name:
    "remote via the CLI: the supervisor watches a remote endpoint, records when it stops and starts answering, never restarts it",
  ignore: !!MISSING,
  async fn() {
    await using hosts = testHosts();
    await using sb = await Sandbox.create([], { host: hosts.a });
    await using fx = await nginxFixture("prov-remote-", hosts.b);
    await fx.nginx.start();
    const token = join(fx.dir, "orchestrator.token");
    await writeToken(token, TOKENS.a);
    const endpoint = `https://${hosts.b.address}:${fx.nginx.ports.main}`;
    await writeFile(
      sb.config,
      remoteToml("orchestrator", { endpoint, ca_file: fx.pki.ca, auth_token_path: token }, {
        extra: "[services.orchestrator.health_check]\ninterval = 1\nretries = 2\n",
      }),
    );
    const up = await sb.cli(["services", "start", "orchestrator"]);
    assert.equal(up.code, 0, up.stdout + up.stderr);
    const watched = async () =>
      (json(await sb.cli(["supervisor", "status", "--json"])).services ?? []).map((
        s: { name: string },
      ) => s.name);
    assert.deepEqual(await watched(), ["orchestrator"]);
    const state = async () =>
      JSON.parse(await readFile(join(sb.home, "services", "state", "orchestrator.json"), "utf8"));
    const since = (await state()).started_at;

    // nginx dies: after two failed probes in a row the supervisor records it, once.
    await fx.nginx.kill();
    await until(async () => /unreachable: /.test(await sb.log("orchestrator")), "unreachable");
    const down = await state();
    assert.match(down.message, /^Unreachable: .*connection refused/);
    assert.equal(down.status, "running", "the record stays ours: nothing was stopped");

    // nginx is back: recorded too, the note cleared; nothing was restarted from here.
    await fx.nginx.start();
    await until(async () => /reachable again/.test(await sb.log("orchestrator")), "reachable");
    await until(async () => (await state()).message === undefined, "the note cleared");
    assert.equal((await state()).started_at, since);
    const log = await sb.log("orchestrator");
    assert.equal(log.match(/unreachable: /g)?.length, 1, log);
    assert.doesNotMatch(log, /restart/);

    // A stop leaves it running there and ends the watch.
    const stop = await sb.cli(["services", "stop", "orchestrator"]);
    assert.equal(stop.code, 0, stop.stdout + stop.stderr);
    assert.deepEqual(await watched(), []);
  },
});
