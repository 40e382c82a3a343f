/**
 * Text primitives every renderer uses: colours (off for NO_COLOR and non-TTY output), aligned
 * columns, durations and clock times.
 *
 * @module
 */
import { stdoutIsTTY } from "../stdout.ts";

const useColor = () => !process.env.NO_COLOR && stdoutIsTTY();
const paint = (code: number) => (s: string) => useColor() ? `\x1b[${code}m${s}\x1b[0m` : s;
export const bold = paint(1);
export const dim = paint(2);
export const red = paint(31);
export const green = paint(32);
export const yellow = paint(33);

/** Seconds with two decimals: `1.23s`. */
export const secs = (ms: number) => `${(ms / 1000).toFixed(2)}s`;

const pad = (n: number) => String(n).padStart(2, "0");

/** Local wall-clock time: `14:03:07`. */
export const clock = (at: Date) =>
  `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`;

/** Local date and time: `2025-10-06 14:30:00`. */
export const timestamp = (at: Date) =>
  `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} ${clock(at)}`;

/** Plain aligned columns (the spec's `services list`). */
export function columns(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [bold(line(header)), ...rows.map(line)].join("\n");
}
