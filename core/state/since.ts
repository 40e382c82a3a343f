/**
 * `--since` of `logs` and `events`: a duration back from now or an ISO time. A module of its own
 * (it imports nothing but the error), so option parsing needs no more of the library.
 *
 * @module
 */
import { UsageError } from "../errors.ts";

const UNITS: Record<string, number> = { s: 1e3, m: 60e3, h: 3600e3, d: 86_400e3, w: 604_800e3 };

/**
 * `--since`: a duration back from `now` (`30s`, `10m`, `1h`, `2d`, `1w`, or combined: `1h30m`)
 * or an ISO time (`2026-12-02T03:04:05Z`, `2026-12-02`); ms since the epoch. A usage error
 * otherwise.
 */
export function parseSince(text: string, now = Date.now()): number {
  const t = text.trim();
  if (/^(\d+[smhdw])+$/.test(t)) {
    let ms = 0;
    for (const m of t.matchAll(/(\d+)([smhdw])/g)) ms += Number(m[1]) * UNITS[m[2]];
    return now - ms;
  }
  const at = /^\d{4}-\d{2}-\d{2}/.test(t) ? Date.parse(t) : NaN;
  if (Number.isNaN(at)) {
    throw new UsageError(
      `Invalid since ${
        JSON.stringify(text)
      }: expected a duration (30s, 10m, 1h, 2d) or an ISO time`,
    );
  }
  return at;
}
