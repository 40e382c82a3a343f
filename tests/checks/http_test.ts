import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import http from "../../checks/http.ts";
import { checkContext, close, freePort, listen } from "./_helpers.ts";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Runs `fn` against an HTTP server on 127.0.0.1 that answers with `handler`. */
async function withServer(handler: Handler, fn: (base: string) => Promise<void>): Promise<void> {
  const server = createServer(handler);
  const port = await listen(server);
  try {
    await fn(`http://127.0.0.1:${port}`);
  } finally {
    await close(server);
  }
}

const status = (code: number): Handler => (_req, res) => res.writeHead(code).end("body");

Deno.test("http check is healthy when the status matches", async () => {
  await withServer(status(200), async (base) => {
    const cfg = http.config.parse({ endpoint: `${base}/health` });
    const result = await http.run(cfg, checkContext());
    assert.equal(result.healthy, true);
    assert.equal(result.message, "HTTP status 200 matches expected");
    assert.ok(result.durationMs >= 0);
  });
});

Deno.test("http check reports a wrong status as unhealthy with both codes", async () => {
  await withServer(status(503), async (base) => {
    const cfg = http.config.parse({ endpoint: `${base}/health` });
    const result = await http.run(cfg, checkContext());
    assert.equal(result.healthy, false);
    assert.equal(result.message, "HTTP status 503 (expected 200)");
  });
});

Deno.test("http check accepts a non-default expected_status", async () => {
  await withServer(status(204), async (base) => {
    const cfg = http.config.parse({ endpoint: base, expected_status: 204 });
    assert.equal((await http.run(cfg, checkContext())).healthy, true);
  });
});

Deno.test("http check gives up at its timeout when the server never answers", async () => {
  await withServer(() => {/* never answers */}, async (base) => {
    const cfg = http.config.parse({ endpoint: `${base}/health` });
    const started = performance.now();
    const result = await http.run(cfg, checkContext(200));
    assert.equal(result.healthy, false);
    assert.equal(result.message, "Timed out after 200 ms");
    assert.ok(performance.now() - started < 5_000, "returned long after the timeout");
  });
});

Deno.test("http check reports Cancelled when the caller aborts", async () => {
  await withServer(() => {/* never answers */}, async (base) => {
    const cfg = http.config.parse({ endpoint: base });
    const controller = new AbortController();
    const running = http.run(cfg, checkContext(30_000, { signal: controller.signal }));
    controller.abort();
    const result = await running;
    assert.equal(result.healthy, false);
    assert.equal(result.message, "Cancelled");
  });
});

Deno.test("http check sends the configured method, headers and body", async () => {
  let seen: Record<string, unknown> = {};
  const handler: Handler = (req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      seen = {
        method: req.method,
        auth: req.headers.authorization,
        custom: req.headers["x-probe"],
        body,
      };
      res.writeHead(200).end();
    });
  };
  await withServer(handler, async (base) => {
    const cfg = http.config.parse({
      endpoint: `${base}/ping`,
      method: "post",
      headers: { Authorization: "Bearer t0ken", "X-Probe": "yes" },
      body: '{"ping":true}',
    });
    const result = await http.run(cfg, checkContext());
    assert.equal(result.healthy, true, result.message);
    assert.deepEqual(seen, {
      method: "POST",
      auth: "Bearer t0ken",
      custom: "yes",
      body: '{"ping":true}',
    });
  });
});

Deno.test("http check reports a refused connection with host and port", async () => {
  const port = await freePort();
  const cfg = http.config.parse({ endpoint: `http://127.0.0.1:${port}/health` });
  const result = await http.run(cfg, checkContext());
  assert.equal(result.healthy, false);
  assert.equal(result.message, `Connection refused: 127.0.0.1:${port}`);
});

Deno.test("http check reaches a 127.0.0.1 server through localhost", async () => {
  await withServer(status(200), async (base) => {
    const cfg = http.config.parse({ endpoint: base.replace("127.0.0.1", "localhost") });
    const result = await http.run(cfg, checkContext());
    assert.equal(result.healthy, true, result.message);
  });
});

Deno.test("http config applies defaults", () => {
  assert.deepEqual(http.config.parse({ endpoint: "http://localhost:9090/health" }), {
    endpoint: "http://localhost:9090/health",
    expected_status: 200,
    method: "GET",
    headers: {},
  });
});

Deno.test("http config normalises a lowercase method", () => {
  const cfg = http.config.parse({ endpoint: "https://example.com", method: "head" });
  assert.equal(cfg.method, "HEAD");
});

Deno.test("http config rejects an unknown key", () => {
  const result = http.config.safeParse({ endpoint: "http://x/", expected_code: 200 });
  assert.equal(result.success, false);
  assert.match(result.error!.issues[0].message, /expected_code/);
});

Deno.test("http config rejects a bad URL and a non-http scheme", () => {
  for (const endpoint of ["not a url", "ftp://localhost/health", "localhost:9090"]) {
    const result = http.config.safeParse({ endpoint });
    assert.equal(result.success, false, endpoint);
    assert.deepEqual(result.error!.issues[0].path, ["endpoint"]);
    assert.equal(result.error!.issues[0].message, "Invalid URL");
  }
});

Deno.test("http config rejects an out-of-range status, an unknown method and a GET body", () => {
  const bad = [
    { endpoint: "http://x/", expected_status: 42 },
    { endpoint: "http://x/", method: "FETCH" },
    { endpoint: "http://x/", body: "hello" },
    { endpoint: "http://x/", headers: { "bad header": "v" } },
  ];
  for (const input of bad) {
    assert.equal(http.config.safeParse(input).success, false, JSON.stringify(input));
  }
});
