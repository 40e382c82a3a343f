/**
 * The remote driver's one HTTP client: `node:https`/`node:http` requests with our own CA
 * (`ca`), server name (`servername`), verification switch (`rejectUnauthorized`) and client
 * certificate (`cert`/`key`) — the same under Deno and Node (Deno's `fetch` cannot skip
 * verification per request). Every request carries the token of `auth_token_path`, read fresh.
 *
 * Each failure is a {@linkcode RemoteError} with one line of its own: nothing listens
 * (refused), no answer in time, a name that does not resolve, TLS (see `_tls.ts`: unknown CA,
 * expired certificate, wrong name ...), 401/403, 5xx. `permanent` marks what waiting cannot
 * cure (TLS verification, a rejected token, a token file that cannot be used). No message holds
 * the token: it only ever goes into the request's header.
 *
 * @module
 */
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { readFile } from "node:fs/promises";
import { connect as netConnect, isIP, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";
import { ExitCode } from "../../core/errors.ts";
import { explainTls, isTlsFailure } from "./_tls.ts";
import { isLoopback, type Target } from "./_target.ts";
import { readToken, TokenError } from "./_token.ts";

/** How a request failed. */
export type FailureKind =
  | "refused"
  | "timeout"
  | "dns"
  | "unreachable"
  | "tls"
  | "auth"
  | "server"
  | "network"
  | "config"
  | "cancelled";

/** A failed request: one line (`<endpoint>: <what>`), and whether waiting could cure it. */
export class RemoteError extends Error {
  override name = "RemoteError";
  /** The CLI exit code of a start that ends with it (3: a pre-flight kind of problem). */
  readonly exitCode: number;
  constructor(
    message: string,
    readonly kind: FailureKind,
    readonly permanent: boolean,
    readonly hint?: string,
  ) {
    super(message);
    this.exitCode = kind === "config" ? ExitCode.preflight : ExitCode.failed;
  }
}

/** An answer below 500 that is not 401/403. */
export interface Answer {
  status: number;
  statusText: string;
  ms: number;
}

/** What a request needs besides the target. */
export interface RequestOptions {
  signal?: AbortSignal;
  /** Milliseconds this request may take (default: the target's `timeout`). */
  timeoutMs?: number;
}

/** The TLS options of `t`, its files read now (a renewed CA or client certificate is used at once). */
export async function tlsOptions(t: Target): Promise<ConnectionOptions> {
  const read = async (file: string | undefined, key: string) => {
    if (file === undefined) return undefined;
    try {
      return await readFile(file, "utf8");
    } catch (e) {
      const code = (e as { code?: string }).code ?? String(e);
      throw new RemoteError(`Cannot read ${key} ${file}: ${code}`, "config", true);
    }
  };
  const [ca, cert, key] = await Promise.all([
    read(t.caFile, "ca_file"),
    read(t.certFile, "client_cert"),
    read(t.keyFile, "client_key"),
  ]);
  return {
    ...(ca !== undefined ? { ca } : {}),
    ...(cert !== undefined ? { cert, key } : {}),
    // Explicit, so Node does not take it from the Host header; "" for an IP: no SNI, and the
    // certificate is checked against the IP (as both runtimes do by default).
    servername: t.serverName ?? (isIP(t.host) ? "" : t.host),
    rejectUnauthorized: !t.insecure,
  };
}

/** The request headers of `t`: its own, `Host`, and the token (read now) when it has one. */
async function headersOf(t: Target): Promise<Record<string, string>> {
  const headers: Record<string, string> = { ...t.headers, Host: t.hostHeader };
  if (t.tokenPath === undefined) return headers;
  if (!t.https && !isLoopback(t.host)) throw plainHttpToken(t);
  try {
    headers.Authorization = `Bearer ${await readToken(t.tokenPath)}`;
  } catch (e) {
    if (e instanceof TokenError) throw new RemoteError(e.message, "config", true, e.hint);
    throw e;
  }
  return headers;
}

/** The refusal to send a token in clear text over the network. */
export function plainHttpToken(t: Target): RemoteError {
  return new RemoteError(
    `Refusing to send the token of auth_token_path over plain http to ${t.host} (only a loopback host may get it unencrypted)`,
    "config",
    true,
    `Use an https:// endpoint for ${t.service}`,
  );
}

/**
 * `GET` the endpoint: resolves with an answer below 500 other than 401/403; throws a
 * {@linkcode RemoteError} otherwise. The body is never read.
 */
export async function get(t: Target, opts: RequestOptions = {}): Promise<Answer> {
  const started = performance.now();
  const answer = await request(t, { method: "GET", path: t.path }, opts);
  const ms = Math.round(performance.now() - started);
  const line = `${answer.status}${answer.statusText ? ` ${answer.statusText}` : ""}`;
  if (answer.status === 401) {
    throw new RemoteError(
      t.tokenPath === undefined
        ? `${t.where}: ${line}: it wants a token (set auth_token_path)`
        : `${t.where}: ${line}: the token of auth_token_path was rejected`,
      "auth",
      true,
    );
  }
  if (answer.status === 403) {
    throw new RemoteError(
      `${t.where}: ${line}: ${
        t.tokenPath === undefined ? "access denied" : "the token of auth_token_path is not allowed"
      }`,
      "auth",
      true,
    );
  }
  if (answer.status >= 500) throw new RemoteError(`${t.where}: answered ${line}`, "server", false);
  return { ...answer, ms };
}

/**
 * One request to the target's host with its TLS settings, extra headers and token (ours win over
 * `init.headers`: the token and Host are the target's): its status, the body never read. Throws a
 * {@linkcode RemoteError} when no answer comes.
 */
export async function request(
  t: Target,
  init: { method: string; path: string; headers?: Record<string, string>; body?: string },
  opts: RequestOptions = {},
): Promise<{ status: number; statusText: string }> {
  const own = await headersOf(t);
  const taken = new Set(Object.keys(own).map((k) => k.toLowerCase()));
  const given = Object.entries(init.headers ?? {}).filter(([k]) => !taken.has(k.toLowerCase()));
  const headers = { ...Object.fromEntries(given), ...own };
  const tls = t.https ? await tlsOptions(t) : {};
  const timeoutMs = opts.timeoutMs ?? t.timeoutMs;
  const send = t.https ? httpsRequest : httpRequest;
  return await new Promise<{ status: number; statusText: string }>((resolve, reject) => {
    const req = send({
      host: t.host,
      port: t.port,
      path: init.path,
      method: init.method,
      headers,
      agent: false,
      ...tls,
    }, (res) => {
      resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? "" });
      res.destroy();
      req.destroy();
    });
    bound(req, timeoutMs, opts.signal, reject);
    req.on("error", reject);
    req.end(init.body);
  }).catch((e) => failed(t, e, timeoutMs));
}

/**
 * Connect (TCP, then the TLS handshake verified as a request's would be) without sending a
 * request; resolves with the milliseconds it took. For services whose own health check says
 * whether they are healthy: this only says the endpoint is there and trusted.
 */
export async function handshake(t: Target, opts: RequestOptions = {}): Promise<number> {
  const tls = t.https ? await tlsOptions(t) : undefined;
  const timeoutMs = opts.timeoutMs ?? t.timeoutMs;
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const socket: Socket = tls
      ? tlsConnect({ host: t.host, port: t.port, ...tls }, () => resolve())
      : netConnect({ host: t.host, port: t.port }, () => resolve());
    bound(socket, timeoutMs, opts.signal, reject);
    socket.on("error", reject);
  }).catch((e) => failed(t, e, timeoutMs));
  return Math.round(performance.now() - started);
}

class Timeout extends Error {}
class Cancelled extends Error {}

/**
 * End `handle` at the deadline or when `signal` aborts, rejecting with a marker, and destroy it
 * once settled, so nothing outlives the call.
 */
function bound(
  handle: { destroy(e?: Error): unknown; once(ev: "close", f: () => void): unknown },
  ms: number,
  signal: AbortSignal | undefined,
  reject: (e: Error) => void,
): void {
  const timer = setTimeout(() => {
    reject(new Timeout());
    handle.destroy();
  }, ms);
  const onAbort = () => {
    reject(new Cancelled());
    handle.destroy();
  };
  if (signal?.aborted) onAbort();
  else signal?.addEventListener("abort", onAbort, { once: true });
  handle.once("close", () => {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  });
}

/** A failed connection or request as a {@linkcode RemoteError} (rethrown). */
async function failed(t: Target, e: unknown, timeoutMs: number): Promise<never> {
  if (e instanceof RemoteError) throw e;
  if (e instanceof Cancelled) throw new RemoteError(`${t.where}: cancelled`, "cancelled", true);
  if (e instanceof Timeout) {
    throw new RemoteError(`${t.where}: no answer within ${secs(timeoutMs)}`, "timeout", false);
  }
  const err = e as Error & { code?: string };
  const code = err.code ?? "";
  const at = `${t.host.includes(":") ? `[${t.host}]` : t.host}:${t.port}`;
  if (code === "ECONNREFUSED") {
    throw new RemoteError(
      `${t.where}: connection refused (nothing listens on ${at}: is it down?)`,
      "refused",
      false,
    );
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EAI_NONAME") {
    throw new RemoteError(`${t.where}: host ${t.host} does not resolve`, "dns", false);
  }
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH" || code === "EHOSTDOWN") {
    throw new RemoteError(
      `${t.where}: host ${t.host} is unreachable (${code})`,
      "unreachable",
      false,
    );
  }
  if (code === "ETIMEDOUT") {
    throw new RemoteError(`${t.where}: no answer within ${secs(timeoutMs)}`, "timeout", false);
  }
  if (t.https && isTlsFailure(err)) {
    const what = await explainTls(t, err, await tlsOptions(t).catch(() => ({})));
    throw new RemoteError(`${t.where}: ${what}`, "tls", true);
  }
  if (code === "ECONNRESET" || code === "EPIPE") {
    throw new RemoteError(`${t.where}: connection reset (${code})`, "network", false);
  }
  if (t.https && /ssl|tls|handshake|wrong version/i.test(`${code} ${err.message}`)) {
    throw new RemoteError(
      `${t.where}: TLS handshake failed (${code || err.message}): is it an https port?`,
      "tls",
      false,
    );
  }
  throw new RemoteError(`${t.where}: ${code || err.message}`, "network", false);
}

const secs = (ms: number) => `${Math.round(ms / 100) / 10}s`;

/** An answer of another host's agent: status and JSON body (`undefined` when none). */
export interface AgentAnswer {
  status: number;
  // deno-lint-ignore no-explicit-any
  body: any;
}

/** A request to another host's provisioning agent. */
export interface AgentCall extends RequestOptions {
  method: "GET" | "POST";
  /** Path below the endpoint's own path (`/v1/services/web`), query included. */
  path: string;
  body?: unknown;
  /**
   * Read the answer as server-sent events: each event goes to `onEvent` as it comes, and the
   * call resolves when the stream ends (the timeout then bounds the wait for each event).
   */
  onEvent?: (event: string, data: string) => void;
}

/**
 * One exchange with another host's agent (`agent = true`): a JSON answer of any status (the
 * caller reads the agent's `{error}`), or a stream of events. 401/403 and the connection's
 * failures throw a {@linkcode RemoteError} as for a plain endpoint.
 */
export async function callAgent(t: Target, c: AgentCall): Promise<AgentAnswer> {
  const headers = await headersOf(t);
  const tls = t.https ? await tlsOptions(t) : {};
  const timeoutMs = c.timeoutMs ?? t.timeoutMs;
  const base = t.path.replace(/\/+$/, "").replace(/\?.*$/, "");
  const body = c.body === undefined ? undefined : JSON.stringify(c.body);
  const send = t.https ? httpsRequest : httpRequest;
  const answer = await new Promise<AgentAnswer>((resolve, reject) => {
    const req = send({
      host: t.host,
      port: t.port,
      path: `${base}${c.path}`,
      method: c.method,
      headers: {
        ...headers,
        Accept: c.onEvent ? "text/event-stream" : "application/json",
        ...(body !== undefined
          ? { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) }
          : {}),
      },
      agent: false,
      ...tls,
    }, (res) => {
      const status = res.statusCode ?? 0;
      res.setEncoding("utf8");
      const streaming = c.onEvent && /text\/event-stream/.test(res.headers["content-type"] ?? "");
      let text = "";
      let buf = "";
      res.on("data", (d: string) => {
        if (!streaming) return void (text += d);
        rearm(); // the timeout bounds the silence between events, not the whole stream
        buf += d;
        for (let i; (i = buf.indexOf("\n\n")) !== -1;) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = "message";
          const data: string[] = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) event = line.slice(7);
            else if (line.startsWith("data: ")) data.push(line.slice(6));
          }
          if (data.length) c.onEvent!(event, data.join("\n"));
        }
      });
      res.on("end", () => {
        let parsed: unknown;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch { /* not JSON: kept undefined */ }
        resolve({ status, body: parsed });
      });
      res.on("error", reject);
      res.on("aborted", () => reject(new Error("ECONNRESET")));
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const rearm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        reject(new Timeout());
        req.destroy();
      }, timeoutMs);
    };
    rearm();
    const onAbort = () => {
      reject(new Cancelled());
      req.destroy();
    };
    if (c.signal?.aborted) onAbort();
    else c.signal?.addEventListener("abort", onAbort, { once: true });
    req.once("close", () => {
      clearTimeout(timer);
      c.signal?.removeEventListener("abort", onAbort);
    });
    req.on("error", reject);
    req.end(body);
  }).catch((e) => failed(t, e, timeoutMs));
  if (answer.status === 401) {
    throw new RemoteError(
      t.tokenPath === undefined
        ? `${t.where}: 401: the agent wants a token (set auth_token_path)`
        : `${t.where}: 401: the agent rejected the token of auth_token_path`,
      "auth",
      true,
    );
  }
  if (answer.status === 403) {
    throw new RemoteError(
      `${t.where}: 403: ${answer.body?.error?.message ?? "forbidden"}`,
      "auth",
      true,
    );
  }
  return answer;
}
