/**
 * The supervisor's wire protocol: one JSON request and one JSON reply per connection, each a
 * single line, over a unix socket in the state directory (owner-only permissions).
 *
 * @module
 */
import { lstatSync, renameSync, rmSync } from "node:fs";
import { ExitCode, ProvisioningError } from "../errors.ts";
import { createConnection, createServer, type Server } from "node:net";
import { type BunConnect, bunExchange } from "./tcp.ts";

/**
 * Refuse a socket that is not this user's: whoever listens there would receive our requests
 * (and the environment a start sends). Absent: fine (nothing listens).
 */
function checkOwner(socket: string): void {
  let st;
  try {
    st = lstatSync(socket);
  } catch {
    return;
  }
  const uid = process.getuid?.();
  const why = !st.isSocket()
    ? "it is not a socket"
    : uid !== undefined && st.uid !== uid
    ? `it is owned by uid ${st.uid}, not by this user (uid ${uid})`
    : (st.mode & 0o077)
    ? `others may use it (mode ${(st.mode & 0o777).toString(8).padStart(4, "0")})`
    : undefined;
  if (why) {
    throw new ProvisioningError(`Refusing to talk to the supervisor at ${socket}: ${why}`, {
      exitCode: ExitCode.preflight,
      hints: [`Remove it if it is not yours: rm ${socket}`],
    });
  }
}

/**
 * Send one request; undefined when nothing listens (no supervisor), or when it closes the
 * connection without a reply (it is exiting).
 */
export function request<T = Record<string, unknown>>(
  socket: string,
  msg: Record<string, unknown>,
  timeoutMs = 30_000,
): Promise<T | undefined> {
  try {
    checkOwner(socket);
  } catch (error) {
    return Promise.reject(error);
  }
  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  if (deno) return requestDeno<T>(deno, socket, msg, timeoutMs);
  const bun = (globalThis as { Bun?: BunConnect }).Bun;
  if (bun) return requestBun<T>(bun, socket, msg, timeoutMs);
  return new Promise((resolve, reject) => {
    const conn = createConnection(socket);
    let buf = "";
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`Supervisor did not answer "${msg.op}" within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.setEncoding("utf8"); // a character cut across two reads stays whole
    conn.on("connect", () => conn.write(JSON.stringify(msg) + "\n"));
    conn.on("data", (d) => (buf += d));
    conn.on("end", () => {
      clearTimeout(timer);
      try {
        resolve(parseReply<T>(buf, msg));
      } catch (e) {
        reject(e);
      }
    });
    conn.on("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (["ENOENT", "ECONNREFUSED", "ECONNRESET", "EPIPE"].includes(e.code ?? "")) {
        resolve(undefined);
      } else reject(e);
    });
  });
}

/**
 * Under Deno, its own unix socket: a start asks the supervisor once per service, on the
 * critical path of every bring-up, and `node:net` costs several times the CPU there.
 */
async function requestDeno<T>(
  deno: typeof Deno,
  socket: string,
  msg: Record<string, unknown>,
  timeoutMs: number,
): Promise<T | undefined> {
  let conn: Deno.UnixConn;
  try {
    conn = await deno.connect({ transport: "unix", path: socket });
  } catch (e) {
    if (e instanceof deno.errors.NotFound || e instanceof deno.errors.ConnectionRefused) {
      return undefined;
    }
    throw e;
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, timeoutMs);
  let buf = "";
  try {
    const out = new TextEncoder().encode(JSON.stringify(msg) + "\n");
    for (let off = 0; off < out.length;) off += await conn.write(out.subarray(off));
    const chunk = new Uint8Array(65536);
    const decoder = new TextDecoder();
    while (true) {
      const n = await conn.read(chunk);
      if (n === null) break;
      buf += decoder.decode(chunk.subarray(0, n), { stream: true });
    }
  } catch (e) {
    if (timedOut) throw new Error(`Supervisor did not answer "${msg.op}" within ${timeoutMs} ms`);
    if (e instanceof deno.errors.ConnectionReset || e instanceof deno.errors.BrokenPipe) {
      return undefined;
    }
    throw e;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer */ }
  }
  return parseReply<T>(buf, msg);
}

/** Under Bun, `Bun.connect` (its `node:net` is a layer over it, slower to load and to use). */
async function requestBun<T>(
  bun: BunConnect,
  socket: string,
  msg: Record<string, unknown>,
  timeoutMs: number,
): Promise<T | undefined> {
  const signal = AbortSignal.timeout(timeoutMs);
  let buf: string;
  try {
    buf = await bunExchange(
      bun,
      { unix: socket },
      new TextEncoder().encode(JSON.stringify(msg) + "\n"),
      signal,
      new TextDecoder(),
      (received, ended) => ended ? received : undefined,
    );
  } catch (e) {
    if (signal.aborted) {
      throw new Error(`Supervisor did not answer "${msg.op}" within ${timeoutMs} ms`);
    }
    const code = (e as NodeJS.ErrnoException).code ?? "";
    if (["ENOENT", "ECONNREFUSED", "ECONNRESET", "EPIPE"].includes(code)) return undefined;
    throw e;
  }
  return parseReply<T>(buf, msg);
}

/** A reply as sent: undefined when empty (the supervisor closed without one: it is exiting). */
function parseReply<T>(buf: string, msg: Record<string, unknown>): T | undefined {
  if (buf === "") return undefined;
  try {
    return JSON.parse(buf) as T;
  } catch {
    throw new Error(`Supervisor sent an unreadable reply to "${msg.op}"`);
  }
}

type Handler = (msg: Record<string, unknown>) => Promise<Record<string, unknown>>;

/** A listening server that can be closed. */
export interface Listener {
  close(): Promise<void>;
}

async function answer(handle: Handler, line: string): Promise<string> {
  try {
    return JSON.stringify(await handle(JSON.parse(line)));
  } catch (e) {
    const err = e as Error & { exitCode?: number };
    return JSON.stringify({ ok: false, error: err.message, exit_code: err.exitCode ?? 1 });
  }
}

/**
 * Serve requests on `socket`; `handle` answers each one (its errors become `{ok: false}`).
 *
 * Under Deno the listener is `Deno.listen`: Deno's `node:net` unix listener is not
 * close-on-exec, so every service the supervisor spawns would inherit it and keep the socket
 * accepting (and hanging clients) after the supervisor dies.
 *
 * Every runtime unlinks a unix listener's path when it closes it (Node and Bun through libuv's
 * pipe close, Deno its own way), whatever is at that path by then: the socket of a successor
 * that took over a home made anew. So each listens on a path of its own and moves it into
 * place: closing ours can never remove another supervisor's socket.
 */
export function serve(socket: string, handle: Handler): Promise<Listener> {
  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  if (deno) return Promise.resolve(serveDeno(deno, socket, handle));
  const server: Server = createServer((conn) => {
    let buf = "";
    conn.setEncoding("utf8"); // a character cut across two reads stays whole
    conn.on("error", () => {});
    conn.on("data", async (d) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl >= 0) conn.end(await answer(handle, buf.slice(0, nl)));
    });
  });
  const own = `${socket}.${process.pid}.listen`;
  rmSync(own, { force: true });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(own, () => {
      try {
        renameSync(own, socket);
      } catch (e) {
        server.close();
        return reject(e);
      }
      resolve({ close: () => new Promise<void>((r) => server.close(() => r())) });
    });
  });
}

function serveDeno(deno: typeof Deno, socket: string, handle: Handler): Listener {
  // A path of our own, moved into place (see `serve`).
  const own = `${socket}.${process.pid}.listen`;
  rmSync(own, { force: true });
  const listener = deno.listen({ transport: "unix", path: own });
  renameSync(own, socket);
  const conns = new Set<Deno.Conn>();
  const serveConn = async (conn: Deno.Conn) => {
    conns.add(conn);
    try {
      let buf = "";
      const chunk = new Uint8Array(65536);
      const decoder = new TextDecoder(); // streaming: a character cut across two reads stays whole
      while (!buf.includes("\n")) {
        const n = await conn.read(chunk);
        if (n === null) return;
        buf += decoder.decode(chunk.subarray(0, n), { stream: true });
      }
      const reply = new TextEncoder().encode(await answer(handle, buf.slice(0, buf.indexOf("\n"))));
      for (let off = 0; off < reply.length;) off += await conn.write(reply.subarray(off));
    } catch {
      // the client went away
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  };
  const loop = (async () => {
    try {
      for await (const conn of listener) serveConn(conn);
    } catch { /* closed */ }
  })();
  return {
    close: async () => {
      listener.close();
      await loop;
    },
  };
}
