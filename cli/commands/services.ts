/**
 * `provisioning services …`: individual services (list, status, start, stop, restart, health,
 * logs, monitor) and questions about the registry (check, dependencies, validate, readiness).
 *
 * @module
 */
import { type Command, Option } from "commander";
import {
  ensureOperation,
  ExitCode,
  listEntry,
  monitor,
  readiness,
  restartServices,
  reviveSupervisor,
  startServices,
  stopServices,
  UsageError,
  validateServices,
} from "./_lib.ts";
import { renderEvent } from "../render/events.ts";
import { renderDependencies, renderTree, toDot, toMermaid } from "../render/graph.ts";
import { monitorLine } from "../render/health.ts";
import { renderReadiness, renderValidation } from "../render/preflight.ts";
import { renderList, renderServiceStatus } from "../render/status.ts";
import {
  type CommandResult,
  type Common,
  interruptSignal,
  leaf,
  open,
  positiveInt,
  type Run,
  type StartFlags,
} from "./_common.ts";
import { health, logsCommand, platformStatus, runLifecycle, withRestartLimit } from "./_shared.ts";

/** Add the `services` group to `program`. */
export function servicesCommand(program: Command, run: Run): Command {
  const services = program.command("services").description("manage individual services");
  leaf(services, "list", "list services")
    .option("--running", "only running services")
    .option("--category <category>", "only this category")
    .action(run(async (_out, o: Common & { running?: boolean; category?: string }) => {
      const p = await open(o);
      await reviveSupervisor(p);
      const categories = [...new Set(p.services.map((s) => s.category))];
      const category = o.category?.toLowerCase();
      if (category !== undefined && !categories.some((c) => c.toLowerCase() === category)) {
        throw new UsageError(`Unknown category "${o.category}"`, [
          `Known categories: ${categories.join(", ")}`,
        ]);
      }
      const names = p.services.filter((s) =>
        category === undefined || s.category.toLowerCase() === category
      ).map((s) => s.name);
      let rows = await p.statusAll({ names });
      if (o.running) rows = rows.filter((s) => s.status === "running");
      const doc = rows.map(listEntry);
      return { doc, text: renderList(rows) };
    }));
  leaf(services, "status [name]", "detailed status of a service (all services without a name)")
    .action(run(async (out, name: string | undefined, o: Common) => {
      if (!name) return platformStatus(out, o);
      const p = await open(o);
      p.service(name);
      await reviveSupervisor(p);
      const s = await p.status(name);
      return { doc: s, text: renderServiceStatus(withRestartLimit(p, s)) };
    }));
  leaf(services, "start <names...>", "start services (pre-flight checks; dependencies first)")
    .option("--skip-preflight", "skip pre-flight checks")
    .option("--force", "as --skip-preflight (the spec's `services start --force`)")
    .option("--recreate", "restart named services that are already running")
    .action(run(async (out, names: string[], o: StartFlags) => {
      const p = await open(o);
      return await runLifecycle(
        out,
        o,
        (onEvent) =>
          startServices(p, names, {
            skipPreflight: o.skipPreflight || o.force,
            force: o.recreate,
            onEvent,
            signal: interruptSignal(),
          }),
      );
    }));
  leaf(services, "stop <names...>", "stop services (refused while dependents run)")
    .option("--force", "ignore running dependents and kill at once")
    .action(run(async (out, names: string[], o: Common & { force?: boolean }) => {
      const p = await open(o);
      return await runLifecycle(
        out,
        o,
        (onEvent) => stopServices(p, names, { force: o.force, onEvent }),
      );
    }));
  leaf(services, "restart <names...>", "restart services")
    .action(run(async (out, names: string[], o: Common) => {
      const p = await open(o);
      return await runLifecycle(out, o, (onEvent) => restartServices(p, names, { onEvent }));
    }));
  leaf(services, "health [name]", "run a service's health check (all services without a name)")
    .action(run(health));
  logsCommand(services, run);
  leaf(
    services,
    "monitor [name]",
    "check health continuously until Ctrl+C (every running service without a name)",
  )
    .addOption(
      new Option("--interval <seconds>", "seconds between checks").default(30).argParser(
        positiveInt("--interval"),
      ),
    )
    .option("--changes", "print a service only when its health changes (healthy → unhealthy)")
    .action(
      run(
        async (
          out,
          name: string | undefined,
          o: Common & { interval: number; changes?: boolean },
        ) => {
          const p = await open(o);
          // Without a name: the services running now, in registry order (as the help says).
          const names = name
            ? [p.service(name).name]
            : (await p.statusAll({ health: false })).filter((s) => s.status === "running")
              .map((s) => s.name);
          if (!names.length) {
            return { text: "No running services to monitor", doc: { services: [] } };
          }
          if (!o.json) {
            out(
              `Starting health monitoring for ${
                name ?? names.join(", ")
              } (interval: ${o.interval}s)`,
            );
            out("Press Ctrl+C to stop");
          }
          await monitor(p, names, {
            interval: o.interval,
            changes: o.changes,
            signal: interruptSignal(),
            onResult: (h, at, previous) =>
              out(
                o.json
                  ? JSON.stringify({
                    at: at.toISOString(),
                    ...h,
                    ...(previous ? { previous } : {}),
                  })
                  : monitorLine(h, at, o.changes ? previous : undefined),
              ),
          });
          return {};
        },
      ),
    );
  leaf(services, "check <operation>", "which services an operation requires, and whether they run")
    .option("--start", "start whatever is not running and wait until healthy")
    .action(
      run(async (out, op: string, o: Common & { start?: boolean }): Promise<CommandResult> => {
        const p = await open(o);
        let exitCode: number = ExitCode.ok;
        if (o.start) {
          const res = await ensureOperation(p, op, {
            onEvent: (e) => !o.json && renderEvent(e).forEach((l) => out(l)),
            signal: interruptSignal(),
          });
          exitCode = res.exit_code;
        }
        const c = await p.operation(op);
        if (!c.all_running && exitCode === ExitCode.ok) exitCode = ExitCode.failed;
        const missing = c.required.filter((n) => !c.running.includes(n));
        return {
          doc: {
            operation: c.operation,
            required: c.required,
            running: c.running,
            not_running: missing,
            all_running: c.all_running,
          },
          text: [
            `Operation: ${c.operation}`,
            `Required services: ${c.required.join(", ")}`,
            `All running: ${c.all_running}`,
            ...(missing.length
              ? [
                `Not running: ${missing.join(", ")}`,
                `Start them: provisioning services check ${op} --start`,
              ]
              : []),
          ].join("\n"),
          exitCode,
        };
      }),
    );
  leaf(
    services,
    "dependencies [name]",
    "dependency tree, or one service's dependencies and dependents",
  )
    .addOption(
      new Option("--format <format>", "text, mermaid or dot").choices(["text", "mermaid", "dot"])
        .default("text"),
    )
    .action(run(async (_out, name: string | undefined, o: Common & { format: string }) => {
      const p = await open(o);
      if (o.format === "mermaid") return { text: toMermaid(p, name) };
      if (o.format === "dot") return { text: toDot(p, name) };
      if (name) {
        const d = p.dependencies(name);
        return { doc: d, text: renderDependencies(d) };
      }
      return {
        doc: { order: p.graph.order(), services: p.services.map((s) => p.dependencies(s.name)) },
        text: renderTree(p),
      };
    }));
  leaf(services, "validate", "validate the registry and each service's prerequisites")
    .action(run(async (_out, o: Common) => {
      const report = await validateServices({ config: o.config });
      const { config_invalid: _, ...doc } = report;
      return {
        doc,
        text: renderValidation(report),
        exitCode: report.config_invalid
          ? ExitCode.usage
          : report.invalid
          ? ExitCode.preflight
          : ExitCode.ok,
      };
    }));
  leaf(services, "readiness", "which services run, which can start, and what stops the others")
    .action(run(async (_out, o: Common) => {
      const rep = await readiness(await open(o));
      return { doc: rep, text: renderReadiness(rep) };
    }));
  return services;
}
