/**
 * Text rendering of the CLI, following the spec's examples. JSON output needs no rendering:
 * the CLI prints the library's data as it is.
 *
 * @module
 */
import type {
  HealthReport,
  LifecycleEvent,
  LifecycleResult,
  StartPlan,
  StatusReport,
  StopPlan,
  ValidationReport,
} from "../mod.ts";

const useColor = () => !process.env.NO_COLOR && !!process.stdout.isTTY;
const paint = (code: number) => (s: string) => useColor() ? `\x1b[${code}m${s}\x1b[0m` : s;
export const bold = paint(1);
export const dim = paint(2);
export const red = paint(31);
export const green = paint(32);
export const yellow = paint(33);

const STATUS_ICON: Record<string, string> = {
  running: "🟢",
  starting: "🟡",
  stopping: "🟡",
  stopped: "⚪",
  failed: "🔴",
};
const HEALTH_ICON: Record<string, string> = { healthy: "✅", unhealthy: "❌", unknown: "❓" };

/** Seconds with two decimals: `1.23s`. */
export const secs = (ms: number) => `${(ms / 1000).toFixed(2)}s`;

/** Plain aligned columns (the spec's `services list`). */
export function columns(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [bold(line(header)), ...rows.map(line)].join("\n");
}

/** `services list`. */
export function renderList(
  rows: Pick<
    StatusReport,
    "name" | "type" | "category" | "status" | "deployment_mode" | "auto_start"
  >[],
): string {
  const header = ["name", "type", "category", "status", "deployment_mode", "auto_start"];
  return columns(
    header,
    rows.map((
      r,
    ) => [r.name, r.type, r.category, r.status, r.deployment_mode, String(r.auto_start)]),
  );
}

function statusLine(s: StatusReport): string {
  const up = s.status === "running" && s.uptime_s !== undefined ? ` (uptime: ${s.uptime_s}s)` : "";
  const why = s.status === "failed" && s.message ? ` (${s.message})` : "";
  const health = s.status === "running" ? HEALTH_ICON[s.health] : "❓";
  return `${STATUS_ICON[s.status] ?? "⚪"} ${s.name} - ${s.status}${up}${why} ${health}`;
}

/** `platform status`: running count, then services grouped by category. */
export function renderPlatformStatus(reports: StatusReport[]): string {
  const running = reports.filter((r) => r.status === "running").length;
  const out = [bold("Platform Services Status"), `Running: ${running}/${reports.length}`];
  const categories = [...new Set(reports.map((r) => r.category))];
  for (const c of categories) {
    out.push("", bold(`=== ${c.toUpperCase()} ===`));
    for (const r of reports.filter((x) => x.category === c)) out.push(statusLine(r));
  }
  return out.join("\n");
}

/** `services status NAME`. */
export function renderServiceStatus(s: StatusReport): string {
  const lines = [
    `Service: ${s.name}`,
    `Type: ${s.type}`,
    `Category: ${s.category}`,
    `Status: ${s.status}`,
    `Deployment: ${s.deployment_mode}`,
    `Health: ${s.health}${
      s.health_message && s.health !== "healthy" ? ` (${s.health_message})` : ""
    }`,
    `Auto-start: ${s.auto_start}`,
  ];
  if (s.pid) lines.push(`PID: ${s.pid}`);
  if (s.uptime_s !== undefined && s.status === "running") lines.push(`Uptime: ${s.uptime_s}s`);
  if (s.restarts) lines.push(`Restarts: ${s.restarts}`);
  if (s.exit_code !== undefined && s.exit_code !== null) {
    lines.push(`Last exit code: ${s.exit_code}`);
  }
  if (s.exit_signal) lines.push(`Last exit signal: ${s.exit_signal}`);
  if (s.message) lines.push(`Message: ${s.message}`);
  lines.push(`Dependencies: [${s.dependencies.join(", ")}]`);
  return lines.join("\n");
}

/** `services health NAME`. */
export function renderHealth(h: HealthReport): string {
  const status = h.state === "not_running" ? "not running" : h.state;
  return [
    `Service: ${h.name}`,
    `Status: ${status}`,
    `Healthy: ${h.healthy}`,
    `Message: ${h.message}`,
    `Check type: ${h.check_type}`,
    `Check duration: ${h.duration_ms} ms`,
  ].join("\n");
}

/** One line of `platform health`. */
export function healthLine(h: HealthReport): string {
  if (h.state === "not_running") return `⚪ ${h.name}: Not running`;
  if (h.state === "unknown") return `❓ ${h.name}: Unknown - ${h.message}`;
  const icon = h.healthy ? "✅" : "❌";
  return `${icon} ${h.name}: ${
    h.healthy ? "Healthy" : "Unhealthy"
  } - ${h.message} (${h.check_type}, ${h.duration_ms} ms)`;
}

/** `platform health`. */
export function renderPlatformHealth(hs: HealthReport[]): string {
  const s = healthSummary(hs);
  return [
    bold("Platform Health Check"),
    ...hs.map(healthLine),
    "",
    `Summary: ${s.healthy} healthy, ${s.unhealthy} unhealthy, ${s.not_running} not running${
      s.unknown ? `, ${s.unknown} without a check` : ""
    }`,
  ].join("\n");
}

export function healthSummary(hs: HealthReport[]) {
  return {
    healthy: hs.filter((h) => h.state === "healthy").length,
    unhealthy: hs.filter((h) => h.state === "unhealthy").length,
    not_running: hs.filter((h) => h.state === "not_running").length,
    unknown: hs.filter((h) => h.state === "unknown").length,
  };
}

/** `services validate`. */
export function renderValidation(r: ValidationReport): string {
  const out = [`Total services: ${r.total}`, `Valid: ${r.valid}`, `Invalid: ${r.invalid}`];
  if (r.errors.length) out.push("", "Registry errors:", ...r.errors.map((e) => `❌ ${e}`));
  const bad = r.services.filter((s) => !s.valid);
  if (bad.length) {
    out.push("", "Invalid services:");
    for (const s of bad) out.push(`❌ ${s.name}:`, ...s.errors.map((e) => `  - ${e}`));
  }
  return out.join("\n");
}

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

/** One progress line per lifecycle event. */
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
    case "waiting":
      return [`Waiting for ${e.service} to become healthy...`];
    case "healthy":
      return [`✅ Service ${e.service} is healthy${t}`];
    case "running":
      return [`✅ ${e.service} is already running${e.pid ? ` (PID ${e.pid})` : ""}`];
    case "failed":
      return [red(`❌ ${e.service}: ${e.message}`) + t];
    case "blocked":
      return [yellow(`⏸️  ${e.service}: ${e.message}`) + t];
    case "stopping":
      return [`Stopping ${e.service}...`];
    case "stopped":
      return [`✅ Stopped ${e.service}${t}`];
  }
}

/** The final lines of a start, stop or restart. */
export function renderResult(r: LifecycleResult): string {
  const by = (s: string) => r.outcomes.filter((o) => o.status === s);
  const started = by("started").length;
  const stopped = by("stopped").length;
  const already = by("already_running").length;
  const failed = by("failed");
  const blocked = by("blocked");
  const parts: string[] = [];
  if (started) parts.push(`${started} started`);
  if (already) parts.push(`${already} already running`);
  if (stopped) parts.push(`${stopped} stopped`);
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

/** One line of `services monitor`: `2025-10-06 14:30:00 ✅ orchestrator: HTTP health check passed`. */
export function monitorLine(h: HealthReport, at: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  const ts = `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} ${
    pad(at.getHours())
  }:${pad(at.getMinutes())}:${pad(at.getSeconds())}`;
  const icon = h.state === "healthy"
    ? "✅"
    : h.state === "not_running"
    ? "⚪"
    : h.state === "unknown"
    ? "❓"
    : "❌";
  return `${ts} ${icon} ${h.name}: ${h.message}`;
}

/** `services readiness`. */
export function renderReadiness(rep: {
  total: number;
  running: number;
  ready_to_start: number;
  services: { name: string; type: string; category: string; state: string; issues: string[] }[];
}): string {
  const icon: Record<string, string> = { running: "🟢", ready: "🟡", issues: "🔴" };
  const out = [
    bold("Platform Readiness Report"),
    `Total services: ${rep.total}`,
    `Running: ${rep.running}`,
    `Ready to start: ${rep.ready_to_start}`,
    "",
    "Services:",
  ];
  for (const s of rep.services) {
    out.push(`${icon[s.state]} ${s.name} - ${s.type} - ${s.category}`);
    if (s.issues.length) {
      out.push(
        `   Issues: ${s.issues.length}`,
        ...s.issues.map((i) => `   - ${i}`),
      );
    }
  }
  return out.join("\n");
}
