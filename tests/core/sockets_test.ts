/**
 * `core/runtime/ipc.ts` and `tcp.ts` on Bun's own sockets (`Bun.connect`, what the binary and
 * its supervisor use): a client in a real `bun` process against this test's supervisor socket
 * (`serve`) and TCP servers on loopback. A request and a reply of about a megabyte each (more
 * than a socket buffer takes at once: the rest goes on `drain`), multi-byte UTF-8 cut across
 * reads, no listener, a refused port, a peer that closes before answering. (Under Deno the
 * suite runs on Deno's sockets; the Node bundle's e2e runs cover `node:net`.)
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "../../core/runtime/ipc.ts";
import { ROOT } from "../_cli.ts";

const BUN = join(ROOT, "node_modules", ".bin", "bun");

/** Run `script` under Bun; its exit code and the JSON it printed. */
function underBun(script: string): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), "prov-sockets-"));
  const file = join(dir, "client.ts");
  writeFileSync(file, script);
  return new Promise((resolve, reject) => {
    const child = spawn(BUN, [file], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.once("error", reject);
    child.once("close", (code) => {
      rmSync(dir, { recursive: true, force: true });
      try {
        resolve({ code, ...JSON.parse(out) });
      } catch {
        reject(new Error(`bun exited ${code}: ${out}${err}`));
      }
    });
  });
}

Deno.test("under Bun, a supervisor request and reply of a megabyte each, UTF-8 intact, over Bun.connect", async () => {
  const dir = mkdtempSync(join(tmpdir(), "prov-sock-"));
  const socket = join(dir, "supervisor.sock");
  const big = "é€😀".repeat(100_000); // 3 code points, 9 bytes: cut across reads somewhere
  const listener = await serve(socket, (msg) => {
    assert.equal(msg.op, "echo");
    return Promise.resolve({ ok: true, length: (msg.text as string).length, text: big });
  });
  chmodSync(socket, 0o600); // as the supervisor's (its folder is the home's run/, 0700)
  try {
    const r = await underBun(
      `import { request } from ${JSON.stringify(join(ROOT, "core/runtime/ipc.ts"))};
const big = "é€😀".repeat(100_000);
const reply = await request(${JSON.stringify(socket)}, { op: "echo", text: big });
const none = await request(${JSON.stringify(join(dir, "none.sock"))}, { op: "ping" });
console.log(JSON.stringify({ ok: reply.ok, length: reply.length, same: reply.text === big,
  none: none === undefined, bun: typeof Bun }));`,
    );
    assert.deepEqual(r, {
      code: 0,
      ok: true,
      length: big.length,
      same: true,
      none: true,
      bun: "object",
    });
  } finally {
    await listener.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("under Bun, an http exchange over Bun.connect: an answer, a refused port, a peer that closes first", async () => {
  const server = createServer((conn) => {
    conn.once("data", (d) => {
      if (String(d).startsWith("GET /close")) conn.end();
      else conn.end("HTTP/1.1 204 No Content\r\n\r\n");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const closed = createServer().listen(0, "127.0.0.1");
  await new Promise((resolve) => closed.once("listening", resolve));
  const refused = (closed.address() as { port: number }).port;
  await new Promise((resolve) => closed.close(resolve));
  try {
    const r = await underBun(
      `import { exchange } from ${JSON.stringify(join(ROOT, "core/runtime/tcp.ts"))};
const ask = (path, port) => exchange("127.0.0.1", port,
  new TextEncoder().encode("GET " + path + " HTTP/1.1\\r\\n\\r\\n"), AbortSignal.timeout(5000),
  (text) => text.includes("\\r\\n") ? text.split("\\r\\n")[0] : undefined)
  .catch((e) => "error " + e.code);
console.log(JSON.stringify({ ok: await ask("/", ${port}), refused: await ask("/", ${refused}),
  closed: await ask("/close", ${port}) }));`,
    );
    assert.deepEqual(r, {
      code: 0,
      ok: "HTTP/1.1 204 No Content",
      refused: "error ECONNREFUSED",
      closed: "error ECONNRESET",
    });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});
