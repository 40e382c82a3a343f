/**
 * `services health`, `platform health` and the lines of `services monitor`.
 *
 * @module
 */
import type { HealthReport } from "../../mod.ts";
import { bold, timestamp } from "./text.ts";

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
  if (h.state === "failed") return `🔴 ${h.name}: Failed - ${h.message}`;
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
      s.failed ? `, ${s.failed} failed` : ""
    }${s.unknown ? `, ${s.unknown} without a check` : ""}`,
  ].join("\n");
}

/** How many services are in each health state. */
export function healthSummary(hs: HealthReport[]) {
  return {
    healthy: hs.filter((h) => h.state === "healthy").length,
    unhealthy: hs.filter((h) => h.state === "unhealthy").length,
    not_running: hs.filter((h) => h.state === "not_running").length,
    failed: hs.filter((h) => h.state === "failed").length,
    unknown: hs.filter((h) => h.state === "unknown").length,
  };
}

/** One line of `services monitor`: `2025-10-06 14:30:00 ✅ orchestrator: HTTP health check passed`. */
export function monitorLine(h: HealthReport, at: Date, previous?: string): string {
  const icon = h.state === "healthy"
    ? "✅"
    : h.state === "not_running"
    ? "⚪"
    : h.state === "unknown"
    ? "❓"
    : "❌";
  const change = previous && previous !== h.state ? `${previous} → ${h.state}: ` : "";
  return `${timestamp(at)} ${icon} ${h.name}: ${change}${h.message}`;
}
