/**
 * The restart policy as pure functions: how long to wait before the next restart, and whether
 * to give up. The first restart after a crash is immediate (a one-off crash costs no downtime);
 * later ones in a row back off exponentially from `restart_delay`, capped at
 * `restart_delay_max`, with ±10 % jitter so a fleet of crashing services does not restart in
 * lock step. A service that ran for `restart_window` seconds has recovered: its streak resets.
 *
 * @module
 */
import type { StartupConfig } from "../types.ts";

/** Milliseconds to wait before restart number `streak` (1-based) of a crash streak. */
export function restartDelayMs(
  streak: number,
  startup: Pick<StartupConfig, "restart_delay" | "restart_delay_max">,
  random: () => number = Math.random,
): number {
  if (streak <= 1) return 0;
  const base = Math.min(startup.restart_delay * 2 ** (streak - 2), startup.restart_delay_max) *
    1000;
  return Math.round(base * (0.9 + 0.2 * random()));
}

/** The streak after a crash of a service that ran `uptimeMs` since its last start. */
export function nextStreak(
  streak: number,
  uptimeMs: number,
  startup: Pick<StartupConfig, "restart_window">,
): number {
  return uptimeMs >= startup.restart_window * 1000 ? 1 : streak + 1;
}
