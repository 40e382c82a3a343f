/**
 * What every command module shares: the options every command takes, the shape of an action
 * and of its result, and small argument helpers.
 *
 * @module
 */
import type { Command } from "commander";
import { UsageError } from "./_lib.ts";
import { importLib } from "./_import_lib.ts";
import type { Platform } from "../../mod.ts";

/** The options every command takes. */
export interface Common {
  config?: string;
  json?: boolean;
  /** Only failures and the summary (lifecycle progress). */
  quiet?: boolean;
}

/**
 * `start`'s flags: `--recreate` restarts what already runs and `--skip-preflight` skips the
 * checks, under both groups; `--force` keeps the spec's meaning in each (`platform start --force`
 * recreates, `services start --force` skips pre-flight).
 */
export interface StartFlags extends Common {
  force?: boolean;
  recreate?: boolean;
  skipPreflight?: boolean;
  dryRun?: boolean;
}

/**
 * What an action hands back for the entry to print: `doc` as JSON with `--json`, `text`
 * otherwise (a command with only `text` prints it either way); `exitCode` defaults to 0.
 */
export interface CommandResult {
  doc?: unknown;
  text?: string;
  exitCode?: number;
}

/** Print one line now: streaming commands (`logs --follow`, `monitor`, lifecycle progress). */
export type Out = (line: string) => void;

/** A command's action: `out`, then the arguments and options as commander passes them. */
export type Action<A extends unknown[]> = (out: Out, ...args: A) => Promise<CommandResult>;

/** Turns an action into a commander handler. The entry provides the one runner, which prints. */
export type Run = <A extends unknown[]>(action: Action<A>) => (...args: A) => Promise<void>;

/** Add a command that takes the options every command takes. */
export function leaf(parent: Command, spec: string, description: string): Command {
  return parent.command(spec).description(description)
    .option(
      "--config <file>",
      "service registry (default: PROVISIONING_SERVICES, ./provisioning/config/services.toml, $PROVISIONING_HOME/config/services.toml, bundled)",
    )
    .option("--json", "print one JSON document (JSON lines when following)")
    .option("-q, --quiet", "print only failures and the summary");
}

/**
 * The range of each numeric flag, with its unit (the README's "Ranges" table): `--interval` of
 * `monitor` like a health check's interval (at most 24 hours; a huge value would overflow the
 * timer and check in a loop), `--lines` of `logs` up to 100,000 lines.
 */
export const FLAG_RANGES: Record<string, { min: number; max: number; unit?: string }> = {
  "--interval": { min: 1, max: 86_400, unit: "seconds" },
  "--lines": { min: 1, max: 100_000, unit: "lines" },
  "--max-streams": { min: 1, max: 10_000, unit: "streams" },
};
const DEFAULT_RANGE = { min: 1, max: 1_000_000 };

/**
 * An option parser accepting whole numbers in the flag's range (`FLAG_RANGES`, else 1 to
 * 1,000,000); anything else is a usage error (exit 2) saying the range.
 */
export const positiveInt = (name: string) => (v: string): number => {
  const r = FLAG_RANGES[name] ?? DEFAULT_RANGE;
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(n >= r.min && n <= r.max)) {
    throw new UsageError(
      `Invalid ${name} ${JSON.stringify(v)}: must be a whole number between ${r.min} and ${r.max}${
        r.unit ? ` ${r.unit}` : ""
      }`,
    );
  }
  return n;
};

/** Ctrl+C aborts the returned signal (for --follow, monitor and long starts). */
export function interruptSignal(): AbortSignal {
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  return ac.signal;
}

/** The platform of `--config` (or the discovered registry). */
export const open = async (o: Common): Promise<Platform> =>
  (await importLib()).Platform.open({ config: o.config });
