/**
 * The entry's jobs besides parsing: build the command tree, print what an action returned, and
 * turn an error into one clear line (or a JSON document) and an exit code.
 *
 * @module
 */
import { Command, CommanderError } from "commander";
import {
  ExitCode,
  libLoaded,
  ProvisioningError,
  RegistryError,
  versionLine,
} from "./commands/_lib.ts";
import type { CommandResult, Run } from "./commands/_common.ts";
import { agentCommand } from "./commands/agent.ts";
import { completionCommand } from "./commands/completion.ts";
import { eventsCommand } from "./commands/events.ts";
import { platformCommand } from "./commands/platform.ts";
import { pluginsCommand } from "./commands/plugins.ts";
import { servicesCommand } from "./commands/services.ts";
import { supervisorCommand } from "./commands/supervisor.ts";
import { whyCommand } from "./commands/why.ts";
import { addExamples } from "./help.ts";
import { stdoutIsTTY, writeLine, writeOut } from "./stdout.ts";

/** The top-level commands, by name, in the order help lists them. */
const GROUPS: [string, (program: Command, run: Run) => Command][] = [
  ["platform", platformCommand],
  ["services", servicesCommand],
  ["supervisor", supervisorCommand],
  ["plugins", pluginsCommand],
  ["agent", agentCommand],
  ["events", eventsCommand],
  ["completion", completionCommand],
  ["why", whyCommand],
];

/**
 * The command tree, its actions wrapped by `run` (tests build it with a stand-in). Given the
 * `argv` it will parse, and that runs a command (no help) whose first word names a top-level
 * command, only that one is built: commander dispatches on the first word, and the others were
 * 3-6 ms of a 60 ms `platform status` from the binary. Help, completion (which lists the whole
 * tree) and any other first word (a typo gets suggestions from all) get the whole tree.
 */
export function buildProgram(run: Run, argv?: string[]): Command {
  const program = new Command("provisioning")
    .description(
      "Start, stop, watch and explain a platform of services described in a TOML registry",
    )
    // Help alone leaves the library unloaded, and does not print the version.
    .version(
      libLoaded() ? versionLine() : "",
      "-V, --version",
      "print the version and the commit it was built from",
    )
    .exitOverride()
    .configureOutput({
      writeOut,
      // As commander's own, without asking process.stdout unless it is a terminal.
      // (Undefined: commander's own width for what is no terminal; its type says number.)
      getOutHelpWidth: () => (stdoutIsTTY() ? process.stdout.columns : undefined) as number,
      getOutHasColors: () => colorWanted() ?? (stdoutIsTTY() && !!process.stdout.hasColors?.()),
    })
    .showSuggestionAfterError()
    .helpCommand("help [command...]", "show a command's help and examples");
  const first = argv && !onlyHelp(argv) ? argv.find((a) => !a.startsWith("-")) : undefined;
  const one = first === "completion" ? undefined : GROUPS.find(([name]) => name === first);
  for (const [, group] of one ? [one] : GROUPS) group(program, run);
  acceptGlobalOptions(program);
  program.option("--no-color", "no colours (as NO_COLOR=1)");
  addExamples(program);
  return program;
}

/** NO_COLOR, FORCE_COLOR, CLICOLOR_FORCE as commander reads them; undefined when none says. */
function colorWanted(): boolean | undefined {
  const env = process.env;
  if (env.NO_COLOR || env.FORCE_COLOR === "0" || env.FORCE_COLOR === "false") return false;
  if (env.FORCE_COLOR || env.CLICOLOR_FORCE !== undefined) return true;
  return undefined;
}

const json = (doc: unknown) => writeLine(JSON.stringify(doc, null, 2));

/** Print a result: `doc` as JSON with `--json` (when it has one), else `text`; its exit code. */
export function print(res: CommandResult, asJson: boolean): number {
  if (asJson && res.doc !== undefined) json(res.doc);
  else if (res.text !== undefined) writeLine(res.text);
  return res.exitCode ?? ExitCode.ok;
}

/** Report an error the way the CLI contract says; returns the exit code. */
export function fail(e: unknown, asJson: boolean): number {
  if (e instanceof CommanderError) {
    if (
      e.code === "commander.helpDisplayed" || e.code === "commander.version" ||
      e.code === "commander.help"
    ) return 0;
    return ExitCode.usage;
  }
  if (e instanceof ProvisioningError || (e instanceof Error && "exitCode" in e)) {
    const pe = e as InstanceType<typeof ProvisioningError>;
    const lines = e instanceof RegistryError ? e.lines() : [pe.message];
    if (asJson) {
      json({
        error: pe.message,
        exit_code: pe.exitCode,
        hints: pe.hints,
        issues: e instanceof RegistryError ? e.issues : undefined,
      });
    } else {
      for (const l of lines) console.error(`❌ ${l}`);
      for (const h of pe.hints) console.error(`   ${h}`);
    }
    if (process.env.PROVISIONING_DEBUG) console.error(e);
    return pe.exitCode;
  }
  const msg = e instanceof Error ? e.message : String(e);
  if (asJson) json({ error: msg, exit_code: ExitCode.failed });
  else {
    console.error(
      `❌ ${msg}${process.env.PROVISIONING_DEBUG ? "" : " (set PROVISIONING_DEBUG=1 for details)"}`,
    );
  }
  if (process.env.PROVISIONING_DEBUG) console.error(e);
  return ExitCode.failed;
}

/** Options every command takes, wherever they stand on the line (as `docker compose -f`). */
const GLOBAL_FLAGS = new Set(["--json", "--quiet", "-q"]);

/**
 * `argv` with the global options moved behind the command they belong to: `--config FILE` (or
 * `--config=FILE`), `--json` and `--quiet` may come before the group (`provisioning --config f
 * services validate`) or between group and command (`services --config f validate`).
 * `--no-color` anywhere sets `NO_COLOR` (in `env`) and is taken out. Nothing after `--` moves.
 */
export function hoistGlobalOptions(
  argv: string[],
  env: Record<string, string | undefined> = process.env,
): string[] {
  const rest: string[] = [];
  const moved: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      rest.push(...argv.slice(i));
      break;
    }
    if (a === "--no-color") env.NO_COLOR = "1";
    else if (a === "--config" && i + 1 < argv.length) moved.push(a, argv[++i]);
    else if (a.startsWith("--config=") || GLOBAL_FLAGS.has(a)) moved.push(a);
    else rest.push(a);
  }
  const end = rest.indexOf("--");
  return end === -1 ? [...rest, ...moved] : [...rest.slice(0, end), ...moved, ...rest.slice(end)];
}

/**
 * Give every command without subcommands (the ones that run) `--config`, `--json` and
 * `--quiet` when it lacks them (`leaf()` adds them to most; `supervisor stop`, `agent token` …).
 */
export function acceptGlobalOptions(cmd: Command): void {
  const has = (flag: string) => cmd.options.some((o) => o.long === flag);
  if (cmd.commands.length === 0) {
    if (!has("--config")) cmd.option("--config <file>", "service registry");
    if (!has("--json")) cmd.option("--json", "print one JSON document");
    if (!has("--quiet")) cmd.option("-q, --quiet", "print only failures and the summary");
  }
  for (const sub of cmd.commands) acceptGlobalOptions(sub);
}

/**
 * Whether `argv` asks only for help (`--help`, `-h`, `help …`, or nothing at all): that needs
 * the command tree, not the library.
 */
export function onlyHelp(argv: string[]): boolean {
  const words = argv.filter((a) => a !== "--no-color");
  if (words.length === 0) return true;
  if (words[0] === "help") return true;
  return words.some((a) => a === "--help" || a === "-h") &&
    !words.includes("--");
}
