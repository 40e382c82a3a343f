#!/usr/bin/env -S deno run -A
/**
 * The `provisioning` CLI: parses argv, calls `mod.ts`, renders text or JSON. Nothing else.
 *
 * Exit codes: 0 success; 1 an operation failed; 2 invalid usage or registry; 3 pre-flight
 * failed; 4 refused for safety (use --force).
 *
 * @module
 */
import { Command, CommanderError, Option } from "commander";
import {
  defaultHome,
  ensureOperation,
  ExitCode,
  type LifecycleEvent,
  type LifecycleResult,
  monitor,
  planStart,
  planStop,
  Platform,
  ProvisioningError,
  readiness,
  RegistryError,
  restartServices,
  startServices,
  stopServices,
  stopSupervisor,
  Supervisor,
  supervisorStatus,
  UsageError,
  validateServices,
} from "./mod.ts";
import { listPlugins } from "./mod.ts";
import * as r from "./cli/render.ts";
import { renderPlugins } from "./cli/render_plugins.ts";
import { renderDependencies, renderTree, toDot, toMermaid } from "./cli/render_graph.ts";

interface Common {
  config?: string;
  json?: boolean;
}

const out = (text: string) => console.log(text);
const json = (doc: unknown) => console.log(JSON.stringify(doc, null, 2));
const open = (o: Common) => Platform.open({ config: o.config });

let exitCode: number = ExitCode.ok;

/** Add the options every command takes. */
function leaf(parent: Command, spec: string, description: string): Command {
  return parent.command(spec).description(description)
    .option(
      "--config <file>",
      "service registry (default: PROVISIONING_SERVICES, ./provisioning/config/services.toml, $PROVISIONING_HOME/config/services.toml, bundled)",
    )
    .option("--json", "print one JSON document (JSON lines when following)");
}

const positiveInt = (name: string) => (v: string) => {
  if (!/^\d+$/.test(v) || Number(v) <= 0) {
    throw new UsageError(`Invalid ${name} "${v}": expected a positive whole number`);
  }
  return Number(v);
};

/** Ctrl+C aborts the returned signal (for --follow, monitor and long starts). */
function interruptSignal(): AbortSignal {
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  return ac.signal;
}

/** Print progress (text) or collect events (JSON) while a lifecycle operation runs. */
async function runLifecycle(
  o: Common,
  fn: (onEvent: (e: LifecycleEvent) => void) => Promise<LifecycleResult>,
): Promise<void> {
  const events: LifecycleEvent[] = [];
  const onEvent = (e: LifecycleEvent) => {
    events.push(e);
    if (!o.json) r.renderEvent(e).forEach((l) => out(l));
  };
  const res = await fn(onEvent);
  if (o.json) json({ ...res, events });
  else out(r.renderResult(res));
  exitCode = res.exit_code;
}

async function logs(name: string, o: Common & { lines: number; follow?: boolean }): Promise<void> {
  const p = await open(o);
  p.service(name);
  const signal = o.follow ? interruptSignal() : undefined;
  for await (const line of p.logs(name, { lines: o.lines, follow: o.follow, signal })) {
    out(o.json ? JSON.stringify({ service: name, line }) : line);
  }
}

async function health(name: string | undefined, o: Common): Promise<void> {
  const p = await open(o);
  if (name) {
    const h = await p.health(name);
    if (o.json) json(h);
    else out(r.renderHealth(h));
    if (!h.healthy) exitCode = ExitCode.failed;
    return;
  }
  const hs = await Promise.all(p.services.map((s) => p.health(s.name)));
  const summary = r.healthSummary(hs);
  if (o.json) json({ services: hs, summary });
  else out(r.renderPlatformHealth(hs));
  if (summary.unhealthy) exitCode = ExitCode.failed;
}

async function platformStatus(o: Common): Promise<void> {
  const p = await open(o);
  const reports = await p.statusAll();
  const running = reports.filter((s) => s.status === "running").length;
  if (o.json) json({ running, total: reports.length, services: reports });
  else out(r.renderPlatformStatus(reports));
}

function build(): Command {
  const program = new Command("provisioning")
    .description(
      "Start, stop, watch and explain a platform of services described in a TOML registry",
    )
    .version("0.1.0")
    .exitOverride()
    .showSuggestionAfterError();

  // ---- platform ----
  const platform = program.command("platform").description("manage all services as one system");
  leaf(
    platform,
    "start [names...]",
    "start every auto-start service, or the named ones, with their dependencies",
  )
    .option("--force", "restart services that are already running")
    .option("--dry-run", "print the plan (waves, order, critical path) without starting anything")
    .action(async (names: string[], o: Common & { force?: boolean; dryRun?: boolean }) => {
      const p = await open(o);
      if (o.dryRun) {
        const plan = await planStart(p, names, { force: o.force });
        return o.json ? json(plan) : out(r.renderPlan(plan));
      }
      await runLifecycle(
        o,
        (onEvent) =>
          startServices(p, names, { force: o.force, onEvent, signal: interruptSignal() }),
      );
    });
  leaf(
    platform,
    "stop [names...]",
    "stop every running service, or the named ones, dependents first",
  )
    .option("--force", "ignore running dependents and kill at once")
    .option("--dry-run", "print the plan without stopping anything")
    .action(async (names: string[], o: Common & { force?: boolean; dryRun?: boolean }) => {
      const p = await open(o);
      if (o.dryRun) {
        const plan = await planStop(p, names, { force: o.force });
        if (plan.blocked.length) exitCode = ExitCode.refused;
        return o.json ? json(plan) : out(r.renderPlan(plan));
      }
      await runLifecycle(o, (onEvent) => stopServices(p, names, { force: o.force, onEvent }));
    });
  leaf(platform, "restart [names...]", "restart every running service, or the named ones")
    .action(async (names: string[], o: Common) => {
      const p = await open(o);
      await runLifecycle(o, (onEvent) => restartServices(p, names, { onEvent }));
    });
  leaf(platform, "status", "status of every service, by category").action(platformStatus);
  leaf(platform, "health", "health of every service").action((o: Common) => health(undefined, o));
  leaf(platform, "logs <name>", "a service's log")
    .addOption(
      new Option("--lines <n>", "how many lines").default(50).argParser(positiveInt("--lines")),
    )
    .option("--follow", "keep printing new lines until Ctrl+C")
    .action(logs);

  // ---- services ----
  const services = program.command("services").description("manage individual services");
  leaf(services, "list", "list services")
    .option("--running", "only running services")
    .option("--category <category>", "only this category")
    .action(async (o: Common & { running?: boolean; category?: string }) => {
      const p = await open(o);
      let rows = await p.statusAll({ health: false });
      if (o.category) rows = rows.filter((s) => s.category === o.category);
      if (o.running) rows = rows.filter((s) => s.status === "running");
      if (o.json) {
        json(rows.map(({ name, type, category, status, deployment_mode, auto_start, pid }) => ({
          name,
          type,
          category,
          status,
          deployment_mode,
          auto_start,
          pid,
        })));
      } else out(r.renderList(rows));
    });
  leaf(services, "status [name]", "detailed status of a service (all services without a name)")
    .action(async (name: string | undefined, o: Common) => {
      if (!name) return platformStatus(o);
      const s = await (await open(o)).status(name);
      o.json ? json(s) : out(r.renderServiceStatus(s));
    });
  leaf(services, "start <names...>", "start services (pre-flight checks; dependencies first)")
    .option("--force", "skip pre-flight checks")
    .action(async (names: string[], o: Common & { force?: boolean }) => {
      const p = await open(o);
      await runLifecycle(
        o,
        (onEvent) =>
          startServices(p, names, { skipPreflight: o.force, onEvent, signal: interruptSignal() }),
      );
    });
  leaf(services, "stop <names...>", "stop services (refused while dependents run)")
    .option("--force", "ignore running dependents and kill at once")
    .action(async (names: string[], o: Common & { force?: boolean }) => {
      const p = await open(o);
      await runLifecycle(o, (onEvent) => stopServices(p, names, { force: o.force, onEvent }));
    });
  leaf(services, "restart <names...>", "restart services").action(
    async (names: string[], o: Common) => {
      const p = await open(o);
      await runLifecycle(o, (onEvent) => restartServices(p, names, { onEvent }));
    },
  );
  leaf(services, "health [name]", "run a service's health check (all services without a name)")
    .action(health);
  leaf(services, "logs <name>", "a service's log")
    .addOption(
      new Option("--lines <n>", "how many lines").default(50).argParser(positiveInt("--lines")),
    )
    .option("--follow", "keep printing new lines until Ctrl+C")
    .action(logs);
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
    .action(async (name: string | undefined, o: Common & { interval: number }) => {
      const p = await open(o);
      const names = name ? [p.service(name).name] : p.services.map((s) => s.name);
      if (!o.json) {
        out(`Starting health monitoring for ${name ?? "all services"} (interval: ${o.interval}s)`);
        out("Press Ctrl+C to stop");
      }
      await monitor(p, names, {
        interval: o.interval,
        signal: interruptSignal(),
        onResult: (h, at) =>
          out(o.json ? JSON.stringify({ at: at.toISOString(), ...h }) : r.monitorLine(h, at)),
      });
    });
  leaf(services, "check <operation>", "which services an operation requires, and whether they run")
    .option("--start", "start whatever is not running and wait until healthy")
    .action(async (op: string, o: Common & { start?: boolean }) => {
      const p = await open(o);
      if (o.start) {
        const res = await ensureOperation(p, op, {
          onEvent: (e) => !o.json && r.renderEvent(e).forEach((l) => out(l)),
          signal: interruptSignal(),
        });
        exitCode = res.exit_code;
      }
      const c = await p.operation(op);
      if (o.json) {
        json({
          operation: c.operation,
          required: c.required,
          running: c.running,
          all_running: c.all_running,
        });
      } else {out(
          [
            `Operation: ${c.operation}`,
            `Required services: ${c.required.join(", ")}`,
            `All running: ${c.all_running}`,
          ].join("\n"),
        );}
      if (!c.all_running && exitCode === ExitCode.ok) exitCode = ExitCode.failed;
    });
  leaf(
    services,
    "dependencies [name]",
    "dependency tree, or one service's dependencies and dependents",
  )
    .addOption(
      new Option("--format <format>", "text, mermaid or dot").choices(["text", "mermaid", "dot"])
        .default("text"),
    )
    .action(async (name: string | undefined, o: Common & { format: string }) => {
      const p = await open(o);
      if (o.format === "mermaid") return out(toMermaid(p));
      if (o.format === "dot") return out(toDot(p));
      if (name) {
        const d = p.dependencies(name);
        return o.json ? json(d) : out(renderDependencies(d));
      }
      if (o.json) {
        return json({
          order: p.graph.order(),
          services: p.services.map((s) => p.dependencies(s.name)),
        });
      }
      out(renderTree(p));
    });
  leaf(services, "validate", "validate the registry and each service's prerequisites")
    .action(async (o: Common) => {
      const report = await validateServices({ config: o.config });
      if (o.json) {
        const { config_invalid: _, ...doc } = report;
        json(doc);
      } else out(r.renderValidation(report));
      exitCode = report.config_invalid
        ? ExitCode.usage
        : report.invalid
        ? ExitCode.preflight
        : ExitCode.ok;
    });
  leaf(services, "readiness", "which services run, which can start, and what stops the others")
    .action(async (o: Common) => {
      const rep = await readiness(await open(o));
      if (o.json) return json(rep);
      out(r.renderReadiness(rep));
    });

  // ---- supervisor ----
  const sup = program.command("supervisor").description(
    "the per-home watcher that restarts crashed services (started on demand)",
  );
  sup.command("run").description(
    "run the supervisor in the foreground (normally started on demand)",
  )
    .action(async () => {
      await new Supervisor(defaultHome(process.env)).run();
    });
  sup.command("status").description("what the supervisor watches").option("--json", "print JSON")
    .action(async (o: { json?: boolean }) => {
      const s = await supervisorStatus(defaultHome(process.env));
      if (o.json) return json(s ?? { running: false });
      if (!s) return out("Supervisor: not running");
      const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
      out(
        `Supervisor: running (pid ${s.pid}${
          s.memory ? `, RSS ${mib(s.memory.rss)}, heap ${mib(s.memory.heap_used)}` : ""
        })`,
      );
      for (const x of s.services) {
        out(
          `  ${x.name} - ${x.phase}${x.pid ? ` (pid ${x.pid})` : ""}${
            x.streak ? `, ${x.streak} crash(es) in a row` : ""
          }`,
        );
      }
    });
  sup.command("stop").description("stop the supervisor (services keep running)").action(
    async () => {
      out(
        await stopSupervisor(defaultHome(process.env))
          ? "Supervisor stopped"
          : "Supervisor: not running",
      );
    },
  );

  // ---- plugins ----
  program.command("plugins").description("deployment drivers and health checks")
    .command("list").description(
      "every mode and check type, the file providing it, and whether it loads",
    )
    .option("--json", "print one JSON document: [{name, kind, source, file}]")
    .action(async (o: { json?: boolean }) => {
      const rows = await listPlugins();
      if (o.json) json(rows);
      else out(renderPlugins(rows));
      if (rows.some((p) => p.error)) exitCode = ExitCode.usage;
    });
  return program;
}

function fail(e: unknown, asJson: boolean): number {
  if (e instanceof CommanderError) {
    if (
      e.code === "commander.helpDisplayed" || e.code === "commander.version" ||
      e.code === "commander.help"
    ) return 0;
    return ExitCode.usage;
  }
  if (e instanceof ProvisioningError || (e instanceof Error && "exitCode" in e)) {
    const pe = e as ProvisioningError;
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
  else {console.error(
      `❌ ${msg}${process.env.PROVISIONING_DEBUG ? "" : " (set PROVISIONING_DEBUG=1 for details)"}`,
    );}
  if (process.env.PROVISIONING_DEBUG) console.error(e);
  return ExitCode.failed;
}

const argv = process.argv.slice(2);
try {
  await build().parseAsync(argv, { from: "user" });
} catch (e) {
  exitCode = fail(e, argv.includes("--json"));
}
process.exit(exitCode);
