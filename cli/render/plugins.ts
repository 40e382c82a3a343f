/**
 * `plugins list`: one row per deployment mode and health check type, with the file that
 * provides it; broken plugins and overrides are spelled out below the table.
 *
 * @module
 */
import type { PluginInfo } from "../../mod.ts";
import { columns } from "./text.ts";

/** The table, then one line per override and per problem. */
export function renderPlugins(rows: PluginInfo[]): string {
  const table = columns(
    ["name", "kind", "source", "file", "ok"],
    rows.map((p) => [p.name, p.kind, p.source, p.file, p.error ? "❌" : "✅"]),
  );
  const notes = [
    ...rows.filter((p) => p.overrides).map((p) =>
      `↪ ${p.kind} "${p.name}": ${p.file} overrides ${p.overrides}`
    ),
    ...rows.filter((p) => p.error).map((p) => `❌ ${p.error}`),
  ];
  return notes.length ? `${table}\n\n${notes.join("\n")}` : table;
}
