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
 * undici is imported lazily, on the first attempt, so loading the plugin stays cheap.
 *
 * @module
 */
import { z } from "zod";
import { defineCheck } from "../core/plugin_api.ts";
import type { CheckContext, CheckResult } from "../core/types.ts";
import { errorCode, errorMessage, since, startAttempt } from "./_attempt.ts";

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
      .record(z.string().regex(HEADER_NAME, "Invalid header name"), z.string())
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
  const start = performance.now();
  const attempt = startAttempt(ctx);
  const result = (healthy: boolean, message: string) => ({
    healthy,
    message,
    durationMs: since(start),
  });
  let agent: import("undici").Agent | undefined;
  try {
    const { Agent, request } = await import("undici");
    // A fresh connection per attempt: proves the service still accepts, and closing the agent
    // leaves no keep-alive socket behind.
    const ms = Math.max(1, Math.ceil(ctx.timeoutMs)); // undici wants whole milliseconds
    agent = new Agent({
      connect: { timeout: ms, autoSelectFamily: true },
      headersTimeout: ms,
      bodyTimeout: ms,
    });
    const res = await request(cfg.endpoint, {
      dispatcher: agent,
      method: cfg.method,
      headers: cfg.headers,
      body: cfg.body,
      signal: attempt.signal,
    });
    await res.body.dump({ limit: 64 * 1024 });
    return res.statusCode === cfg.expected_status
      ? result(true, `HTTP status ${res.statusCode} matches expected`)
      : result(false, `HTTP status ${res.statusCode} (expected ${cfg.expected_status})`);
  } catch (error) {
    if (attempt.signal.aborted) return result(false, attempt.abortMessage());
    return result(false, describeFailure(cfg.endpoint, error, ctx.timeoutMs));
  } finally {
    attempt.dispose();
    await agent?.destroy().catch(() => {});
  }
}

/** One line for a failed request: `Connection refused: 127.0.0.1:9090` ... */
function describeFailure(endpoint: string, error: unknown, timeoutMs: number): string {
  const url = new URL(endpoint);
  const target = `${url.hostname}:${url.port || (url.protocol === "https:" ? 443 : 80)}`;
  switch (errorCode(error)) {
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
      return `HTTP request to ${endpoint} failed: ${errorMessage(error)}`;
  }
}

/** The `http` check. */
const check = defineCheck({ type: "http", config, run });
export default check;
