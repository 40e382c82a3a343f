/**
 * `provisioning plugins list`: every deployment mode and health check type, the file that
 * provides it, and whether it loads.
 *
 * @module
 */
import type { Command } from "commander";
import { ExitCode, listPlugins } from "./_lib.ts";
import { renderPlugins } from "../render/plugins.ts";
import type { Run } from "./_common.ts";

/** Add the `plugins` group to `program`. */
export function pluginsCommand(program: Command, run: Run): Command {
  const plugins = program.command("plugins").description("deployment drivers and health checks");
  plugins.command("list").description(
    "every mode and check type, the file providing it, and whether it loads",
  )
    .option("--json", "print one JSON document: [{name, kind, source, file}]")
    .option("--config <file>", "the service registry whose plugin opt-ins apply")
    .option(
      "--all",
      "import and check every plugin found, not only those the registry uses (runs their code)",
    )
    .action(run(async (_out, o: { config?: string; all?: boolean }) => {
      const rows = await listPlugins({ config: o.config, load: o.all ? "all" : "used" });
      return {
        doc: rows,
        text: renderPlugins(rows),
        exitCode: rows.some((p) => p.error) ? ExitCode.usage : ExitCode.ok,
      };
    }));
  return plugins;
}
