/**
 * `services list`, `platform status` and `services status NAME`: one line or block per service,
 * with the spec's emoji.
 *
 * @module
 */
import type { StatusReport } from "../../mod.ts";
import { bold, clock, columns } from "./text.ts";

const STATUS_ICON: Record<string, string> = {
  running: "🟢",
  starting: "🟡",
  backoff: "🟠",
  stopping: "🟡",
  stopped: "⚪",
  failed: "🔴",
};
const HEALTH_ICON: Record<string, string> = { healthy: "✅", unhealthy: "❌", unknown: "❓" };

/** A status report, plus the restart limit of its service (for `restart 2 of 5`). */
export type StatusRow = StatusReport & { max_restarts?: number };

/** `services list`. */
export function renderList(
  rows: Pick<
    StatusReport,
    | "name"
    | "type"
    | "category"
    | "status"
    | "deployment_mode"
    | "auto_start"
    | "pid"
    | "uptime_s"
    | "restarts"
    | "health"
  >[],
): string {
  // The spec's columns first, then what `docker compose ps` and `pm2 ls` show.
  const header = [
    "name",
    "type",
    "category",
    "status",
    "deployment_mode",
    "auto_start",
    "pid",
    "uptime",
    "restarts",
    "health",
  ];
  const up = (s?: number) => s === undefined ? "-" : `${s}s`;
  return columns(
    header,
    rows.map((r) => [
      r.name,
      r.type,
      r.category,
      r.status,
      r.deployment_mode,
      String(r.auto_start),
      r.pid ? String(r.pid) : "-",
      r.status === "running" ? up(r.uptime_s) : "-",
      String(r.restarts ?? 0),
      r.status === "running" || r.status === "starting" ? r.health : "-",
    ]),
  );
}

/** A service in backoff: `restart 2 of 5 at 14:03:07`, or its message when neither is known. */
export function backoffDetail(s: StatusRow): string {
  const at = s.next_attempt_at ? new Date(s.next_attempt_at) : undefined;
  const when = at && !Number.isNaN(at.getTime()) ? ` at ${clock(at)}` : "";
  const count = s.restarts
    ? ` ${s.restarts}${s.max_restarts !== undefined ? ` of ${s.max_restarts}` : ""}`
    : "";
  return count || when ? `restart${count}${when}` : s.message ?? "";
}

function statusLine(s: StatusRow): string {
  const up = s.status === "running" && s.uptime_s !== undefined ? ` (uptime: ${s.uptime_s}s)` : "";
  const why = s.status === "failed" && s.message ? ` (${s.message})` : "";
  const wait = s.status === "backoff" && backoffDetail(s) ? ` (${backoffDetail(s)})` : "";
  const health = s.status === "running" ? HEALTH_ICON[s.health] : "❓";
  const at = s.location ? ` @ ${s.location}` : "";
  return `${
    STATUS_ICON[s.status] ?? "⚪"
  } ${s.name}${at} - ${s.status}${up}${why}${wait} ${health}`;
}

/** `platform status`: running count, then services grouped by category. */
export function renderPlatformStatus(reports: StatusRow[]): string {
  const running = reports.filter((r) => r.status === "running").length;
  const out = [bold("Platform Services Status"), `Running: ${running}/${reports.length}`];
  const categories = [...new Set(reports.map((r) => r.category))];
  for (const c of categories) {
    out.push("", bold(`=== ${c.toUpperCase()} ===`));
    for (const r of reports.filter((x) => x.category === c)) out.push(statusLine(r));
  }
  return out.join("\n");
}

/** `services status NAME`; a failed service's last log lines come last, as systemctl shows them. */
export function renderServiceStatus(s: StatusRow): string {
  const wait = s.status === "backoff" && backoffDetail(s) ? ` (${backoffDetail(s)})` : "";
  const lines = [
    `Service: ${s.name}`,
    `Type: ${s.type}`,
    `Category: ${s.category}`,
    `Status: ${s.status}${wait}`,
    `Deployment: ${s.deployment_mode}${s.location ? ` at ${s.location}` : ""}`,
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
  if (s.last_log_lines?.length) {
    lines.push("Last log lines:", ...s.last_log_lines.map((l) => `  ${l}`));
  }
  return lines.join("\n");
}
