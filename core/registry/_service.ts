/**
 * The service step of the registry loader: one `[services.X]` table against the base schema and
 * its plugins' schemas. A problem in one part of the table never hides the problems of another:
 * when the table as a whole fails, each part that is still readable is checked on its own, and
 * the graph gets the table's dependencies and conflicts however broken the rest is.
 *
 * @module
 */
import type { z } from "zod";
import type { GraphNode } from "../graph/graph.ts";
import { nameProblem } from "../names.ts";
import {
  extraKeys,
  isUnusable,
  pluginTable,
  type SegIssue,
  type ServiceContext,
} from "./_plugin_tables.ts";
import { zodIssues } from "./_zod_issues.ts";
import { healthCheckBaseSchema, modeTable, serviceSchema, tomlPath } from "./schema.ts";
import type { Service } from "../types.ts";

type Shape = typeof serviceSchema.shape;
type Parsed = z.output<typeof serviceSchema>;

/** What validating one table gives: the service when it is valid, its graph node, every issue. */
export interface ServiceStep {
  service?: Service;
  node: GraphNode;
  issues: SegIssue[];
}

/** Step: one `[services.X]` table; `node` is what the graph checks read, valid or not. */
export async function validateService(
  name: string,
  raw: unknown,
  ctx: ServiceContext,
): Promise<ServiceStep> {
  const base = ["services", name];
  const issues: SegIssue[] = [];
  const add = (segments: (string | number)[], message: string) =>
    issues.push({ path: tomlPath(segments), message, segments });

  const bad = nameProblem(name);
  if (bad) add(base, bad);
  const parsed = serviceSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) issues.push(...zodIssues(parsed.error, serviceSchema, base));
  // Each part on its own when the whole failed: the others still get checked.
  const part = <K extends keyof Shape>(key: K): Parsed[K] | undefined =>
    parsed.success ? parsed.data[key] : partOf(raw, key);
  const node = parsed.success ? graphNode(name, parsed.data) : lenientNode(name, raw);

  const own = part("name");
  if (own !== undefined && own !== name) {
    add([...base, "name"], `Must match the table key "${name}" (got "${own}")`);
  }
  (part("conflicts") ?? []).forEach((other, i) => {
    if (other === name) add([...base, "conflicts", i], `"${name}" cannot conflict with itself`);
  });

  // deployment: `mode` plus the table of that mode.
  const dep = part("deployment");
  const deployment: Record<string, unknown> = {};
  if (dep) {
    const mode = dep.mode;
    deployment.mode = mode;
    await pluginTable(
      ctx,
      "driver",
      mode,
      dep,
      [...base, "deployment"],
      modeTable(mode),
      issues,
      (v) => deployment[modeTable(mode)] = v,
    );
  }

  // health_check: type plus the table of that type (none needs none).
  const hc = part("health_check");
  const health: Record<string, unknown> = {};
  if (hc) {
    Object.assign(health, {
      type: hc.type,
      interval: hc.interval,
      retries: hc.retries,
      timeout: hc.timeout,
    });
    if (hc.type !== "none") {
      await pluginTable(
        ctx,
        "check",
        hc.type,
        hc,
        [...base, "health_check"],
        hc.type,
        issues,
        (v) => health[hc.type] = v,
      );
    } else {
      extraKeys(hc, Object.keys(healthCheckBaseSchema.shape), [...base, "health_check"], issues);
    }
  }
  if (!parsed.success || !issues.every(isUnusable)) return { node, issues };
  return {
    node,
    issues,
    service: {
      ...parsed.data,
      name,
      deployment: deployment as Service["deployment"],
      health_check: health as Service["health_check"],
    },
  };
}

/** One key of a table that failed as a whole, parsed alone (undefined when it fails too). */
function partOf<K extends keyof Shape>(raw: unknown, key: K): Parsed[K] | undefined {
  const value = isTable(raw) ? raw[key] : undefined;
  return serviceSchema.shape[key].safeParse(value).data as Parsed[K] | undefined;
}

/** The graph's view of a valid service. */
function graphNode(name: string, svc: Parsed): GraphNode {
  return {
    name,
    dependencies: svc.dependencies,
    conflicts: svc.conflicts,
    start_order: svc.startup.start_order,
    auto_start: svc.startup.auto_start,
  };
}

/**
 * The graph's view of a broken table: the names its `dependencies` and `conflicts` hold (entries
 * of the wrong type are the schema's problems) and whether it asks to auto-start, so its unknown
 * dependencies, cycles and conflicts are reported with its schema errors, not after them.
 */
function lenientNode(name: string, raw: unknown): GraphNode {
  const t = isTable(raw) ? raw : {};
  const names = (v: unknown) =>
    Array.isArray(v) ? v.filter((s): s is string => typeof s === "string" && s !== "") : [];
  const startup = isTable(t.startup) ? t.startup : {};
  return {
    name,
    dependencies: names(t.dependencies),
    conflicts: names(t.conflicts),
    auto_start: startup.auto_start === true,
  };
}

function isTable(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === "object" && !Array.isArray(v) && !(v instanceof Date);
}
