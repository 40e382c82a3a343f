/**
 * `provisioning platform …`: every service as one system (start, stop, restart, reload, status,
 * health, logs).
 *
 * @module
 */
import type { Command } from "commander";
import type { LifecycleResult } from "../../mod.ts";
import {
  ExitCode,
  planReload,
  planStart,
  planStop,
  reloadPlatform,
  restartServices,
  startServices,
  stopServices,
} from "./_lib.ts";
import { renderPlan } from "../render/events.ts";
import { renderReloadPlan } from "../render/reload.ts";
import { type Common, interruptSignal, leaf, open, type Run, type StartFlags } from "./_common.ts";
import { health, logsCommand, platformStatus, runLifecycle } from "./_shared.ts";

type PlanOptions = Common & { force?: boolean; dryRun?: boolean };

/** Add the `platform` group to `program`. */
export function platformCommand(program: Command, run: Run): Command {
  const platform = program.command("platform").description("manage all services as one system");
  leaf(
    platform,
    "start [names...]",
    "start every auto-start service, or the named ones, with their dependencies",
  )
    .option("--recreate", "restart named services that are already running")
    .option("--force", "as --recreate (the spec's `platform start --force`)")
    .option("--skip-preflight", "skip pre-flight checks")
    .option("--dry-run", "print the plan (waves, order, critical path) without starting anything")
    .action(run(async (out, names: string[], o: StartFlags) => {
      const p = await open(o);
      const recreate = o.recreate || o.force;
      if (o.dryRun) {
        const plan = await planStart(p, names, { force: recreate });
        return { doc: plan, text: renderPlan(plan) };
      }
      return await runLifecycle(
        out,
        o,
        (onEvent) =>
          startServices(p, names, {
            force: recreate,
            skipPreflight: o.skipPreflight,
            onEvent,
            signal: interruptSignal(),
          }),
      );
    }));
  leaf(
    platform,
    "stop [names...]",
    "stop every running service, or the named ones, dependents first",
  )
    .option("--force", "ignore running dependents and kill at once")
    .option("--dry-run", "print the plan without stopping anything")
    .action(run(async (out, names: string[], o: PlanOptions) => {
      const p = await open(o);
      if (o.dryRun) {
        const plan = await planStop(p, names, { force: o.force });
        const exitCode = plan.blocked.length ? ExitCode.refused : ExitCode.ok;
        return { doc: plan, text: renderPlan(plan), exitCode };
      }
      return await runLifecycle(
        out,
        o,
        (onEvent) => stopServices(p, names, { force: o.force, onEvent }),
      );
    }));
  leaf(platform, "restart [names...]", "restart every running service, or the named ones")
    .action(run(async (out, names: string[], o: Common) => {
      const p = await open(o);
      return await runLifecycle(out, o, (onEvent) => restartServices(p, names, { onEvent }));
    }));
  leaf(
    platform,
    "reload",
    "apply the edited registry: stop removed services, restart changed ones, start added ones",
  )
    .option("--dry-run", "print what changed and what a reload would do, without doing it")
    .action(run(async (out, o: PlanOptions) => {
      const p = await open(o); // an invalid registry stops here: exit 2, nothing touched
      if (o.dryRun) {
        const plan = await planReload(p);
        return {
          doc: { diff: plan.diff, plan },
          text: renderReloadPlan(plan, { dryRun: true }).join("\n"),
        };
      }
      let diff: unknown;
      const res = await runLifecycle(out, o, (onEvent) =>
        reloadPlatform(p, {
          onEvent,
          onPlan: (plan) => {
            diff = plan.diff;
            if (!o.json && !o.quiet) renderReloadPlan(plan).forEach((l) => out(l));
          },
          signal: interruptSignal(),
          // Its summary reads the outcomes only, which a reload shares with a start.
        }) as Promise<LifecycleResult<never>>);
      return { ...res, doc: { diff, ...(res.doc as object) } };
    }));
  leaf(platform, "status", "status of every service, by category").action(run(platformStatus));
  leaf(platform, "health", "health of every service")
    .action(run((out, o: Common) => health(out, undefined, o)));
  logsCommand(platform, run);
  return platform;
}
