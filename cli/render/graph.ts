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

/**
 * The services a picture shows: every one, or with `name` that service's closure — everything it
 * needs and everything that needs it, transitively (as `docker compose config` of one service
 * shows what it pulls in).
 */
function scope(p: Platform, name?: string): Platform["services"] {
  if (!name) return p.services;
  p.service(name); // an unknown name is a usage error with a hint
  const keep = new Set([
    name,
    ...p.graph.dependencies(name, { transitive: true }),
    ...p.graph.dependents(name, { transitive: true }),
  ]);
  return p.services.filter((s) => keep.has(s.name));
}

/** Conflicts between two shown services, each pair once. */
function conflictPairs(shown: Platform["services"]): [string, string][] {
  const names = new Set(shown.map((s) => s.name));
  const seen = new Set<string>();
  const pairs: [string, string][] = [];
  for (const s of shown) {
    for (const c of s.conflicts) {
      const key = [s.name, c].sort().join("\0");
      if (!names.has(c) || seen.has(key)) continue;
      seen.add(key);
      pairs.push([s.name, c]);
    }
  }
  return pairs;
}

/**
 * Mermaid flowchart: an arrow from each dependency to what needs it; a conflict is a dotted line
 * crossed at both ends, labelled. With `name`, only that service's closure.
 */
export function toMermaid(p: Platform, name?: string): string {
  const shown = scope(p, name);
  const names = new Set(shown.map((s) => s.name));
  const lines = ["flowchart LR"];
  for (const s of shown) lines.push(`  ${id(s.name)}["${s.name}"]`);
  for (const s of shown) {
    for (const d of s.dependencies) if (names.has(d)) lines.push(`  ${id(d)} --> ${id(s.name)}`);
  }
  for (const [a, b] of conflictPairs(shown)) lines.push(`  ${id(a)} x-. conflicts .-x ${id(b)}`);
  return lines.join("\n");
}

/**
 * Graphviz dot: an arrow from each dependency to what needs it, clustered by category; a
 * conflict is a dashed red line without arrows. With `name`, only that service's closure.
 */
export function toDot(p: Platform, name?: string): string {
  const shown = scope(p, name);
  const names = new Set(shown.map((s) => s.name));
  const lines = ["digraph services {", "  rankdir=LR;", "  node [shape=box];"];
  const categories = [...new Set(shown.map((s) => s.category))];
  categories.forEach((c, i) => {
    lines.push(`  subgraph cluster_${i} {`, `    label=${JSON.stringify(c)};`);
    for (const s of shown.filter((x) => x.category === c)) {
      lines.push(`    ${JSON.stringify(s.name)};`);
    }
    lines.push("  }");
  });
  for (const s of shown) {
    for (const d of s.dependencies) {
      if (names.has(d)) lines.push(`  ${JSON.stringify(d)} -> ${JSON.stringify(s.name)};`);
    }
  }
  for (const [a, b] of conflictPairs(shown)) {
    lines.push(
      `  ${JSON.stringify(a)} -> ${
        JSON.stringify(b)
      } [style=dashed, color=red, dir=none, label="conflicts"];`,
    );
  }
  lines.push("}");
  return lines.join("\n");
}
