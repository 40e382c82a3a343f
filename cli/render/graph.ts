/**
 * Pictures of the dependency graph: the spec's text tree and "Required by" blocks, Mermaid and
 * Graphviz dot.
 *
 * @module
 */
import type { Platform } from "../../mod.ts";

/** `services dependencies NAME`: the spec's block. */
export function renderDependencies(d: ReturnType<Platform["dependencies"]>): string {
  const list = (xs: string[]) => xs.length ? xs.map((x) => `  - ${x}`) : ["  (none)"];
  const lines = [
    `## ${d.name}`,
    `- Type: ${d.type}`,
    `- Category: ${d.category}`,
    `- Depends on:`,
    ...list(d.dependencies),
    `- Required by:`,
    ...list(d.required_by),
  ];
  const indirect = d.all_required_by.filter((x) => !d.required_by.includes(x));
  if (indirect.length) lines.push(`- Required indirectly by:`, ...list(indirect));
  return lines.join("\n");
}

/** `services dependencies`: every service under what it needs, in start order. */
export function renderTree(p: Platform): string {
  const order = p.graph.order();
  const startOrder = (n: string) => p.service(n).startup.start_order;
  const lines: string[] = [];
  const walk = (name: string, prefix: string, seen: Set<string>) => {
    const children = order.filter((c) => p.service(c).dependencies.includes(name));
    children.forEach((c, i) => {
      const last = i === children.length - 1;
      lines.push(`${prefix}${last ? "└─>" : "├─>"} ${c} (order: ${startOrder(c)})`);
      if (!seen.has(c)) walk(c, prefix + (last ? "    " : "│   "), new Set([...seen, c]));
    });
  };
  for (const root of order.filter((n) => p.service(n).dependencies.length === 0)) {
    lines.push(`${root} (order: ${startOrder(root)})`);
    walk(root, "", new Set([root]));
  }
  return lines.join("\n");
}

const id = (name: string) => name.replace(/[^A-Za-z0-9_]/g, "_");

/** Mermaid flowchart: an arrow from each dependency to what needs it. */
export function toMermaid(p: Platform): string {
  const lines = ["flowchart LR"];
  for (const s of p.services) lines.push(`  ${id(s.name)}["${s.name}"]`);
  for (const s of p.services) {
    for (const d of s.dependencies) lines.push(`  ${id(d)} --> ${id(s.name)}`);
  }
  return lines.join("\n");
}

/** Graphviz dot: an arrow from each dependency to what needs it, clustered by category. */
export function toDot(p: Platform): string {
  const lines = ["digraph services {", "  rankdir=LR;", "  node [shape=box];"];
  const categories = [...new Set(p.services.map((s) => s.category))];
  categories.forEach((c, i) => {
    lines.push(`  subgraph cluster_${i} {`, `    label=${JSON.stringify(c)};`);
    for (const s of p.services.filter((x) => x.category === c)) {
      lines.push(`    ${JSON.stringify(s.name)};`);
    }
    lines.push("  }");
  });
  for (const s of p.services) {
    for (const d of s.dependencies) {
      lines.push(`  ${JSON.stringify(d)} -> ${JSON.stringify(s.name)};`);
    }
  }
  lines.push("}");
  return lines.join("\n");
}
