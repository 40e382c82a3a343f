/**
 * Continuous health monitoring (`services monitor`): one check attempt per service every
 * `interval` seconds, reported as it happens, until the signal aborts.
 *
 * @module
 */
import { pause } from "../sleep.ts";
import type { HealthReport, Platform } from "../platform.ts";

export interface MonitorOptions {
  /** Seconds between checks of one service. */
  interval: number;
  signal: AbortSignal;
  onResult: (health: HealthReport, at: Date) => void;
}

/** Check `names` every `interval` seconds until `signal` aborts; checks of services run in parallel. */
export async function monitor(p: Platform, names: string[], opts: MonitorOptions): Promise<void> {
  const { signal } = opts;
  const loop = async (name: string) => {
    while (!signal.aborted) {
      const started = Date.now();
      const health = await p.health(name);
      if (signal.aborted) return;
      opts.onResult(health, new Date());
      const wait = Math.max(0, opts.interval * 1000 - (Date.now() - started));
      await pause(wait, signal);
    }
  };
  await Promise.all(names.map(loop));
}
