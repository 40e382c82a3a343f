/**
 * The prober runs checks on a schedule. A check makes one attempt; the prober owns the delay,
 * the period, the timeout and the failure threshold (as process-compose's prober does).
 *
 * - {@linkcode probeOnce}: one attempt bounded by `health.timeout`.
 * - {@linkcode waitHealthy}: readiness while a service starts: polls fast (20 ms doubling up to
 *   `health.interval`), stops when the process dies, gives up at a deadline.
 * - {@linkcode watch}: liveness once it runs: one attempt per `health.interval`, unhealthy after
 *   `health.retries` consecutive failures.
 *
 * ```ts
 * import http from "../../checks/http.ts";
 * import { waitHealthy } from "./prober.ts";
 *
 * const health = { type: "http", interval: 10, retries: 3, timeout: 5 };
 * const cfg = http.config.parse({ endpoint: "http://127.0.0.1:9090/health" });
 * const { healthy, result } = await waitHealthy(
 *   { check: http, cfg, health, service: "orchestrator" },
 *   { deadlineMs: 30_000 },
 * );
 * console.log(healthy, result.message);
 * ```
 *
 * @module
 */
import process from "node:process";
import type {
  Check,
  CheckResult,
  Driver,
  DriverContext,
  HealthCheckConfig,
  HttpRequester,
  Service,
} from "../types.ts";
import { beat, pause } from "../sleep.ts";
import { errorMessage, isTimeoutReason, since, timeoutReason } from "./attempt.ts";

/** What to probe: a check, its validated sub-table and the service's `[health_check]` table. */
export interface ProbeTarget {
  // deno-lint-ignore no-explicit-any
  check: Check<any>;
  /** The validated `[services.X.health_check.<type>]` table. */
  cfg: unknown;
  health: HealthCheckConfig;
  service: string;
  /** Environment for the check (default: `process.env`). */
  env?: Record<string, string | undefined>;
  /** The service's driver's HTTP client (`Driver.checkHttp`), for its own URLs. */
  http?: HttpRequester;
}

/**
 * The target of `svc`'s own health check: its table, and its driver's HTTP client for the
 * service's own URLs when the driver has one (`Driver.checkHttp`: a remote endpoint's TLS and
 * token).
 */
export function probeTargetOf(
  svc: Service,
  // deno-lint-ignore no-explicit-any
  check: Check<any>,
  env: Record<string, string | undefined>,
  driver?: Pick<Driver, "checkHttp">,
  ctx?: DriverContext,
): ProbeTarget {
  const http = ctx ? driver?.checkHttp?.(svc, ctx) : undefined;
  return {
    check,
    cfg: svc.health_check[svc.health_check.type],
    health: svc.health_check,
    service: svc.name,
    env,
    ...(http ? { http } : {}),
  };
}

/** Options of {@linkcode waitHealthy}. */
export interface WaitHealthyOptions {
  /** Milliseconds from the call until giving up. */
  deadlineMs: number;
  signal?: AbortSignal;
  /** Pause after the first failed attempt; doubles up to `maxDelayMs` (default 20). */
  initialDelayMs?: number;
  /** Longest pause between attempts (default `health.interval`). */
  maxDelayMs?: number;
  /** Called after every attempt with its result and its 1-based number. */
  onAttempt?: (result: CheckResult, attempt: number) => void;
  /** Polled while waiting; `false` (the process died) ends the wait at once. */
  isAlive?: () => boolean | Promise<boolean>;
}

/** The outcome of {@linkcode waitHealthy}. */
export interface WaitHealthyResult {
  healthy: boolean;
  /** The last attempt's result (or why the wait ended early). */
  result: CheckResult;
  attempts: number;
  elapsedMs: number;
}

/** State passed to {@linkcode watch}'s `onResult`. */
export interface WatchState {
  consecutiveFailures: number;
  /** True after `health.retries` consecutive failures, false again after a success. */
  unhealthy: boolean;
}

/** Options of {@linkcode watch}. */
export interface WatchOptions {
  signal: AbortSignal;
  onResult: (result: CheckResult, state: WatchState) => void;
}

/** How long a check that ignores its signal gets to return after the timeout. */
const GRACE_MS = 250;
/** How often `isAlive` is polled during {@linkcode waitHealthy}. */
const ALIVE_POLL_MS = 50;

/** One attempt, bounded by `health.timeout` seconds. Never throws for an unhealthy target. */
export function probeOnce(
  target: ProbeTarget,
  opts: { signal?: AbortSignal } = {},
): Promise<CheckResult> {
  return attempt(target, Math.max(1, Math.round(target.health.timeout * 1000)), opts.signal);
}

/**
 * Polls until the target is healthy: the first attempt at once, then after 20 ms, 40 ms ...
 * up to `health.interval`. Each attempt is bounded by `min(timeout, time left)`. Ends with
 * `healthy: false` when `isAlive()` says the process died, when `signal` aborts, or at the
 * deadline (the last attempt runs shortly before it).
 */
export async function waitHealthy(
  target: ProbeTarget,
  opts: WaitHealthyOptions,
): Promise<WaitHealthyResult> {
  const start = performance.now();
  const timeoutMs = target.health.timeout * 1000;
  const maxDelay = Math.max(1, opts.maxDelayMs ?? target.health.interval * 1000);
  const stop = new AbortController(); // the caller aborted or the process died
  const onAbort = () => stop.abort(opts.signal?.reason);
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener("abort", onAbort, { once: true });
  const liveness = opts.isAlive ? pollAlive(opts.isAlive, stop) : undefined;
  const left = () => opts.deadlineMs - (performance.now() - start);
  let delay = Math.max(1, opts.initialDelayMs ?? 20);
  let attempts = 0;
  let last: CheckResult | undefined;
  let died = false;
  try {
    while (!stop.signal.aborted) {
      attempts++;
      const budget = Math.max(1, Math.round(Math.min(timeoutMs, left())));
      const result = await attempt(target, budget, stop.signal);
      if (stop.signal.aborted) break; // an interrupted attempt says nothing about the service
      last = result;
      opts.onAttempt?.(last, attempts);
      if (last.healthy) break;
      // Schedule the next attempt so that a final one still fits before the deadline.
      const slice = Math.min(timeoutMs, Math.max(20, delay / 4));
      const wait = Math.min(delay, left() - slice);
      if (wait < 0) break;
      // On the shared beat of `delay` when the deadline allows: everything starting at once
      // polls in one wake-up every 10 ms instead of one each (the wake-ups, not the checks,
      // were most of a bring-up's CPU), and a poll comes at most `delay` after the last one.
      await (wait === delay ? beat(delay, stop.signal) : pause(wait, stop.signal));
      delay = Math.min(delay * 2, maxDelay);
    }
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
    stop.abort();
    died = (await liveness) === "died";
  }
  const elapsedMs = since(start);
  if (last?.healthy) return { healthy: true, result: last, attempts, elapsedMs };
  let result = last ?? { healthy: false, message: "Cancelled", durationMs: 0 };
  if (died) {
    result = {
      healthy: false,
      message: `Process exited before it became healthy${
        last ? ` (last check: ${last.message})` : ""
      }`,
      durationMs: last?.durationMs ?? 0,
    };
  }
  return { healthy: false, result, attempts, elapsedMs };
}

/**
 * Liveness loop: one attempt at once, then one on every beat of a clock shared by all watches
 * with the same `health.interval` (so the second attempt may come sooner than one interval),
 * reporting each result with the failure count. Returns when `signal` aborts.
 */
export async function watch(target: ProbeTarget, opts: WatchOptions): Promise<void> {
  const periodMs = target.health.interval * 1000;
  const threshold = Math.max(1, target.health.retries);
  const state: WatchState = { consecutiveFailures: 0, unhealthy: false };
  while (!opts.signal.aborted) {
    const result = await probeOnce(target, { signal: opts.signal });
    if (opts.signal.aborted) break;
    if (result.healthy) {
      state.consecutiveFailures = 0;
      state.unhealthy = false;
    } else {
      state.consecutiveFailures++;
      if (state.consecutiveFailures >= threshold) state.unhealthy = true;
    }
    opts.onResult(result, { ...state });
    await beat(periodMs, opts.signal);
  }
}

/** Runs the check once within `budgetMs`; a thrown error or a hung check becomes a result. */
async function attempt(
  target: ProbeTarget,
  budgetMs: number,
  signal?: AbortSignal,
): Promise<CheckResult> {
  const start = performance.now();
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal?.reason);
  if (signal?.aborted) onAbort();
  else signal?.addEventListener("abort", onAbort, { once: true });
  const timer = setTimeout(() => controller.abort(timeoutReason(budgetMs)), budgetMs);
  let guard: ReturnType<typeof setTimeout> | undefined;
  // If the check ignores its signal, stop waiting for it GRACE_MS after the abort.
  const hung = new Promise<CheckResult>((resolve) => {
    const onStop = () => {
      guard = setTimeout(() => {
        const reason = controller.signal.reason;
        const message = isTimeoutReason(reason) ? errorMessage(reason) : "Cancelled";
        resolve({ healthy: false, message, durationMs: since(start) });
      }, GRACE_MS);
    };
    if (controller.signal.aborted) onStop();
    else controller.signal.addEventListener("abort", onStop, { once: true });
  });
  const ctx = {
    signal: controller.signal,
    timeoutMs: budgetMs,
    service: target.service,
    env: target.env ?? process.env,
    ...(target.http ? { http: target.http } : {}),
  };
  const running = (async () => {
    try {
      return await target.check.run(target.cfg, ctx);
    } catch (error) {
      return {
        healthy: false,
        message: `Check "${target.check.type}" failed: ${errorMessage(error)}`,
        durationMs: since(start),
      };
    }
  })();
  try {
    return await Promise.race([running, hung]);
  } finally {
    clearTimeout(timer);
    clearTimeout(guard);
    signal?.removeEventListener("abort", onAbort);
  }
}

/** Polls `isAlive` until it says no (→ aborts `stop`, resolves "died") or `stop` aborts. */
async function pollAlive(
  isAlive: () => boolean | Promise<boolean>,
  stop: AbortController,
): Promise<"died" | "stopped"> {
  while (!stop.signal.aborted) {
    let alive: boolean;
    try {
      alive = await isAlive();
    } catch {
      alive = true; // a failing probe of the process is not proof of its death
    }
    if (!alive) {
      if (stop.signal.aborted) return "stopped";
      stop.abort(new Error("Process exited"));
      return "died";
    }
    await pause(ALIVE_POLL_MS, stop.signal);
  }
  return "stopped";
}
