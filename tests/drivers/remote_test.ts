/**
 * The `remote` driver against a real nginx serving https on 127.0.0.2 with certificates made here
 * with openssl (the fixture: `_remote_fixture.ts`). Ignored with a reason when nginx or openssl is
 * missing.
 */
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Platform } from "../../core/platform.ts";
import { PluginRegistry } from "../../core/plugins/registry.ts";
import { startServices } from "../../core/lifecycle/start.ts";
import { stopServices } from "../../core/lifecycle/stop.ts";
import { RegistryError } from "../../core/errors.ts";
import type { LifecycleEvent } from "../../core/lifecycle/events.ts";
import { until } from "../_until.ts";

import {
  freePort,
  gate,
  HOST,
  MISSING,
  nginxFixture,
  remoteToml,
  TOKENS,
  writeToken,
} from "./_remote_fixture.ts";

const test = (name: string, fn: () => Promise<void>, needsNginx = true) => {
  Deno.test({ name, ignore: needsNginx && !!MISSING, fn });
};

/** A platform on a registry of `toml` in `dir`. */
async function open(dir: string, toml: string): Promise<Platform> {
  const config = join(dir, `services-${Math.random().toString(36).slice(2)}.toml`);
  await writeFile(config, toml);
  const home = join(dir, "home");
  // The driver alone: no supervisor watching (tests/e2e/remote_test.ts covers that).
  const env = { PATH: process.env.PATH, HOME: dir, PROVISIONING_NO_SUPERVISOR: "1" };
  return await Platform.open({
    config,
    home,
    env,
    plugins: PluginRegistry.discover({ cwd: dir, home, env }),
  });
}

/** Start `name` with the library; the outcome, its events. */
async function startOne(p: Platform, name: string) {
  const events: LifecycleEvent[] = [];
  const r = await startServices(p, [name], { onEvent: (e) => events.push(e) });
  return { r, o: r.outcomes.find((o) => o.name === name)!, events };
}

const noToken = (text: string) => {
  for (const t of Object.values(TOKENS)) assert.ok(!text.includes(t), `token printed: ${text}`);
};

test(
  "remote config: tls_enabled must agree with the scheme, mTLS both or neither, no Authorization header",
  async () => {
    const dir = await mkdtemp(join(tmpdir(), "prov-remote-cfg-"));
    try {
      const bad = async (remote: Record<string, unknown>, path: string, message: RegExp) => {
        const e = await open(dir, remoteToml("svc", remote)).then(
          () => assert.fail("the registry loaded"),
          (e) => e,
        );
        assert.ok(e instanceof RegistryError, String(e));
        const hit = e.issues.find((i) => i.path === `services.svc.deployment.remote.${path}`);
        assert.ok(hit, `no issue at ${path}: ${e.lines().join("\n")}`);
        assert.match(hit.message, message);
      };
      await bad(
        { endpoint: "https://a.test", tls_enabled: false },
        "tls_enabled",
        /endpoint is https/,
      );
      await bad(
        { endpoint: "http://a.test", tls_enabled: true },
        "tls_enabled",
        /endpoint is http/,
      );
      await bad({ endpoint: "https://a.test", client_cert: "c.pem" }, "client_key", /both/);
      await bad(
        { endpoint: "https://a.test", headers: { authorization: "x" } },
        "headers.authorization",
        /auth_token_path/,
      );
      await bad({ endpoint: "https://a.test", headers: { Host: "x" } }, "headers.Host", /endpoint/);
      await bad({ endpoint: "http://a.test", ca_file: "ca.pem" }, "ca_file", /https/);
      await bad({ endpoint: "https://u:p@a.test" }, "endpoint", /Credentials/);
      await bad({ endpoint: "https://a.test", timeout: 0 }, "timeout", /more than 0/);
      await bad({ endpoint: "https://a.test", agent: {} }, "agent", /./);
      const p = await open(dir, remoteToml("svc", { endpoint: "https://a.test" }));
      assert.deepEqual(p.service("svc").deployment.remote, {
        endpoint: "https://a.test",
        tls_enabled: true,
        insecure: false,
        timeout: 10,
        headers: {},
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
  false,
);

test("remote start waits for a GET below 500 with the token, status probes, stop leaves it running", async () => {
  await using fx = await nginxFixture();
  const token = join(fx.dir, "token");
  await writeToken(token, TOKENS.a);
  const endpoint = `https://${HOST}:${fx.nginx.ports.main}`;
  const p = await open(
    fx.dir,
    remoteToml("orch", { endpoint, ca_file: fx.pki.ca, auth_token_path: token }),
  );
  const driver = await p.plugins.driver("remote");
  assert.deepEqual(driver.capabilities, {
    supervision: "observe",
    owns: "external",
    readiness: "driver",
  });
  // Never started: a pure read that asks nothing.
  const before = await p.runtime("orch");
  assert.equal(before.status, "stopped");
  assert.equal((await fx.nginx.who()).length, 0);

  // The start polls the port (a listener that resets every connection) until nginx takes it.
  const g = await gate(fx.nginx.ports.main);
  const starting = startOne(p, "orch");
  await until(() => g.hits >= 2, "the start polling the endpoint");
  await g.close();
  await fx.nginx.start();
  const { o, events } = await starting;
  assert.equal(o.status, "started", o.message);
  assert.equal(o.health, "healthy");
  assert.ok(events.some((e) => e.type === "healthy" && e.service === "orch"));
  assert.equal(o.pid, undefined);
  await until(async () => (await fx.nginx.who()).at(-1) === "a", "the token reaching nginx");

  const rt = await p.runtime("orch");
  assert.equal(rt.status, "running");
  assert.equal(rt.pid, undefined);
  assert.match(
    rt.message!,
    new RegExp(`^${endpoint.replaceAll(".", "\\.")} answered 200 OK in \\d+ ms$`),
  );
  const health = await p.health("orch");
  assert.equal(health.state, "healthy", health.message);

  const stop = await stopServices(p, ["orch"]);
  assert.equal(stop.exit_code, 0);
  assert.equal(stop.outcomes[0].status, "not_managed");
  assert.ok(fx.nginx.pid, "nginx still runs");
  assert.equal((await p.runtime("orch")).status, "running"); // left running, still probed
});

test("remote token: read fresh for every request (rotation), never printed", async () => {
  await using fx = await nginxFixture();
  await fx.nginx.start();
  const token = join(fx.dir, "token");
  await writeToken(token, TOKENS.a);
  const endpoint = `https://${HOST}:${fx.nginx.ports.main}`;
  const p = await open(
    fx.dir,
    remoteToml("orch", { endpoint, ca_file: fx.pki.ca, auth_token_path: token }),
  );
  assert.equal((await startOne(p, "orch")).o.status, "started");
  await until(async () => (await fx.nginx.who()).includes("a"), "token a logged");
  // The next read after the shared probe's lifetime (PROBE_TTL_MS) sends the new token.
  await writeToken(token, TOKENS.b);
  await until(
    async () => {
      assert.equal((await p.runtime("orch")).status, "running");
      return (await fx.nginx.who()).at(-1) === "b";
    },
    "the rotated token reaching nginx",
    5_000,
  );
  assert.deepEqual([...new Set(await fx.nginx.who())], ["a", "b"]);
  await writeToken(token, "tok-not-accepted");
  await until(async () => (await p.runtime("orch")).status === "failed", "the token refused");
  const rt = await p.runtime("orch");
  assert.equal(rt.status, "failed");
  assert.equal(
    rt.message,
    `${endpoint}: 401 Unauthorized: the token of auth_token_path was rejected`,
  );
  assert.ok(!rt.message!.includes("tok-not-accepted"));
});

test("remote failures: each its own line, no token in any", async () => {
  await using fx = await nginxFixture();
  await fx.nginx.start();
  const token = join(fx.dir, "token");
  await writeToken(token, TOKENS.a);
  const { main, expired } = fx.nginx.ports;
  const at = (port: number, path = "") => `https://${HOST}:${port}${path}`;
  const down = await freePort();
  // A server that accepts connections and never answers.
  // (Deno's node:tls leaves a connection whose handshake timed out open until the server ends
  // it or the process exits: the server ends its connections itself.)
  const held = new Set<Socket>();
  const silent: Server = createServer((s) => {
    held.add(s);
    s.on("close", () => held.delete(s));
  });
  await new Promise<void>((r) => silent.listen(0, HOST, r));
  const mute = (silent.address() as { port: number }).port;
  try {
    const cases: [string, Record<string, unknown>, string][] = [
      [
        "unknown CA (system roots)",
        { endpoint: at(main) },
        `${
          at(main)
        }: TLS: the certificate (issued by "ca test") is not signed by a CA of the system roots (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`,
      ],
      [
        "wrong CA",
        { endpoint: at(main), ca_file: fx.pki.otherCa },
        `${
          at(main)
        }: TLS: the certificate (issued by "ca test") is not signed by a CA of ca_file ${fx.pki.otherCa} (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`,
      ],
      [
        "expired",
        { endpoint: at(expired), ca_file: fx.pki.ca },
        `${at(expired)}: TLS: the certificate expired on 2020-01-02T00:00:00Z (CERT_HAS_EXPIRED)`,
      ],
      [
        "wrong name",
        { endpoint: at(main), ca_file: fx.pki.ca, tls_server_name: "wrong.test" },
        `${
          at(main)
        }: TLS: the certificate is for IP Address:127.0.0.2, DNS:remote.test, not wrong.test (tls_server_name) (ERR_TLS_CERT_ALTNAME_INVALID)`,
      ],
      [
        "no token",
        { endpoint: at(main), ca_file: fx.pki.ca },
        `${at(main)}: 401 Unauthorized: it wants a token (set auth_token_path)`,
      ],
      [
        "5xx",
        { endpoint: at(main, "/broken"), ca_file: fx.pki.ca, auth_token_path: token },
        `Not ready after 1s (start_timeout): ${
          at(main, "/broken")
        }: answered 503 Service Temporarily Unavailable`,
      ],
      [
        "host down",
        { endpoint: at(down), ca_file: fx.pki.ca, auth_token_path: token },
        `Not ready after 1s (start_timeout): ${
          at(down)
        }: connection refused (nothing listens on ${HOST}:${down}: is it down?)`,
      ],
      [
        "no answer",
        { endpoint: at(mute), ca_file: fx.pki.ca, auth_token_path: token, timeout: 0.3 },
        `Not ready after 1s \\(start_timeout\\): ${
          at(mute).replaceAll(".", "\\.")
        }: no answer within `,
      ],
    ];
    // TLS and 401 are not waited out (waiting would not cure them): given a start_timeout of 5 s,
    // they fail well before it. (Told by the case, not by the message: a port may read "401".)
    const fast = new Set([
      "unknown CA (system roots)",
      "wrong CA",
      "expired",
      "wrong name",
      "no token",
    ]);
    for (const [what, remote, message] of cases) {
      const startTimeout = fast.has(what) ? 5 : 1;
      const p = await open(fx.dir, remoteToml("orch", remote, { startTimeout }));
      const started = performance.now();
      const { o } = await startOne(p, "orch");
      assert.equal(o.status, "failed", what);
      if (what === "no answer") assert.match(o.message!, new RegExp(`^${message}\\d\\.\\ds$`));
      else assert.equal(o.message, message, what);
      noToken(o.message!);
      if (fast.has(what)) {
        assert.ok(performance.now() - started < 4_000, `${what} failed without waiting it out`);
      }
    }
    assert.ok((await fx.nginx.who()).every((w) => w === "a" || w === "none"));
  } finally {
    for (const s of held) s.destroy();
    await new Promise((r) => silent.close(r));
  }
});

test("remote with a health check: start waits for the verified handshake, the check does the rest", async () => {
  await using fx = await nginxFixture();
  await fx.nginx.start();
  const endpoint = `https://${HOST}:${fx.nginx.ports.main}`;
  const check = `[services.orch.health_check]\ntype = "tcp"\ninterval = 1\n` +
    `[services.orch.health_check.tcp]\nhost = "${HOST}"\nport = ${fx.nginx.ports.main}\n`;
  // No token: a GET would be a 401; the handshake alone does not care.
  const p = await open(
    fx.dir,
    remoteToml("orch", { endpoint, ca_file: fx.pki.ca }, { extra: check }),
  );
  const { o, events } = await startOne(p, "orch");
  assert.equal(o.status, "started", o.message);
  assert.equal(events.find((e) => e.type === "healthy")?.message?.startsWith("TCP"), true);
  const rt = await p.runtime("orch");
  assert.equal(rt.status, "running");
  assert.match(rt.message!, /: TLS verified in \d+ ms$/);
  assert.equal((await fx.nginx.who()).length, 0, "no request was sent");
});

test("remote with an http health check: it goes through the driver's client (CA, token), other origins do not get the token", async () => {
  await using fx = await nginxFixture();
  await fx.nginx.start();
  const token = join(fx.dir, "orch.token");
  await writeToken(token, TOKENS.a);
  const endpoint = `https://${HOST}:${fx.nginx.ports.main}`;
  const check = (name: string, url: string) =>
    `[services.${name}.health_check]\ntype = "http"\ninterval = 1\n` +
    `[services.${name}.health_check.http]\nendpoint = "${url}"\nexpected_status = 200\n`;
  // Another origin: a plain http server here that notes what it got.
  const seen: (string | undefined)[] = [];
  const plain = createHttpServer((req, res) => {
    seen.push(req.headers.authorization);
    res.end("ok");
  });
  await new Promise<void>((r) => plain.listen(0, HOST, r));
  const otherUrl = `http://${HOST}:${(plain.address() as { port: number }).port}/`;
  try {
    // "/" answers 401 without the token; the CA is ours only (fetch alone would refuse it).
    const p = await open(
      fx.dir,
      remoteToml("orch", { endpoint, ca_file: fx.pki.ca, auth_token_path: token }, {
        extra: check("orch", `${endpoint}/`),
      }) +
        remoteToml("other", { endpoint, ca_file: fx.pki.ca, auth_token_path: token }, {
          extra: check("other", otherUrl),
        }),
    );
    const { o, events } = await startOne(p, "orch");
    assert.equal(o.status, "started", o.message);
    assert.equal(
      events.find((e) => e.type === "healthy")?.message,
      "HTTP status 200 matches expected",
    );
    const h = await p.health("orch");
    assert.equal(h.healthy, true, h.message);
    const who = await fx.nginx.who("/");
    assert.ok(
      who.length >= 2 && who.every((w) => w === "a"),
      `every request had the token: ${who}`,
    );
    // The check of another origin uses its own client: the token never goes there.
    const other = await startOne(p, "other");
    assert.equal(other.o.status, "started", other.o.message);
    assert.ok(seen.length > 0 && seen.every((a) => a === undefined), `sent: ${seen}`);
  } finally {
    await new Promise((r) => plain.close(r));
  }
});

test("remote mutual TLS, insecure, tls_server_name", async () => {
  await using fx = await nginxFixture();
  await fx.nginx.start();
  const { mtls, expired } = fx.nginx.ports;
  const p = await open(
    fx.dir,
    remoteToml("m", {
      endpoint: `https://${HOST}:${mtls}`,
      ca_file: fx.pki.ca,
      client_cert: fx.pki.client.cert,
      client_key: fx.pki.client.key,
    }) +
      remoteToml("n", { endpoint: `https://${HOST}:${mtls}`, ca_file: fx.pki.ca }) +
      remoteToml("i", { endpoint: `https://${HOST}:${expired}`, insecure: true }) +
      remoteToml("s", {
        endpoint: `https://${HOST}:${fx.nginx.ports.main}/open`,
        ca_file: fx.pki.ca,
        tls_server_name: "remote.test",
      }),
  );
  await chmod(fx.pki.client.key, 0o600);
  assert.equal((await startOne(p, "m")).o.status, "started");
  assert.match((await p.runtime("m")).message!, /answered 200 OK/);
  const n = await startOne(p, "n");
  assert.equal(n.o.message, `https://${HOST}:${mtls}: 403 Forbidden: access denied`);
  const i = await startOne(p, "i");
  assert.equal(i.o.status, "started", i.o.message);
  const pre = i.events.find((e) => e.type === "preflight")!.findings!;
  assert.ok(
    pre.some((f) =>
      f.ok && /insecure = true: the certificate of .* is not verified/.test(f.message)
    ),
  );
  assert.match((await p.runtime("i")).message!, /\(TLS not verified: insecure = true\)$/);
  // The certificate's DNS name instead of the IP the endpoint connects to.
  assert.equal((await startOne(p, "s")).o.status, "started");
});

test(
  "remote pre-flight: token file missing or too open, a token over plain http, a CA file that is no PEM",
  async () => {
    const dir = await mkdtemp(join(tmpdir(), "prov-remote-pre-"));
    try {
      const token = join(dir, "token");
      const ca = join(dir, "ca.pem");
      await writeFile(ca, "not a certificate\n");
      const p = await open(
        dir,
        remoteToml("a", { endpoint: "https://127.0.0.2:1", auth_token_path: token, ca_file: ca }) +
          remoteToml("b", { endpoint: "http://192.0.2.1:8080", auth_token_path: token }) +
          remoteToml("c", { endpoint: "http://127.0.0.2:1", auth_token_path: token }),
      );
      const driver = await p.plugins.driver("remote");
      const failed = async (name: string) =>
        (await driver.preflight(p.service(name), p.context())).filter((f) => !f.ok).map((f) =>
          f.message
        );
      assert.deepEqual(await failed("a"), [
        `Token file ${token} (auth_token_path) does not exist`,
        `ca_file ${ca} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
      ]);
      await writeToken(token, TOKENS.a, 0o644);
      assert.deepEqual(await failed("c"), [
        `Token file ${token} (auth_token_path) is readable by others (mode 0644)`,
      ]);
      await chmod(token, 0o640);
      assert.match((await failed("c"))[0], /readable by its group \(mode 0640\)/);
      await chmod(token, 0o600);
      assert.deepEqual(await failed("c"), []);
      assert.deepEqual(await failed("b"), [
        "Refusing to send the token of auth_token_path over plain http to 192.0.2.1 (only a loopback host may get it unencrypted)",
      ]);
      // A start with pre-flight skipped still refuses, and says so with exit code 3.
      const r = await startServices(p, ["b"], { skipPreflight: true });
      assert.equal(r.exit_code, 3);
      assert.match(r.outcomes[0].message!, /^Refusing to send the token/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
  false,
);

test(
  "remote over plain http to a loopback host: the token and the extra headers are sent",
  async () => {
    const dir = await mkdtemp(join(tmpdir(), "prov-remote-http-"));
    const { createServer: createHttp } = await import("node:http");
    const seen: { auth?: string; extra?: string; host?: string }[] = [];
    const server = createHttp((req, res) => {
      seen.push({
        auth: req.headers.authorization,
        extra: req.headers["x-extra"] as string | undefined,
        host: req.headers.host,
      });
      res.writeHead(req.headers.authorization === `Bearer ${TOKENS.a}` ? 204 : 401).end();
    });
    await new Promise<void>((r) => server.listen(0, HOST, r));
    const port = (server.address() as { port: number }).port;
    try {
      const token = join(dir, "token");
      await writeToken(token, TOKENS.a);
      const p = await open(
        dir,
        remoteToml("h", {
          endpoint: `http://${HOST}:${port}/ready?x=1`,
          auth_token_path: token,
          headers: { "X-Extra": "yes" },
        }),
      );
      const { o } = await startOne(p, "h");
      assert.equal(o.status, "started", o.message);
      assert.deepEqual(seen[0], {
        auth: `Bearer ${TOKENS.a}`,
        extra: "yes",
        host: `${HOST}:${port}`,
      });
      const rt = await p.runtime("h");
      // The query is not shown (it may carry a secret).
      assert.match(
        rt.message!,
        new RegExp(`^http://127\\.0\\.0\\.2:${port}/ready answered 204 No Content in \\d+ ms$`),
      );
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await rm(dir, { recursive: true, force: true });
    }
  },
  false,
);
