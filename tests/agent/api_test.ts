/**
 * The agent's API over real HTTP against a real agent process (`cli.ts agent`) and real demo
 * services: every route and status code, and each security item of issue 13 — loopback by
 * default and no plain HTTP elsewhere, the token (0600 file, bearer only, never in a URL, 401
 * with `WWW-Authenticate`), the Host allow-list, the Origin check of cookie POSTs with no CORS
 * header, no token or `env` value in any answer, and bounds (body size, streams, a client that
 * does not read). TLS with a certificate made here by openssl.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { parse, stringify } from "smol-toml";
import { API_ROUTES } from "../../core/agent/server.ts";
import { isAlive } from "../../core/process/identity.ts";
import { runCli } from "../_cli.ts";
import { Sandbox, until } from "../e2e/_registry.ts";
import { supervisedSandbox } from "../e2e/_supervised.ts";
import { type Answer, auth, call, spawnAgent, type TestAgent } from "./_agent.ts";

const SECRET = "s3cr3t-env-value-93f1";

/** A client that asks for a log stream and never reads (port in argv, token in TOKEN). */
const SLOW_CLIENT = `
const port = Number(process.argv[1]);
const s = require("node:net").connect(port, "127.0.0.1", () => {
  s.pause();
  s.write("GET /v1/services/web/logs?lines=10&follow=1 HTTP/1.1\\r\\nHost: 127.0.0.1:" + port +
    "\\r\\nAuthorization: Bearer " + process.env.TOKEN + "\\r\\n\\r\\n");
  console.log("connected");
});
setInterval(() => {}, 60_000); // a paused socket keeps no loop alive
`;

/** db ← web (web depends on db), db restarts on failure, web carries a secret in its env. */
async function platform(): Promise<Sandbox> {
  const sb = await supervisedSandbox([
    { name: "db", startup: { restart_on_failure: true } },
    { name: "web", deps: ["db"] },
    { name: "broken", command: () => ({ binary_path: "/nonexistent/provisioning-bin", args: [] }) },
  ]);
  const doc = parse(readFileSync(sb.config, "utf8")) as {
    services: Record<string, { deployment: { binary: { env?: Record<string, string> } } }>;
  };
  doc.services.web.deployment.binary.env = { API_KEY: SECRET };
  writeFileSync(sb.config, stringify(doc));
  return sb;
}

/** No answer may hold the token or an env value. */
function clean(a: TestAgent, r: Answer): Answer {
  assert.ok(!r.text.includes(a.token), "the token leaked into an answer");
  assert.ok(!r.text.includes(SECRET), "an env value leaked into an answer");
  assert.equal(r.headers["access-control-allow-origin"], undefined, "a CORS header was sent");
  return r;
}

const post = (body: unknown = {}, headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "Content-Type": "application/json", ...headers },
  body: JSON.stringify(body),
});

/** Read an SSE stream until `done(events)`; the events seen (name, data, id). */
async function sse(
  url: string,
  headers: Record<string, string>,
  done: (events: { event: string; data: string; id?: string }[]) => boolean,
  init: { method?: string; body?: string } = {},
): Promise<{ event: string; data: string; id?: string }[]> {
  const ac = new AbortController();
  const res = await fetch(url, { headers, signal: ac.signal, ...init });
  if (res.status !== 200) assert.fail(`${url}: ${res.status} ${await res.text()}`);
  assert.match(res.headers.get("content-type") ?? "", /text\/event-stream/);
  const events: { event: string; data: string; id?: string }[] = [];
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  try {
    while (!done(events)) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buf += value;
      let i;
      while ((i = buf.indexOf("\n\n")) !== -1) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const e = { event: "message", data: "", id: undefined as string | undefined };
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) e.event = line.slice(7);
          else if (line.startsWith("data: ")) data.push(line.slice(6));
          else if (line.startsWith("id: ")) e.id = line.slice(4);
        }
        if (data.length) events.push({ ...e, data: data.join("\n") });
      }
    }
  } finally {
    ac.abort();
    await reader.cancel().catch(() => {});
  }
  return events;
}

Deno.test("the agent's API, route by route, with its security rules", async (t) => {
  await using sb = await platform();
  const a = await spawnAgent(sb);
  const api = (path: string) => `${a.url}${path}`;
  const tokenFile = join(sb.home, "agent", "token");

  await t.step("the token file is made 0600 and the sign-in URL carries it in the fragment", () => {
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    assert.equal(readFileSync(tokenFile, "utf8").trim(), a.token);
    assert.match(a.output(), new RegExp(`http://127\\.0\\.0\\.1:${a.port}/#token=`));
  });

  await t.step("/healthz needs nothing; every API route needs the token", async () => {
    const h = clean(a, await call(api("/healthz")));
    assert.equal(h.status, 200);
    assert.deepEqual(h.json(), { ok: true });
    for (const [method, path] of API_ROUTES) {
      if (path === "/healthz") continue;
      const r = clean(a, await call(api(path.replace("{name}", "db")), { method }));
      assert.equal(r.status, 401, `${method} ${path} without a token: ${r.status}`);
      assert.match(String(r.headers["www-authenticate"]), /^Bearer/);
      assert.equal(r.json().error.code, "unauthorized");
    }
    const wrong = await call(api("/v1/services"), { headers: { Authorization: "Bearer nope" } });
    assert.equal(wrong.status, 401);
    const inUrl = clean(a, await call(api(`/v1/services?token=${a.token}`)));
    assert.equal(inUrl.status, 401, "a token in the URL is never accepted");
    assert.match(inUrl.json().error.message, /in the URL is not accepted/);
  });

  await t.step("GET /v1/agent, /v1/services, /v1/services/{name}, /health, /v1/graph", async () => {
    const info = clean(a, await call(api("/v1/agent"), { headers: auth(a) })).json();
    assert.equal(info.version, "0.1.0");
    assert.equal(info.home, sb.home);
    assert.equal(info.registry, sb.config);
    assert.equal(typeof info.pid, "number");
    const list = clean(a, await call(api("/v1/services"), { headers: auth(a) }));
    assert.equal(list.status, 200);
    const cli = await runCli(["services", "list", "--json", "--config", sb.config], {
      env: { PROVISIONING_HOME: sb.home },
    });
    assert.deepEqual(list.json(), JSON.parse(cli.stdout), "the shape of services list --json");
    const one = clean(a, await call(api("/v1/services/web"), { headers: auth(a) }));
    assert.equal(one.status, 200);
    assert.equal(one.json().name, "web");
    assert.deepEqual(one.json().dependencies, ["db"]);
    const h = clean(a, await call(api("/v1/services/db/health"), { headers: auth(a) }));
    assert.equal(h.status, 200);
    assert.equal(h.json().state, "not_running");
    const g = clean(a, await call(api("/v1/graph"), { headers: auth(a) })).json();
    assert.deepEqual(g.edges, [{ from: "web", to: "db" }]);
    assert.deepEqual(g.waves[0].sort(), ["broken", "db"]);
  });

  await t.step(
    "unknown routes and names are 404, a wrong method 405, never a path escape",
    async () => {
      for (
        const path of [
          "/v1/nothing",
          "/v1/services/nope",
          "/v1/services/..%2f/start",
          "/v1/services/..%2F..%2Fetc/health",
          "/v1/services/%2e%2e/logs",
          "/v1/services/DB",
        ]
      ) {
        const r = clean(a, await call(api(path), { method: "GET", headers: auth(a) }));
        const p = clean(a, await call(api(path), { ...post(), headers: auth(a) }));
        assert.ok([404, 405].includes(r.status), `${path}: ${r.status}`);
        assert.equal(p.status, 404, `POST ${path}: ${p.status}`);
        assert.ok(p.json().error.code, "errors are {error: {code, message, hints}}");
      }
      const m = await call(api("/v1/services"), { method: "DELETE", headers: auth(a) });
      assert.equal(m.status, 405);
      assert.equal(m.headers.allow, "GET");
    },
  );

  await t.step(
    "POST start: 200 with the LifecycleResult, DAG-ordered; 422 when pre-flight fails",
    async () => {
      const r = clean(
        a,
        await call(api("/v1/services/web/start"), {
          ...post(),
          headers: { ...auth(a), "Content-Type": "application/json" },
        }),
      );
      assert.equal(r.status, 200, r.text);
      const res = r.json();
      assert.equal(res.ok, true);
      assert.equal(res.exit_code, 0);
      assert.deepEqual(res.outcomes.map((o: { name: string }) => o.name), ["db", "web"]);
      const bad = clean(
        a,
        await call(api("/v1/services/broken/start"), { ...post(), headers: auth(a) }),
      );
      assert.equal(bad.status, 422, bad.text);
      assert.equal(bad.json().exit_code, 3);
    },
  );

  await t.step(
    "POST stop of a service with running dependents: 409 refused, naming them",
    async () => {
      const r = clean(a, await call(api("/v1/services/db/stop"), { ...post(), headers: auth(a) }));
      assert.equal(r.status, 409, r.text);
      const body = r.json();
      const said = JSON.stringify(body);
      assert.match(said, /web/, `the refusal names the dependent: ${said}`);
      const s = await call(api("/v1/services/db"), { headers: auth(a) });
      assert.equal(s.json().status, "running", "a refused stop leaves it running");
    },
  );

  await t.step("bad bodies: not JSON 400, force not a boolean 400, too large 413", async () => {
    const h = { ...auth(a), "Content-Type": "application/json" };
    const notJson = await call(api("/v1/services/web/restart"), {
      method: "POST",
      headers: h,
      body: "{",
    });
    assert.equal(notJson.status, 400);
    const force = await call(api("/v1/services/web/stop"), {
      ...post({ force: "yes" }),
      headers: h,
    });
    assert.equal(force.status, 400);
    const big = await call(api("/v1/platform/start"), {
      method: "POST",
      headers: h,
      body: JSON.stringify({ pad: "x".repeat(70_000) }),
    });
    assert.equal(big.status, 413);
    const names = await call(api("/v1/platform/stop"), {
      ...post({ services: ["nope"] }),
      headers: h,
    });
    assert.equal(names.status, 404);
  });

  await t.step(
    "restart with Accept: text/event-stream streams the lifecycle, then the result",
    async () => {
      const events = await sse(
        api("/v1/services/web/restart"),
        { ...auth(a), Accept: "text/event-stream", "Content-Type": "application/json" },
        (es) => es.some((e) => e.event === "result" || e.event === "error"),
        { method: "POST", body: "{}" },
      );
      const kinds = events.filter((e) => e.event === "lifecycle").map((e) =>
        JSON.parse(e.data).type
      );
      assert.ok(kinds.includes("stopped") && kinds.includes("started"), kinds.join(","));
      const result = JSON.parse(events.at(-1)!.data);
      assert.equal(events.at(-1)!.event, "result");
      assert.equal(result.ok, true);
      for (const e of events) assert.ok(!e.data.includes(SECRET) && !e.data.includes(a.token));
    },
  );

  await t.step(
    "GET /v1/events: a kill -9 shows as a status change, then running again",
    async () => {
      const before = (await call(api("/v1/services/db"), { headers: auth(a) })).json();
      assert.equal(before.status, "running");
      let killed = false;
      const events = await sse(api("/v1/events"), auth(a), (es) => {
        const db = es.filter((e) => e.event === "status").map((e) => JSON.parse(e.data))
          .filter((e) => e.name === "db");
        if (!killed && db.length) {
          killed = true;
          process.kill(before.pid, "SIGKILL");
        }
        const i = db.findIndex((e) => e.pid === before.pid && e.status !== "running");
        const down = db.findIndex((e) => e.status !== "running" || e.pid !== before.pid);
        return (i !== -1 || down !== -1) &&
          db.slice(Math.max(i, down)).some((e) => e.status === "running" && e.pid !== before.pid);
      });
      const db = events.filter((e) => e.event === "status").map((e) => JSON.parse(e.data))
        .filter((e) => e.name === "db");
      assert.ok(db.some((e) => e.status !== "running" || e.pid !== before.pid));
      assert.equal(db.at(-1).status, "running");
      for (const key of ["name", "status", "pid", "restarts", "healthy", "uptime_s"]) {
        assert.ok(key in db.at(-1), `a status event without ${key}`);
      }
    },
  );

  await t.step(
    "GET logs: last lines as JSON; follow as SSE whose ids resume (Last-Event-ID)",
    async () => {
      const r = clean(a, await call(api("/v1/services/web/logs?lines=5"), { headers: auth(a) }));
      assert.equal(r.status, 200);
      assert.ok(r.json().lines.length > 0 && r.json().lines.length <= 5);
      assert.equal(
        (await call(api("/v1/services/web/logs?lines=0"), { headers: auth(a) })).status,
        400,
      );
      const first = await sse(
        api("/v1/services/web/logs?lines=3&follow=1"),
        auth(a),
        (es) => es.length >= 3,
      );
      assert.ok(first.every((e) => e.event === "line" && /^\d+:\d+$/.test(e.id ?? "")));
      // Resume after the second line: the third comes again first.
      const again = await sse(
        api("/v1/services/web/logs?lines=3&follow=1"),
        { ...auth(a), "Last-Event-ID": first[1].id! },
        (es) => es.length >= 1,
      );
      assert.equal(again[0].data, first[2].data);
      assert.equal(again[0].id, first[2].id);
    },
  );

  await t.step("GET /metrics: Prometheus text with the service series", async () => {
    const m = clean(a, await call(api("/metrics"), { headers: auth(a) }));
    assert.equal(m.status, 200);
    assert.match(String(m.headers["content-type"]), /^text\/plain; version=0\.0\.4/);
    assert.match(m.text, /^provisioning_service_up\{service="db",mode="binary"\} 1$/m);
    assert.match(m.text, /^provisioning_service_state\{service="web",state="running"\} 1$/m);
    // The whole answer through a real Prometheus text-format parser (histograms aside: that
    // parser drops labelled ones, see metrics_test.ts).
    const families = (parsePrometheusTextFormat as unknown as (t: string) => { name: string }[])(
      m.text.split("\n").filter((l) => !/_duration_seconds/.test(l)).join("\n"),
    ).map((f) => f.name);
    for (
      const name of [
        "provisioning_build_info",
        "provisioning_supervisor_up",
        "provisioning_service_up",
        "provisioning_service_state",
        "provisioning_service_restarts_total",
        "provisioning_service_start_time_seconds",
      ]
    ) assert.ok(families.includes(name), `no ${name} in ${families.join(", ")}`);
  });

  await t.step("DNS rebinding: a Host that is not ours is 403, even with the token", async () => {
    for (const host of [`evil.example:${a.port}`, "127.0.0.1", `127.0.0.1:${a.port + 1}`]) {
      const r = await call(api("/v1/services"), { headers: { ...auth(a), Host: host } });
      assert.equal(r.status, 403, host);
      assert.equal(r.json().error.code, "forbidden_host");
    }
    const ok = await call(api("/healthz"), { headers: { Host: `localhost:${a.port}` } });
    assert.equal(ok.status, 200);
  });

  await t.step("CSRF: a cookie-signed POST needs this Origin; no CORS headers ever", async () => {
    const s = await call(api("/v1/session"), { method: "POST", headers: auth(a) });
    assert.equal(s.status, 204);
    const cookie = String(s.headers["set-cookie"]);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    const jar = cookie.split(";")[0];
    const pid = (await call(api("/v1/services/web"), { headers: auth(a) })).json().pid;
    const read = await call(api("/v1/services"), { headers: { Cookie: jar } });
    assert.equal(read.status, 200, "the cookie signs GETs in");
    for (const origin of [undefined, `http://127.0.0.1:${a.port + 1}`, "null"]) {
      const r = clean(
        a,
        await call(api("/v1/services/web/restart"), {
          ...post(),
          headers: {
            Cookie: jar,
            "Content-Type": "application/json",
            ...(origin ? { Origin: origin } : {}),
          },
        }),
      );
      assert.equal(r.status, 403, `Origin ${origin}`);
      assert.equal(r.json().error.code, "forbidden_origin");
    }
    const pre = await call(api("/v1/services/web/restart"), {
      method: "OPTIONS",
      headers: { Origin: "http://evil.example", "Access-Control-Request-Method": "POST" },
    });
    assert.equal(pre.headers["access-control-allow-origin"], undefined);
    assert.equal(
      (await call(api("/v1/services/web"), { headers: auth(a) })).json().pid,
      pid,
      "nothing restarted",
    );
    const same = await call(api("/v1/services/web/restart"), {
      ...post(),
      headers: { Cookie: jar, "Content-Type": "application/json", Origin: a.url },
    });
    assert.equal(same.status, 200, same.text);
  });

  await t.step(
    "Ctrl+C (SIGTERM) stops the agent cleanly and leaves the services running",
    async () => {
      const s = (await call(api("/v1/services/web"), { headers: auth(a) })).json();
      assert.equal(await a.stop(), 0);
      assert.match(a.output(), /Agent stopped/);
      assert.equal(await isAlive(s.pid), true, "stopping the agent stopped a service");
      assert.ok(
        !a.output().includes(a.token.slice(0, 12)) || a.output().split(a.token).length === 2,
        "the token is printed once, in the sign-in URL, and nowhere else",
      );
      assert.ok(!a.output().includes(SECRET));
    },
  );
});

Deno.test("the agent refuses plain HTTP off loopback (2) and a token file others can read (3)", async () => {
  await using sb = await Sandbox.create([{ name: "db" }]);
  const env = { PROVISIONING_HOME: sb.home };
  const off = await runCli(["agent", "--listen", "0.0.0.0:0", "--config", sb.config], {
    env,
    timeoutMs: 20_000,
  });
  assert.equal(off.code, 2, off.stdout + off.stderr);
  assert.match(off.stderr, /Refusing to serve plain HTTP on 0\.0\.0\.0/);
  const file = join(sb.dir, "token");
  writeFileSync(file, "0123456789abcdef0123456789abcdef\n");
  chmodSync(file, 0o644);
  const loose = await runCli([
    "agent",
    "--listen",
    "127.0.0.1:0",
    "--token-file",
    file,
    "--config",
    sb.config,
  ], { env, timeoutMs: 20_000 });
  assert.equal(loose.code, 3, loose.stdout + loose.stderr);
  assert.match(
    loose.stderr,
    /Refusing the agent token .*group or others may read it \(mode 0644\)/,
  );
  assert.ok(!(loose.stdout + loose.stderr).includes("0123456789abcdef"), "the token leaked");
  const tok = await runCli(["agent", "token"], { env });
  assert.equal(tok.code, 0, tok.stderr);
  assert.equal(tok.stdout.trim(), readFileSync(join(sb.home, "agent", "token"), "utf8").trim());
});

Deno.test("over TLS (a certificate made here): the API answers on https, the cookie is Secure", async () => {
  await using sb = await Sandbox.create([{ name: "db" }]);
  const key = join(sb.dir, "key.pem");
  const cert = join(sb.dir, "cert.pem");
  execFileSync("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    "1",
    "-subj",
    "/CN=127.0.0.1",
    "-addext",
    "subjectAltName=IP:127.0.0.1",
  ], { stdio: "ignore" });
  const a = await spawnAgent(sb, ["--tls-cert", cert, "--tls-key", key]);
  assert.match(a.url, /^https:\/\/127\.0\.0\.1:/);
  const ca = readFileSync(cert);
  const r = await call(`${a.url}/v1/services`, { headers: auth(a), ca });
  assert.equal(r.status, 200);
  const s = await call(`${a.url}/v1/session`, { method: "POST", headers: auth(a), ca });
  assert.match(String(s.headers["set-cookie"]), /; Secure/);
  await until(async () => (await a.stop()) !== undefined, "the agent to stop");
});

Deno.test("streams are bounded, and a client that never reads its log stream is dropped", async () => {
  await using sb = await Sandbox.create([{ name: "web" }]);
  const log = join(sb.home, "services", "logs", "web.log");
  const a = await spawnAgent(sb, ["--max-streams", "1"]);
  writeFileSync(log, "first line\n", { flag: "a" });
  const api = (path: string) => `${a.url}${path}`;
  const streams = async () =>
    (await call(api("/v1/agent"), { headers: auth(a) })).json().streams.open as number;
  // A Node client (its `pause()` stops reading at the socket) opens a follow stream of web's
  // log and never reads; the log then gets 8 MB it will not take.
  const reader = sb.adopt(spawn("node", ["-e", SLOW_CLIENT, String(a.port)], {
    env: { ...process.env, TOKEN: a.token },
    stdio: ["ignore", "pipe", "inherit"],
  }));
  let said = "";
  reader.stdout!.on("data", (d) => (said += d));
  await until(() => said.includes("connected"), "the slow client to connect");
  await until(async () => (await streams()) === 1, "its stream to open");
  const full = await call(api("/v1/events"), { headers: auth(a) });
  assert.equal(full.status, 503, "--max-streams 1: a second stream is refused");
  assert.equal(full.json().error.code, "busy");
  writeFileSync(log, `${"z".repeat(199)}\n`.repeat(40_000), { flag: "a" });
  const t0 = Date.now();
  const h = await call(api("/v1/services"), { headers: auth(a) });
  assert.equal(h.status, 200);
  assert.ok(Date.now() - t0 < 5_000, "the agent stalled behind a slow client");
  // Dropped once it has not taken what it was sent for 10 s (a paused client would not even
  // see the close: the agent's own count says it).
  await until(async () => (await streams()) === 0, "the agent to drop the slow client", 30_000);
  assert.equal(await a.stop(), 0);
});
