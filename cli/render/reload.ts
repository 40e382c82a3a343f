/**
 * `platform reload`: the registry against what runs, one line per service that differs, and
 * what the reload does to it.
 *
 * @module
 */
import type { ReloadPlan } from "../../mod.ts";
import { bold, dim } from "./text.ts";

/** The diff and the plan of a reload (`dryRun`: as what it would do). */
export function renderReloadPlan(plan: ReloadPlan, opts: { dryRun?: boolean } = {}): string[] {
  const { added, removed, changed, unchanged } = plan.diff;
  const will = opts.dryRun ? "would " : "";
  const out = [
    bold(
      `Reload: ${added.length} added, ${removed.length} removed, ${changed.length} changed, ` +
        `${unchanged.length} unchanged`,
    ),
  ];
  const width = Math.max(
    0,
    ...[...added, ...removed, ...changed.map((c) => c.name), ...plan.restart].map((n) => n.length),
  );
  const line = (mark: string, name: string, what: string) =>
    out.push(`  ${mark} ${name.padEnd(width)}  ${what}`);
  for (const name of added) {
    line(
      "+",
      name,
      plan.start.includes(name) ? `${will}start` : dim("not auto_start: left stopped"),
    );
  }
  for (const name of removed) line("-", name, `${will}stop`);
  for (const c of changed) {
    const action = plan.restart.includes(c.name)
      ? `${will}restart`
      : plan.update.includes(c.name)
      ? `${will}apply in place`
      : dim("not running: used at its next start");
    line("~", c.name, `${c.keys.join(", ")} → ${action}`);
  }
  const changedNames = new Set(changed.map((c) => c.name));
  for (const name of plan.restart.filter((n) => !changedNames.has(n))) {
    line("↻", name, `${will}restart with a dependency (restart_with_dependencies)`);
  }
  if (opts.dryRun) {
    const nothing = !plan.stop.length && !plan.restart.length && !plan.start.length &&
      !plan.update.length;
    out.push(nothing ? "Nothing to do." : dim("Dry run: nothing was changed."));
  }
  return out;
}
