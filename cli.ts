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
import { Command } from "commander";
import type { Run } from "./cli/commands/_common.ts";
import { agentCommand } from "./cli/commands/agent.ts";
import { platformCommand } from "./cli/commands/platform.ts";
import { pluginsCommand } from "./cli/commands/plugins.ts";
import { servicesCommand } from "./cli/commands/services.ts";
import { supervisorCommand } from "./cli/commands/supervisor.ts";
import { acceptGlobalOptions, fail, hoistGlobalOptions, print } from "./cli/run.ts";

const GROUPS = [platformCommand, servicesCommand, supervisorCommand, pluginsCommand, agentCommand];

async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  // The one runner: actions return their result, it is printed here and nowhere else.
  const run: Run = (action) => async (...args) => {
    const cmd = args.at(-1) as Command;
    const res = await action((line) => console.log(line), ...args);
    exitCode = print(res, !!cmd.opts().json);
  };
  const program = new Command("provisioning")
    .description(
      "Start, stop, watch and explain a platform of services described in a TOML registry",
    )
    .version("0.1.0")
    .exitOverride()
    .showSuggestionAfterError();
  for (const group of GROUPS) group(program, run);
  acceptGlobalOptions(program);
  program.option("--no-color", "no colours (as NO_COLOR=1)");
  try {
    await program.parseAsync(hoistGlobalOptions(argv), { from: "user" });
    return exitCode;
  } catch (e) {
    return fail(e, argv.includes("--json"));
  }
}

process.exit(await main(process.argv.slice(2)));
