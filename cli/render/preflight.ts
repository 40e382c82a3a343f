/**
 * `services validate` and `services readiness`: what is wrong with the registry and what keeps
 * each service from starting.
 *
 * @module
 */
import type { ReadinessEntry, ValidationReport } from "../../mod.ts";
import { bold } from "./text.ts";

/** `services validate`: which file was read and how it was found, then every problem. */
export function renderValidation(r: ValidationReport): string {
  const out = [
    `Registry: ${r.registry.path} (${r.registry.source})`,
    `Total services: ${r.total}`,
    `Valid: ${r.valid}`,
    `Invalid: ${r.invalid}`,
  ];
  if (r.errors.length) out.push("", "Registry errors:", ...r.errors.map((e) => `❌ ${e}`));
  const bad = r.services.filter((s) => !s.valid);
  if (bad.length) {
    out.push("", "Invalid services:");
    for (const s of bad) out.push(`❌ ${s.name}:`, ...s.errors.map((e) => `  - ${e}`));
  }
  return out.join("\n");
}

/** `services readiness`. */
export function renderReadiness(rep: {
  total: number;
  running: number;
  ready_to_start: number;
  services: Pick<ReadinessEntry, "name" | "type" | "category" | "state" | "issues">[];
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
