/**
 * Continuous health monitoring (`services monitor`): one check attempt per service every
 * `interval` seconds, reported as it happens, until the signal aborts.
 *
 * @module
 */
import { pause } from "../sleep.ts";
import type { HealthReport, Platform } from "../platform.ts";

export interface MonitorOptions {
  /** Seconds between rounds of checks. */
  interval: number;
  signal: AbortSignal;
  /**
   * Only report a service whose health state changed since its last report (its first is always
   * reported), as `healthy → unhealthy`.
   */
  changes?: boolean;
  /** A result; `previous` is the service's state at its last check (none on the first). */
  onResult: (health: HealthReport, at: Date, previous?: HealthReport["state"]) => void;
}

/**
 * Check `names` every `interval` seconds until `signal` aborts: each round checks them all in
 * parallel and reports in the order of `names` (a stable order, line after line).
 */
export async function monitor(p: Platform, names: string[], opts: MonitorOptions): Promise<void> {
  const { signal } = opts;
  const last = new Map<string, HealthReport["state"]>();
  while (!signal.aborted) {
    const started = Date.now();
    const round = await Promise.all(names.map((name) => p.health(name)));
    if (signal.aborted) return;
    const at = new Date();
    for (const health of round) {
      const previous = last.get(health.name);
      last.set(health.name, health.state);
      if (opts.changes && previous === health.state) continue;
      opts.onResult(health, at, previous);
    }
    await pause(Math.max(0, opts.interval * 1000 - (Date.now() - started)), signal).catch(() => {});
  }
}
