/**
 * What every command module shares: the options every command takes, the shape of an action
 * and of its result, and small argument helpers.
 *
 * @module
 */
import type { Command } from "commander";
import { Platform, UsageError } from "../../mod.ts";

/** The options every command takes. */
export interface Common {
  config?: string;
  json?: boolean;
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
    .option("--json", "print one JSON document (JSON lines when following)");
}

/** An option parser accepting whole numbers above zero (a usage error otherwise). */
export const positiveInt = (name: string) => (v: string): number => {
  if (!/^\d+$/.test(v) || Number(v) <= 0) {
    throw new UsageError(`Invalid ${name} "${v}": expected a positive whole number`);
  }
  return Number(v);
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
export const open = (o: Common): Promise<Platform> => Platform.open({ config: o.config });
