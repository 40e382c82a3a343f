/**
 * `provisioning why NAME`: why a service is not running and healthy, down the dependency graph
 * to the root cause (core/lifecycle/why.ts). Exit 0 when it is healthy, 1 otherwise.
 *
 * @module
 */
import type { Command } from "commander";
import { ExitCode, explain, reviveSupervisor } from "./_lib.ts";
import { renderWhy } from "../render/why.ts";
import { type Common, leaf, open, type Run } from "./_common.ts";

/** Add `why <name>` to `program`. */
export function whyCommand(program: Command, run: Run): Command {
  return leaf(program, "why <name>", "explain why a service is not running and healthy")
    .action(run(async (_out, name: string, o: Common) => {
      const p = await open(o);
      p.service(name);
      await reviveSupervisor(p);
      const ex = await explain(p, name);
      return { doc: ex, text: renderWhy(ex), exitCode: ex.ok ? ExitCode.ok : ExitCode.failed };
    }));
}
