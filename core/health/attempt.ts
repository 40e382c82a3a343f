/**
 * Private helpers shared by the built-in checks and the prober: one bounded attempt's signal,
 * and durations.
 *
 * @module
 */
import type { CheckContext, CheckResult } from "../types.ts";

/** The signal of one attempt: aborted at `ctx.timeoutMs` or when `ctx.signal` aborts. */
export interface Attempt {
  signal: AbortSignal;
  /** Whether the attempt ran out of time (rather than being cancelled by the caller). */
  timedOut(): boolean;
  /** `Timed out after N ms` or `Cancelled`. */
  abortMessage(): string;
  /** Clears the timer and detaches from `ctx.signal`; call it in `finally`. */
  dispose(): void;
  /** This attempt's result, timed from `startAttempt`. */
  result(healthy: boolean, message: string): CheckResult;
}

/** A reason whose `name` is `TimeoutError`, as `AbortSignal.timeout()` uses. */
export function timeoutReason(ms: number): DOMException {
  return new DOMException(`Timed out after ${ms} ms`, "TimeoutError");
}

/** Whether an abort reason means "out of time". */
export function isTimeoutReason(reason: unknown): boolean {
  return (reason as { name?: unknown } | null)?.name === "TimeoutError";
}

/**
 * Bounds one check attempt by its own timer too, so a check called directly (without the
 * prober) still stops at `ctx.timeoutMs`.
 */
export function startAttempt(ctx: Pick<CheckContext, "signal" | "timeoutMs">): Attempt {
  const start = performance.now();
  const controller = new AbortController();
  const onAbort = () => controller.abort(ctx.signal.reason);
  const timer = setTimeout(() => controller.abort(timeoutReason(ctx.timeoutMs)), ctx.timeoutMs);
  if (ctx.signal.aborted) onAbort();
  else ctx.signal.addEventListener("abort", onAbort, { once: true });
  const timedOut = () => controller.signal.aborted && isTimeoutReason(controller.signal.reason);
  return {
    signal: controller.signal,
    timedOut,
    abortMessage: () => (timedOut() ? `Timed out after ${ctx.timeoutMs} ms` : "Cancelled"),
    dispose() {
      clearTimeout(timer);
      ctx.signal.removeEventListener("abort", onAbort);
    },
    result: (healthy, message) => ({ healthy, message, durationMs: since(start) }),
  };
}

/** Milliseconds since `start` (a `performance.now()` value), to 0.01 ms. */
export function since(start: number): number {
  return Math.round((performance.now() - start) * 100) / 100;
}

/** The message of anything thrown, for a one-line result. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The `code` of a Node system error (`ECONNREFUSED` ...), if any. */
export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}
