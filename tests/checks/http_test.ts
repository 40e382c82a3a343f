import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createNetServer, type Socket } from "node:net";
import http, { parseStatus } from "../../checks/http.ts";
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

/** Runs `fn` against a raw TCP server on 127.0.0.1 whose connections `onConn` handles. */
async function withRawServer(
  onConn: (socket: Socket, request: Promise<string>) => void,
  fn: (base: string) => Promise<void>,
): Promise<void> {
  const server = createNetServer((socket) => {
    socket.on("error", () => {});
    const request = new Promise<string>((resolve) => {
      let text = "";
      socket.on("data", (chunk) => {
        text += chunk.toString("latin1");
        if (text.includes("\r\n\r\n")) resolve(text);
      });
    });
    onConn(socket, request);
  });
  const port = await listen(server);
  try {
    await fn(`http://127.0.0.1:${port}`);
  } finally {
    await close(server);
  }
}

Deno.test("http check reads only the status line, even when it arrives a byte at a time", async () => {
  await withRawServer(async (socket, request) => {
    await request;
    for (const byte of "HTTP/1.1 204 No Content\r\n") socket.write(byte);
    // The headers never end and the connection stays open: the status line is enough.
  }, async (base) => {
    const cfg = http.config.parse({ endpoint: `${base}/health`, expected_status: 204 });
    const result = await http.run(cfg, checkContext(2_000));
    assert.equal(result.healthy, true, result.message);
  });
});

Deno.test("http check skips an interim 100 Continue and judges the final status", async () => {
  await withRawServer(async (socket, request) => {
    await request;
    socket.write("HTTP/1.1 100 Continue\r\nX-A: 1\r\n\r\nHTTP/1.1 503 Service Unavailable\r\n\r\n");
  }, async (base) => {
    const cfg = http.config.parse({ endpoint: base });
    const result = await http.run(cfg, checkContext(2_000));
    assert.equal(result.message, "HTTP status 503 (expected 200)");
  });
});

Deno.test("http check reports a server that is not HTTP, and one that hangs up", async () => {
  await withRawServer(async (socket, request) => {
    await request;
    socket.end("SSH-2.0-OpenSSH_9.6\r\n");
  }, async (base) => {
    const result = await http.run(http.config.parse({ endpoint: base }), checkContext(2_000));
    assert.equal(result.healthy, false);
    assert.match(result.message, /failed: Not an HTTP response: "SSH-2\.0/);
  });
  await withRawServer((socket) => socket.destroy(), async (base) => {
    const result = await http.run(http.config.parse({ endpoint: base }), checkContext(2_000));
    assert.equal(result.healthy, false);
    assert.equal(result.message, `Connection reset: ${new URL(base).host}`);
  });
});

Deno.test("http check sends one HTTP/1.1 request: path, query, Host, credentials, Connection: close", async () => {
  let seen = "";
  await withRawServer(async (socket, request) => {
    seen = await request;
    socket.end("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  }, async (base) => {
    const url = new URL(`${base}/api/health?deep=1`);
    url.username = "ops";
    url.password = "s3cret";
    const cfg = http.config.parse({ endpoint: url.href, headers: { "X-Probe": "yes" } });
    const result = await http.run(cfg, checkContext(2_000));
    assert.equal(result.healthy, true, result.message);
  });
  const [line, ...headers] = seen.trimEnd().split("\r\n");
  assert.equal(line, "GET /api/health?deep=1 HTTP/1.1");
  const byName = Object.fromEntries(headers.map((h) => h.split(": ")));
  assert.match(byName.host, /^127\.0\.0\.1:\d+$/);
  assert.equal(byName.authorization, `Basic ${btoa("ops:s3cret")}`);
  assert.equal(byName["x-probe"], "yes");
  assert.equal(byName.connection, "close");
  assert.equal(headers.length, 4, "one header each, nothing repeated");
});

Deno.test("http config rejects a header value with a line break", () => {
  const r = http.config.safeParse({
    endpoint: "http://x/",
    headers: { "X-A": "ok\r\nX-Injected: 1" },
  });
  assert.equal(r.success, false);
  assert.match(r.error!.issues[0].message, /line breaks/);
});

Deno.test("parseStatus: waits for a whole status line, skips 1xx, refuses what is not HTTP", () => {
  assert.equal(parseStatus(""), undefined);
  assert.equal(parseStatus("HTTP/1."), undefined);
  assert.equal(parseStatus("HTTP/1.1 200 OK"), undefined);
  assert.equal(parseStatus("HTTP/1.1 200 OK\r\n"), 200);
  assert.equal(parseStatus("HTTP/1.0 404\r\n"), 404);
  assert.equal(parseStatus("HTTP/1.1 100 Continue\r\n"), undefined);
  assert.equal(parseStatus("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 302 Found\r\n"), 302);
  assert.equal(parseStatus("HTTP/1.1 101 Switching Protocols\r\n"), 101);
  assert.equal(parseStatus("SSH-2.0"), "bad");
  assert.equal(parseStatus("HTTP/1.1 2000\r\n"), "bad");
});
