/**
 * The `http` health check: one request, healthy when the status matches.
 *
 * ```toml
 * [services.orchestrator.health_check.http]
 * endpoint = "http://localhost:9090/health"
 * expected_status = 200
 * method = "GET"
 * headers = { Authorization = "Bearer ${TOKEN}" }
 * ```
 *
 * @module
 */
import { z } from "zod";
import { defineCheck, isLocalHost } from "../plugin.ts";
import type { CheckContext, CheckResult } from "../core/types.ts";
import { errorCode, errorMessage, startAttempt } from "../core/health/attempt.ts";
import { exchange } from "../core/runtime/tcp.ts";

const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"] as const;
const LOWER_METHODS = METHODS.map((m) => m.toLowerCase() as Lowercase<typeof m>);
/** RFC 9110 token: what a header name may contain. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const config = z
  .strictObject({
    /** The URL to request; http or https only. */
    endpoint: z.url({ protocol: /^https?$/ }),
    /** The status that counts as healthy. */
    expected_status: z.number().int().min(100).max(599).default(200),
    /** Request method; lowercase is accepted and normalised. */
    method: z
      .enum([...METHODS, ...LOWER_METHODS])
      .transform((m) => m.toUpperCase())
      .pipe(z.enum(METHODS))
      .default("GET"),
    /** Extra request headers. */
    headers: z
      .record(
        z.string().regex(HEADER_NAME, "Invalid header name"),
        z.string().regex(/^[^\r\n\0]*$/, "Header values cannot contain line breaks"),
      )
      .default(() => ({})),
    /** Request body (not with GET or HEAD). */
    body: z.string().optional(),
  })
  .superRefine((cfg, ctx) => {
    if (cfg.body !== undefined && (cfg.method === "GET" || cfg.method === "HEAD")) {
      ctx.addIssue({
        code: "custom",
        path: ["body"],
        message: `"body" is not allowed with method "${cfg.method}"`,
      });
    }
  });

/** `[services.X.health_check.http]` after defaults. */
export type HttpCheckConfig = z.output<typeof config>;

async function run(cfg: HttpCheckConfig, ctx: CheckContext): Promise<CheckResult> {
  const attempt = startAttempt(ctx);
  const result = attempt.result;
  // The service's driver may own the client for its URLs (a remote endpoint: its CA and token).
  const viaDriver = ctx.http?.(new URL(cfg.endpoint), {
    method: cfg.method,
    headers: cfg.headers,
    body: cfg.body,
    signal: attempt.signal,
  });
  try {
    const status = viaDriver
      ? await viaDriver
      : cfg.endpoint.startsWith("http:")
      ? await statusLine(cfg, attempt.signal)
      : await fetchStatus(cfg, attempt.signal);
    return status === cfg.expected_status
      ? result(true, `HTTP status ${status} matches expected`)
      : result(false, `HTTP status ${status} (expected ${cfg.expected_status})`);
  } catch (error) {
    if (attempt.signal.aborted) return result(false, attempt.abortMessage());
    if (viaDriver) return result(false, errorMessage(error)); // the driver's own words
    return result(false, describeFailure(cfg.endpoint, error, ctx.timeoutMs));
  } finally {
    attempt.dispose();
  }
}

/**
 * Plain `http:`: one HTTP/1.1 request on a fresh connection (`Connection: close`), answered by
 * the status line alone: the rest of the response is never read, the socket is destroyed as
 * soon as the status is known (as HAProxy's `httpchk` does). Under Deno that is half the CPU of
 * the runtime's `fetch` per attempt, which is most of what an idle supervisor spends. Interim
 * `1xx` answers are skipped; redirects are not followed: a 3xx is the answer. It stays while
 * `deno task bench checks` shows it costs at most 0.75 × the CPU of `fetch` per attempt.
 */
function statusLine(cfg: HttpCheckConfig, signal: AbortSignal): Promise<number> {
  const { host, port, bytes } = plainRequest(cfg);
  return exchange(host, port, bytes, signal, statusSoFar);
}

/** Where to connect and the request's bytes, built once per config (a watch reuses them). */
interface PlainRequest {
  host: string;
  port: number;
  bytes: Uint8Array;
}

const requests = new WeakMap<HttpCheckConfig, PlainRequest>();

function plainRequest(cfg: HttpCheckConfig): PlainRequest {
  const known = requests.get(cfg);
  if (known) return known;
  const url = new URL(cfg.endpoint);
  const headers: Record<string, string> = { host: url.host };
  for (const [name, value] of Object.entries(cfg.headers)) headers[name.toLowerCase()] = value;
  if (url.username || url.password) {
    const user = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    headers.authorization ??= `Basic ${btoa(user)}`;
  }
  const body = cfg.body === undefined ? undefined : new TextEncoder().encode(cfg.body);
  if (body) headers["content-length"] = String(body.byteLength);
  headers.connection = "close";
  const head = [
    `${cfg.method} ${url.pathname}${url.search} HTTP/1.1`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    "",
    "",
  ].join("\r\n");
  const request = new TextEncoder().encode(head);
  const made = {
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: Number(url.port || 80),
    bytes: body ? concat(request, body) : request,
  };
  requests.set(cfg, made);
  return made;
}

const concat = (a: Uint8Array, b: Uint8Array) => {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
};

/** The status from the text received so far; throws when it is not HTTP or far too long. */
function statusSoFar(received: string): number | undefined {
  const status = parseStatus(received);
  if (status === "bad") {
    throw new Error(`Not an HTTP response: ${JSON.stringify(received.slice(0, 40))}`);
  }
  if (status === undefined && received.length > 64 * 1024) {
    throw new Error("Response headers too long");
  }
  return status;
}

/** Status lines and header names are ASCII; latin1 never fails on a stray byte. */
/**
 * The final status of a response whose start is `text`: undefined while the status line (or
 * an interim 1xx response) is incomplete, "bad" when it is not HTTP.
 */
export function parseStatus(text: string): number | "bad" | undefined {
  let rest = text;
  while (true) {
    const eol = rest.indexOf("\r\n");
    if (eol < 0) {
      return /^(H(T(T(P(\/(\d(\.(\d)?)?)?)?)?)?)?)?$/.test(rest.slice(0, 8)) ? undefined : "bad";
    }
    const m = /^HTTP\/\d(?:\.\d)? (\d{3})(?: |$)/.exec(rest.slice(0, eol));
    if (!m) return "bad";
    const status = Number(m[1]);
    if (status >= 200 || status === 101) return status;
    const end = rest.indexOf("\r\n\r\n"); // an interim 1xx: its headers end, then the next
    if (end < 0) return undefined;
    rest = rest.slice(end + 4);
  }
}

/** `https:` through the runtime's fetch (TLS needs the real client). */
async function fetchStatus(cfg: HttpCheckConfig, signal: AbortSignal): Promise<number> {
  const res = await fetch(cfg.endpoint, {
    method: cfg.method,
    headers: { ...cfg.headers, connection: "close" },
    body: cfg.body,
    redirect: "manual",
    signal,
  });
  await res.body?.cancel().catch(() => {});
  return res.status;
}

/** The failure's code: Node puts it on `cause.code`, Deno only in the message. */
function failureCode(error: unknown): string | undefined {
  const cause = (error as { cause?: unknown } | null)?.cause;
  const code = errorCode(cause) ?? errorCode(error);
  if (code) return code;
  const text = `${errorMessage(error)} ${errorMessage(cause)}`;
  if (/connection refused/i.test(text)) return "ECONNREFUSED";
  if (/connection reset|connection closed|broken pipe/i.test(text)) return "ECONNRESET";
  if (/dns error|failed to lookup|name or service not known|no address/i.test(text)) {
    return "ENOTFOUND";
  }
  return undefined;
}

/** One line for a failed request: `Connection refused: 127.0.0.1:9090` ... */
function describeFailure(endpoint: string, error: unknown, timeoutMs: number): string {
  const url = new URL(endpoint);
  const target = `${url.hostname}:${url.port || (url.protocol === "https:" ? 443 : 80)}`;
  switch (failureCode(error)) {
    case "ECONNREFUSED":
      return `Connection refused: ${target}`;
    case "ECONNRESET":
    case "UND_ERR_SOCKET":
      return `Connection reset: ${target}`;
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `Cannot resolve host "${url.hostname}"`;
    case "UND_ERR_CONNECT_TIMEOUT":
    case "UND_ERR_HEADERS_TIMEOUT":
    case "UND_ERR_BODY_TIMEOUT":
      return `Timed out after ${timeoutMs} ms`;
    default:
      return `HTTP request to ${endpoint} failed: ${errorMessage(cause(error) ?? error)}`;
  }
}

const cause = (error: unknown) => (error as { cause?: unknown } | null)?.cause;

/** The `http` check. */
const check = defineCheck({
  type: "http",
  config,
  run,
  localPort: (cfg) => {
    const url = new URL(cfg.endpoint);
    if (!isLocalHost(url.hostname)) return undefined;
    return Number(url.port || (url.protocol === "https:" ? 443 : 80));
  },
});
export default check;
