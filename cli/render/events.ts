/**
 * Lifecycle progress: the plan of a `--dry-run`, one line per event while a start or stop runs,
 * and the final summary.
 *
 * @module
 */
import type { LifecycleEvent, LifecycleResult, StartPlan, StopPlan } from "../../mod.ts";
import { bold, dim, green, red, secs, yellow } from "./text.ts";

/** How many of a failed service's last log lines a progress line shows. */
const LOG_TAIL = 5;

/** A start or stop plan (`--dry-run`). */
export function renderPlan(plan: StartPlan | StopPlan): string {
  const verb = plan.action === "start" ? "start" : "stop";
  const out = [
    bold(`Plan: ${verb} ${plan.services.length} service(s) in ${plan.waves.length} wave(s)`),
  ];
  plan.waves.forEach((w, i) => out.push(`  Wave ${i + 1}: ${w.join(", ")}`));
  if (plan.services.length) out.push(`Order: ${plan.services.join(" → ")}`);
  if (plan.action === "start") {
    if (plan.critical_path.length) {
      out.push(
        `Critical path: ${
          plan.critical_path.join(" -> ")
        } (${plan.critical_path.length} service(s))`,
      );
    }
    if (plan.restart.length) out.push(`Restart (--force): ${plan.restart.join(", ")}`);
    if (plan.already_running.length) {
      out.push(`Already running: ${plan.already_running.join(", ")}`);
    }
  } else {
    if (plan.not_running.length) out.push(`Not running: ${plan.not_running.join(", ")}`);
    for (const b of plan.blocked) {
      out.push(
        `❌ Cannot stop ${b.service}: Dependent services running: ${b.dependents.join(", ")}`,
      );
    }
  }
  if (plan.services.length === 0) out.push(`Nothing to ${verb}.`);
  return out.join("\n");
}

/** One progress line per lifecycle event (a failure adds the tail of the service's log). */
export function renderEvent(e: LifecycleEvent): string[] {
  const t = dim(` (${secs(e.elapsed_ms)})`);
  switch (e.type) {
    case "preflight":
      return [
        `Running pre-flight checks for ${e.service}...`,
        ...(e.findings ?? []).map((f) =>
          `${f.ok ? "✅" : "❌"} ${f.message}${f.ok || !f.hint ? "" : ` (${f.hint})`}`
        ),
      ];
    case "starting":
      return [`${e.dependency ? "Starting dependency" : "Starting service"}: ${e.service}${t}`];
    case "started":
      return [`✅ Started ${e.service}${e.pid ? ` with PID ${e.pid}` : ""}${t}`];
    case "progress":
      return [`   ${e.message}`];
    case "waiting":
      return [e.message ? `${e.message}...` : `Waiting for ${e.service} to become healthy...`];
    case "healthy":
      return [`✅ Service ${e.service} is healthy${t}`];
    case "ready":
      return [`➖ Service ${e.service} started (no health check: health unknown)${t}`];
    case "running":
      return [`✅ ${e.service} is already running${e.pid ? ` (PID ${e.pid})` : ""}`];
    case "failed":
      return [
        red(`❌ ${e.service}: ${e.message}`) + t,
        ...(e.last_log_lines ?? []).slice(-LOG_TAIL).map((l) => `     ${l}`),
      ];
    case "blocked":
      return [yellow(`⏸️  ${e.service}: ${e.message}`) + t];
    case "stopping":
      return [`Stopping ${e.service}...`];
    case "stopped":
      return [`✅ Stopped ${e.service}${e.message ? ` — ${e.message}` : ""}${t}`];
    case "warning":
      return [yellow(`⚠️  ${e.message}`)];
    case "check":
      return []; // the live lines show it (cli/render/progress.ts)
    case "not_managed":
      return [`➖ ${e.service} is not managed here: ${e.message}${t}`];
  }
}

/**
 * The final lines of a start, stop or restart. "started" claims no health: a service started
 * without a health check is counted apart, as health unknown.
 */
export function renderResult(r: LifecycleResult): string {
  const by = (s: string) => r.outcomes.filter((o) => o.status === s);
  const started = by("started");
  const unchecked = started.filter((o) => o.health === "unknown").length;
  const stopped = by("stopped").length;
  const already = by("already_running").length;
  const notManaged = by("not_managed").length;
  const failed = by("failed");
  const blocked = by("blocked");
  const parts: string[] = [];
  if (started.length) {
    parts.push(
      `${started.length} started${
        unchecked ? ` (${unchecked} without a health check: health unknown)` : ""
      }`,
    );
  }
  if (already) parts.push(`${already} already running`);
  if (stopped) parts.push(`${stopped} stopped`);
  if (notManaged) parts.push(`${notManaged} not managed here`);
  if (!parts.length && r.ok) parts.push("nothing to do");
  const lines = [];
  if (r.ok) lines.push(green(`✅ Done: ${parts.join(", ")} in ${secs(r.elapsed_ms)}`));
  else {
    lines.push(red(`❌ Failed: ${failed.map((o) => `${o.name} (${o.message})`).join(", ")}`));
    if (blocked.length) {
      lines.push(
        yellow(`⏸️  Blocked: ${blocked.map((o) => `${o.name} (by ${o.blocked_by})`).join(", ")}`),
      );
    }
    if (parts.length) lines.push(`   Also: ${parts.join(", ")} in ${secs(r.elapsed_ms)}`);
  }
  return lines.join("\n");
}
