/**
 * The `tcp` health check: one connect, healthy when the port accepts it.
 *
 * ```toml
 * [services.coredns.health_check.tcp]
 * host = "localhost"
 * port = 5353
 * ```
 *
 * `localhost` (or any name with IPv4 and IPv6 addresses) is tried on every address at once
 * (happy eyeballs), so a service that listens on 127.0.0.1 only is found without a slow fallback.
 *
 * @module
 */
import { connect } from "node:net";
import { z } from "zod";
import { defineCheck, isLocalHost } from "../plugin.ts";
import type { CheckContext, CheckResult } from "../core/types.ts";
import { errorCode, errorMessage, startAttempt } from "../core/health/attempt.ts";

const config = z.strictObject({
  /** Host name or address to connect to. */
  host: z.string().min(1).default("localhost"),
  /** TCP port. */
  port: z.number().int().min(1).max(65535),
});

/** `[services.X.health_check.tcp]` after defaults. */
export type TcpCheckConfig = z.output<typeof config>;

async function run(cfg: TcpCheckConfig, ctx: CheckContext): Promise<CheckResult> {
  const attempt = startAttempt(ctx);
  const target = `${cfg.host}:${cfg.port}`;
  try {
    await connectOnce(cfg.host, cfg.port, attempt.signal);
    return attempt.result(true, `TCP connect to ${target} succeeded`);
  } catch (error) {
    const why = attempt.signal.aborted
      ? attempt.timedOut() ? `timed out after ${ctx.timeoutMs} ms` : "cancelled"
      : errorCode(error) ?? errorMessage(error);
    return attempt.result(false, `TCP connect to ${target} failed: ${why}`);
  } finally {
    attempt.dispose();
  }
}

/**
 * Connects, then closes at once; settles once the socket is closed, so nothing outlives the
 * attempt. Rejects on error or when `signal` aborts.
 */
function connectOnce(host: string, port: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const socket = connect({ host, port, autoSelectFamily: true });
    let outcome: { error?: unknown } | undefined;
    const finish = (error?: unknown) => {
      if (outcome) return;
      outcome = { error };
      signal.removeEventListener("abort", onAbort);
      socket.destroy();
    };
    const onAbort = () => finish(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    socket.once("connect", () => finish());
    socket.on("error", (error) => finish(error));
    socket.once("close", () => {
      signal.removeEventListener("abort", onAbort);
      if (!outcome || outcome.error !== undefined) reject(outcome?.error ?? new Error("closed"));
      else resolve();
    });
  });
}

/** The `tcp` check. */
const check = defineCheck({
  type: "tcp",
  config,
  run,
  localPort: (cfg) => isLocalHost(cfg.host) ? cfg.port : undefined,
});
export default check;
