/**
 * `provisioning supervisor …`: the per-home watcher that restarts crashed services (status,
 * stop, and `run` in the foreground).
 *
 * @module
 */
import type { Command } from "commander";
import { defaultHome, stopSupervisor, Supervisor, supervisorStatus } from "./_lib.ts";
import { renderSupervisorStatus } from "../render/supervisor.ts";
import type { Run } from "./_common.ts";

/** Add the `supervisor` group to `program`. */
export function supervisorCommand(program: Command, run: Run): Command {
  const sup = program.command("supervisor").description(
    "the per-home watcher that restarts crashed services (started on demand)",
  );
  sup.command("run").description(
    "run the supervisor in the foreground (normally started on demand)",
  )
    .action(run(async () => {
      await new Supervisor(defaultHome(process.env)).run();
      return {};
    }));
  sup.command("status").description("what the supervisor watches").option("--json", "print JSON")
    .action(run(async () => {
      const s = await supervisorStatus(defaultHome(process.env));
      return { doc: s ?? { running: false }, text: renderSupervisorStatus(s) };
    }));
  sup.command("stop").description("stop the supervisor (services keep running)")
    .action(run(async () => {
      const stopped = await stopSupervisor(defaultHome(process.env));
      return { doc: { stopped }, text: stopped ? "Supervisor stopped" : "Supervisor: not running" };
    }));
  return sup;
}
