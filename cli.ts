#!/usr/bin/env -S deno run -A
/**
 * The `provisioning` CLI: builds the command tree from `cli/commands/*`, runs the action that
 * argv names, prints what it returns (text, or JSON with `--json`) and exits with its code.
 *
 * Exit codes: 0 success; 1 an operation failed; 2 invalid usage or registry; 3 pre-flight
 * failed; 4 refused for safety (use --force).
 *
 * @module
 */
import { type Command, CommanderError } from "commander";
import type { Run } from "./cli/commands/_common.ts";
import { expandHelp } from "./cli/help.ts";
import { loadLib } from "./cli/commands/_lib.ts";
import { buildProgram, fail, hoistGlobalOptions, onlyHelp, print } from "./cli/run.ts";
import { writeLine } from "./cli/stdout.ts";

async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  // The one runner: actions return their result, it is printed here and nowhere else.
  const run: Run = (action) => async (...args) => {
    const cmd = args.at(-1) as Command;
    const res = await action(writeLine, ...args);
    exitCode = print(res, !!cmd.opts().json);
  };
  try {
    // Help needs the command tree only; everything else the library too.
    if (!onlyHelp(argv)) await loadLib();
    const args = hoistGlobalOptions(argv);
    const program = buildProgram(run, args);
    await program.parseAsync(await expandHelp(program, args), {
      from: "user",
    });
    return exitCode;
  } catch (e) {
    if (!(e instanceof CommanderError)) await loadLib(); // the error classes fail() tells apart
    return fail(e, argv.includes("--json"));
  }
}

// No top-level await: the Node bundle's entry is CommonJS (scripts/build.ts).
main(process.argv.slice(2)).then((code) => process.exit(code));
