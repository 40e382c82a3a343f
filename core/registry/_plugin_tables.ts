/**
 * The plugin-owned tables of a service (`deployment.<mode>`, `health_check.<type>`) and the
 * registry's `[plugins]` table: the steps of the loader that need the plugin registry.
 *
 * @module
 */
import type { z } from "zod";
import { type Env, expandTree } from "./_expand.ts";
import { shellLineKeys } from "../plugins/api.ts";
import type { PluginRegistry } from "../plugins/registry.ts";
import { suggest } from "../suggest.ts";
import { unknownKeyMessage, zodIssues } from "./_zod_issues.ts";
import { ENV_NAME_RE, healthCheckBaseSchema, modeTable, tomlPath } from "./schema.ts";
import type { RegistryIssue } from "../types.ts";

/**
 * `unusable`: the plugin of this service failed to load (import error, malformed, conflict).
 * The service stays in the registry — its use reports the plugin — and the others load.
 */
export type Issue = RegistryIssue & { segments?: (string | number)[]; unusable?: boolean };

export const isUnusable = (i: Issue): boolean => i.unusable === true;

const HEALTH_BASE_KEYS = new Set(Object.keys(healthCheckBaseSchema.shape));

/** `services.X.deployment.<table>` or `services.X.health_check.<table>`: a plugin's table. */
export function isPluginTable(at: readonly (string | number)[], node: unknown): boolean {
  if (at.length !== 4 || !node || typeof node !== "object" || Array.isArray(node)) return false;
  return (at[2] === "deployment" && at[3] !== "mode") ||
    (at[2] === "health_check" && !HEALTH_BASE_KEYS.has(String(at[3])));
}

/**
 * Step: `[plugins] override`, the names whose override files may replace a plugin. Unknown
 * names are errors (with a hint); the known ones are handed to the plugin registry.
 */
export function pluginOverrides(raw: unknown, plugins: PluginRegistry): SegIssue[] {
  const list = (raw as { override?: unknown } | undefined)?.override;
  const names = Array.isArray(list) ? list.filter((n): n is string => typeof n === "string") : [];
  const known = [...plugins.names("driver"), ...plugins.names("check")];
  const issues: SegIssue[] = [];
  names.forEach((name, i) => {
    if (known.includes(name)) return;
    const hint = suggest(name, known);
    const segments = ["plugins", "override", i];
    issues.push({
      path: tomlPath(segments),
      segments,
      message: `Unknown plugin ${JSON.stringify(name)}${
        hint ? ` (did you mean "${hint}"?)` : ""
      }: override names a deployment mode or health check type`,
    });
  });
  plugins.allowOverrides(names.filter((n) => known.includes(n)));
  return issues;
}

export type SegIssue = RegistryIssue & { segments: (string | number)[] };

/** What validating one service needs besides its table. */
export interface ServiceContext {
  plugins: PluginRegistry;
  /** Variables for `${VAR}` in plugin tables. */
  vars: Env;
}

/**
 * Validate the plugin-owned sub-table `table` of `parent` (e.g. deployment.binary): expand its
 * variables (quoting them in the plugin's shell lines), check its `env` names, parse it with the
 * plugin's schema.
 */
export async function pluginTable(
  ctx: ServiceContext,
  kind: "driver" | "check",
  name: string,
  parent: Record<string, unknown>,
  segs: (string | number)[],
  table: string,
  issues: SegIssue[],
  set: (value: unknown) => void,
): Promise<void> {
  const { plugins } = ctx;
  const keyName = kind === "driver" ? "mode" : "type";
  const baseKeys = kind === "driver" ? ["mode"] : Object.keys(healthCheckBaseSchema.shape);
  if (!plugins.has(kind, name)) {
    issues.push({
      path: tomlPath([...segs, keyName]),
      segments: [...segs, keyName],
      message: `Unknown ${
        kind === "driver" ? "deployment mode" : "health check type"
      } "${name}": available: ${plugins.names(kind).join(", ")}${kind === "check" ? ", none" : ""}`,
    });
    return;
  }
  extraKeys(
    parent,
    [...baseKeys, table],
    segs,
    issues,
    plugins.names(kind).map((n) => kind === "driver" ? modeTable(n) : n),
  );
  if (parent[table] === undefined) {
    issues.push({
      path: tomlPath([...segs, table]),
      segments: [...segs, table],
      message: `Missing table [${tomlPath([...segs, table])}] required by ${keyName} "${name}"`,
    });
    return;
  }
  const tSegs = [...segs, table];
  const expand = (shellKeys: string[]) => {
    const shell = (at: readonly (string | number)[]) =>
      at.length === tSegs.length + 1 && shellKeys.includes(String(at[tSegs.length]));
    for (const i of expandTree(parent[table], ctx.vars, tSegs, { shell })) issues.push(i);
  };
  let plugin;
  try {
    plugin = kind === "driver" ? await plugins.driver(name) : await plugins.check(name);
  } catch (e) {
    const issue: Issue = {
      path: tomlPath([...segs, keyName]),
      segments: [...segs, keyName],
      message: (e as Error).message,
      unusable: (e as Error).name === "PluginError",
    };
    issues.push(issue as Issue & { segments: (string | number)[] });
    if (issue.unusable) { // kept unvalidated: using the service reports the plugin
      expand([]);
      set(parent[table]);
    }
    return;
  }
  expand(shellLineKeys(plugin.config));
  envNames(parent[table], tSegs, issues);
  const r = (plugin.config as z.ZodType).safeParse(parent[table], { reportInput: true });
  if (r.success) set(r.data);
  else issues.push(...zodIssues(r.error, plugin.config as z.ZodType, tSegs));
}

/**
 * The keys of a plugin table's `env` table are environment variable names. `"PATH=/x"` would
 * replace PATH in the child, and an empty name or NUL cannot be passed at all: letters, digits
 * and `_`, not starting with a digit, as POSIX shells and systemd's `Environment=` take them.
 */
function envNames(table: unknown, segs: (string | number)[], issues: SegIssue[]): void {
  const env = (table as { env?: unknown } | undefined)?.env;
  if (!env || typeof env !== "object" || Array.isArray(env)) return;
  for (const key of Object.keys(env)) {
    if (ENV_NAME_RE.test(key)) continue;
    const segments = [...segs, "env", key];
    issues.push({
      path: tomlPath(segments),
      segments,
      message: `Invalid environment variable name ${
        JSON.stringify(key)
      }: use letters, digits and "_", not starting with a digit`,
    });
  }
}

/** Keys of a loose table that are neither known nor tables of other plugins. */
export function extraKeys(
  obj: Record<string, unknown>,
  known: string[],
  segs: (string | number)[],
  issues: SegIssue[],
  otherTables: string[] = [],
): void {
  for (const key of Object.keys(obj)) {
    if (known.includes(key) || otherTables.includes(key)) continue;
    issues.push({
      path: tomlPath([...segs, key]),
      segments: [...segs, key],
      message: unknownKeyMessage(key, known),
    });
  }
}
