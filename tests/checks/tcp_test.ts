import assert from "node:assert/strict";
import { createServer } from "node:net";
import tcp from "../../checks/tcp.ts";
import { checkContext, close, freePort, listen } from "./_helpers.ts";

Deno.test("tcp check is healthy when the port accepts a connection", async () => {
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    socket.destroy();
  });
  const port = await listen(server);
  try {
    const result = await tcp.run(tcp.config.parse({ host: "127.0.0.1", port }), checkContext());
    assert.equal(result.healthy, true);
    assert.equal(result.message, `TCP connect to 127.0.0.1:${port} succeeded`);
  } finally {
    await close(server);
  }
  assert.equal(accepted, 1);
});

Deno.test("tcp check finds a 127.0.0.1 listener through the default host localhost", async () => {
  const server = createServer((socket) => socket.destroy());
  const port = await listen(server);
  try {
    const cfg = tcp.config.parse({ port });
    assert.equal(cfg.host, "localhost");
    const result = await tcp.run(cfg, checkContext());
    assert.equal(result.healthy, true, result.message);
    assert.equal(result.message, `TCP connect to localhost:${port} succeeded`);
  } finally {
    await close(server);
  }
});

Deno.test("tcp check reports a refused connection as unhealthy", async () => {
  const port = await freePort();
  const result = await tcp.run(tcp.config.parse({ host: "127.0.0.1", port }), checkContext());
  assert.equal(result.healthy, false);
  assert.equal(result.message, `TCP connect to 127.0.0.1:${port} failed: ECONNREFUSED`);
});

Deno.test("tcp check reports cancelled when the caller has already aborted", async () => {
  const controller = new AbortController();
  controller.abort();
  const cfg = tcp.config.parse({ host: "127.0.0.1", port: 9 });
  const result = await tcp.run(cfg, checkContext(5_000, { signal: controller.signal }));
  assert.equal(result.healthy, false);
  assert.equal(result.message, "TCP connect to 127.0.0.1:9 failed: cancelled");
});

Deno.test("tcp config requires a port in range and rejects unknown keys", () => {
  for (
    const input of [{}, { port: 0 }, { port: 70000 }, { port: 80.5 }, { port: 80, hostname: "x" }]
  ) {
    assert.equal(tcp.config.safeParse(input).success, false, JSON.stringify(input));
  }
  assert.deepEqual(tcp.config.parse({ port: 5353 }), { host: "localhost", port: 5353 });
});
