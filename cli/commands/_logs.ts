/**
 * `platform logs` / `services logs [NAME...]`, with `docker compose logs` habits: one name shows
 * that service's lines as they are; none (every service) or several show each line behind its
 * service's name padded to the longest and `|` (`web    | line`), coloured per service on a
 * TTY. Without `--follow` the tails are merged in time order (`mergeLogs`); with it lines print
 * as they come (`mergeLive`). `--timestamps` puts the time a line was written before it,
 * `--since` keeps the lines written since (what that time is: `core/state/log_times.ts`).
 * A service whose logs cannot be read is told on stderr (a JSON `error` with `--json`) and the
 * others are shown; it exits 1.
 *
 * @module
 */
import type { LogLine, Platform, ServiceLogLine } from "../../mod.ts";
import { ExitCode, mergeLive, mergeLogs, parseSince } from "./_lib.ts";
import {
  type CommandResult,
  type Common,
  FLAG_RANGES,
  interruptSignal,
  open,
  type Out,
} from "./_common.ts";
import { stdoutIsTTY } from "../stdout.ts";

/** The flags of `logs`. */
export interface LogsFlags extends Common {
  /** Per service; default 50, or with `since` every line since (up to the flag's maximum). */
  lines?: number;
  follow?: boolean;
  timestamps?: boolean;
  /** Ms since the epoch (`parseSince` of the flag). */
  since?: number;
}

/** `--since`'s parser: a duration back from now or an ISO date/time (else a usage error). */
export const sinceArg = (value: string): number => parseSince(value);

/** `docker compose logs`'s colours (no red: it reads as an error): cyan, yellow, green … */
const PALETTE = [36, 33, 32, 35, 34, 96, 93, 92, 95, 94];

/** As `cli/render/text.ts` decides: colour on a TTY only, never with NO_COLOR (`--no-color`). */
export const useColor = (): boolean => !process.env.NO_COLOR && stdoutIsTTY();

/**
 * The prefix of a line of each of `names`: the name padded to the longest and `| `, in the
 * name's own colour (by its place in `names`) when `color`.
 */
export function linePrefix(names: string[], color: boolean): (name: string) => string {
  const width = Math.max(0, ...names.map((n) => n.length));
  return (name) => {
    const plain = `${name.padEnd(width)} |`;
    const code = PALETTE[Math.max(0, names.indexOf(name)) % PALETTE.length];
    return `${color ? `\x1b[${code}m${plain}\x1b[0m` : plain} `;
  };
}

/** A line as JSON: `{service, time?, line}` (`time` in ISO 8601, UTC, when known). */
function jsonLine(l: ServiceLogLine): Record<string, string> {
  return {
    service: l.service,
    ...(l.time !== undefined ? { time: new Date(l.time).toISOString() } : {}),
    line: l.line,
  };
}

/** The time column of `--timestamps` (blank when the time is not known). */
const stamp = (time?: number) => time === undefined ? " ".repeat(24) : new Date(time).toISOString();

/** `logs NAME...` (every service without a name): see the module doc. */
export async function logs(out: Out, names: string[], o: LogsFlags): Promise<CommandResult> {
  const p = await open(o);
  const wanted = names.length ? [...new Set(names)] : p.services.map((s) => s.name);
  for (const name of wanted) p.service(name); // an unknown name: one line with a hint, exit 2
  const one = names.length === 1;
  const prefix = one ? () => "" : linePrefix(wanted, !o.json && useColor());
  const show = (l: ServiceLogLine) =>
    o.json
      ? JSON.stringify(jsonLine(l))
      : `${prefix(l.service)}${o.timestamps ? `${stamp(l.time)} ` : ""}${l.line}`;
  const lines = o.lines ?? (o.since === undefined ? 50 : FLAG_RANGES["--lines"].max);
  const read = { lines, since: o.since, follow: o.follow };
  const failed: { service: string; error: string }[] = [];
  const tell = (service: string, error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    failed.push({ service, error: message });
    if (o.json && o.follow) out(JSON.stringify({ service, error: message }));
    else if (!o.json) console.error(`❌ ${message}`);
  };
  if (o.follow) {
    const signal = interruptSignal();
    const sources = wanted.map((service) => ({
      service,
      lines: p.logLines(service, { ...read, signal }),
    }));
    // One service: its failure is the command's (one line, its exit code), as before.
    const live = mergeLive(sources, { signal, onError: one ? undefined : tell });
    for await (const l of live) out(show(l));
    return { exitCode: failed.length ? ExitCode.failed : ExitCode.ok };
  }
  const tailOf = async (service: string) => ({ service, lines: await collect(p, service, read) });
  const tails = await Promise.allSettled(wanted.map(tailOf));
  if (one && tails[0].status === "rejected") throw tails[0].reason;
  const got = tails.flatMap((t, i) => {
    if (t.status === "fulfilled") return [t.value];
    tell(wanted[i], t.reason);
    return [];
  });
  const merged = mergeLogs(got);
  if (!o.json) { for (const l of merged) out(show(l)); }
  return {
    doc: { lines: merged.map(jsonLine), ...(failed.length ? { errors: failed } : {}) },
    exitCode: failed.length ? ExitCode.failed : ExitCode.ok,
  };
}

async function collect(
  p: Platform,
  service: string,
  o: { lines: number; since?: number },
): Promise<LogLine[]> {
  const lines: LogLine[] = [];
  for await (const l of p.logLines(service, o)) lines.push(l);
  return lines;
}
