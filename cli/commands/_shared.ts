/**
 * Actions that both `platform` and `services` offer: lifecycle progress, status of every
 * service, health and logs.
 *
 * @module
 */
import { type Command, Option } from "commander";
import type { LifecycleEvent, LifecycleResult, Platform, StatusReport } from "../../mod.ts";
import { ExitCode, reviveSupervisor } from "./_lib.ts";
import { renderEvent, renderResult } from "../render/events.ts";
import { LiveProgress } from "../render/progress.ts";
import { healthSummary, renderHealth, renderPlatformHealth } from "../render/health.ts";
import { renderPlatformStatus, type StatusRow } from "../render/status.ts";
import {
  type CommandResult,
  type Common,
  leaf,
  open,
  type Out,
  positiveInt,
  type Run,
} from "./_common.ts";
import { logs, type LogsFlags, sinceArg } from "./_logs.ts";
import { stdoutIsTTY } from "../stdout.ts";

/** Print progress (text) or collect events (JSON) while a lifecycle operation runs. */
export async function runLifecycle(
  out: Out,
  o: Common,
  fn: (onEvent: (e: LifecycleEvent) => void) => Promise<LifecycleResult>,
): Promise<CommandResult> {
  const events: LifecycleEvent[] = [];
  const tty = stdoutIsTTY();
  // Long waits are not silent: live lines on a terminal, a line every 5 s elsewhere.
  const live = o.json || o.quiet ? undefined : new LiveProgress(
    tty ? (text) => process.stdout.write(text) : (text) => text.trimEnd().split("\n").forEach(out),
    { tty, columns: () => process.stdout.columns || 80 },
  );
  const onEvent = (e: LifecycleEvent) => {
    events.push(e);
    live?.event(e);
    if (o.json || (o.quiet && e.type !== "failed" && e.type !== "blocked")) return;
    if (live) live.print(renderEvent(e));
    else renderEvent(e).forEach((l) => out(l));
  };
  try {
    const res = await fn(onEvent);
    const doc = { ...res, events };
    return { doc, text: renderResult(res), exitCode: res.exit_code };
  } finally {
    live?.close();
  }
}

/** A status report with its service's restart limit, for `restart 2 of 5`. */
export const withRestartLimit = (p: Platform, s: StatusReport): StatusRow => ({
  ...s,
  max_restarts: p.service(s.name).startup.max_restarts,
});

/** `platform status`, `services status` without a name. */
export async function platformStatus(_out: Out, o: Common): Promise<CommandResult> {
  const p = await open(o);
  // The supervisor's revival (a ping, when services are watched) overlaps the reads.
  const [reports] = await Promise.all([p.statusAll(), reviveSupervisor(p)]);
  const running = reports.filter((s) => s.status === "running").length;
  return {
    doc: { running, total: reports.length, services: reports },
    text: renderPlatformStatus(reports.map((s) => withRestartLimit(p, s))),
  };
}

/** `services health [NAME]`, `platform health`: unhealthy exits 1. */
export async function health(
  _out: Out,
  name: string | undefined,
  o: Common,
): Promise<CommandResult> {
  const p = await open(o);
  if (name) p.service(name);
  await reviveSupervisor(p);
  if (name) {
    const h = await p.health(name);
    return {
      doc: h,
      text: renderHealth(h),
      exitCode: h.healthy ? ExitCode.ok : ExitCode.failed,
    };
  }
  const hs = await Promise.all(p.services.map((s) => p.health(s.name)));
  const summary = healthSummary(hs);
  return {
    doc: { services: hs, summary },
    text: renderPlatformHealth(hs),
    exitCode: summary.unhealthy || summary.failed ? ExitCode.failed : ExitCode.ok,
  };
}

/**
 * Add `logs [name...]` (`--lines`, `--follow`, `--timestamps`, `--since`) to a group: one
 * service's log, or every (named) service's, as `docker compose logs` (`_logs.ts`).
 */
export function logsCommand(parent: Command, run: Run): Command {
  return leaf(parent, "logs [name...]", "a service's log; every service's without a name")
    .addOption(
      new Option("--lines <n>", "how many lines per service (default 50; with --since: all)")
        .argParser(positiveInt("--lines")),
    )
    .option("--follow", "keep printing new lines until Ctrl+C")
    .option("-t, --timestamps", "show the time each line was written")
    .addOption(
      new Option("--since <when>", "only lines since then: 30s, 10m, 1h, 2d or an ISO date/time")
        .argParser(sinceArg),
    )
    .action(run((out, names: string[], o: LogsFlags) => logs(out, names, o)));
}
