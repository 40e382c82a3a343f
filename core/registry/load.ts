/**
 * Loading the service registry: a list of small named steps, each testable alone —
 * discover → read → parse → expand variables → validate schema (with defaults) → validate plugin
 * tables → validate graph. Every problem is collected, with its TOML path and line, and reported
 * at once.
 *
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parse, TomlError } from "smol-toml";
import type { z } from "zod";
import { type Env, expandTree } from "./_expand.ts";
import { lineOf, locateKeys } from "./_toml_lines.ts";
import { RegistryError } from "../errors.ts";
import { Graph } from "../graph/graph.ts";
import type { PluginRegistry } from "../plugins/registry.ts";
import { ownFile } from "../runtime/assets.ts";
import { whereFrom } from "../state/files.ts";
import { unknownKeyMessage, zodIssues } from "./_zod_issues.ts";
import {
  healthCheckBaseSchema,
  modeTable,
  registrySchema,
  SERVICE_NAME_RE,
  serviceSchema,
  tomlPath,
} from "./schema.ts";
import type { Registry, RegistryIssue, Service } from "../types.ts";

/** The bundled registry shipped with the tool. */
export const BUNDLED_REGISTRY = ownFile("config/services.toml");

export interface DiscoverOptions {
  /** `--config FILE`. */
  config?: string;
  cwd?: string;
  env?: Env;
}

/** Find the registry file: `--config`, `PROVISIONING_SERVICES`, project, home, bundled. */
export function discoverRegistry(opts: DiscoverOptions = {}): { file: string; source: string } {
  const { env, cwd } = whereFrom({ env: opts.env, cwd: opts.cwd });
  if (opts.config) return { file: resolve(cwd, opts.config), source: "--config" };
  if (env.PROVISIONING_SERVICES) {
    return { file: resolve(cwd, env.PROVISIONING_SERVICES), source: "PROVISIONING_SERVICES" };
  }
  const project = join(cwd, "provisioning", "config", "services.toml");
  if (existsSync(project)) return { file: project, source: "project" };
  const home = join(env.PROVISIONING_HOME ?? join(env.HOME ?? homedir(), ".provisioning"));
  const inHome = join(home, "config", "services.toml");
  if (existsSync(inHome)) return { file: inHome, source: "home" };
  return { file: BUNDLED_REGISTRY, source: "bundled" };
}

/** Parsed TOML plus where each key was written. */
export interface ParsedToml {
  data: Record<string, unknown>;
  /**
   * Dotted path → 1-based line. Located on first access only: a valid registry never needs it,
   * and scanning a large file for key lines costs more than parsing it.
   */
  readonly lines: Map<string, number>;
}

/** Step: parse. A syntax error becomes one issue with line and column. */
export function parseRegistryToml(source: string): ParsedToml | RegistryIssue {
  try {
    const data = parse(source) as Record<string, unknown>;
    let lines: Map<string, number> | undefined;
    return {
      data,
      get lines() {
        return (lines ??= locateKeys(source));
      },
    };
  } catch (e) {
    if (!(e instanceof TomlError)) throw e;
    const detail = e.message.split("\n")[0].replace(/^Invalid TOML document: /, "");
    return { path: "", message: `TOML syntax error: ${detail}`, line: e.line, column: e.column };
  }
}

/** The result of validating a registry: the registry when there is no problem, and every problem. */
export interface Validation {
  registry?: Registry;
  /** Service names in file order (also when invalid). */
  names: string[];
  /** The services that passed their own checks (graph problems aside), in file order. */
  services: Service[];
  issues: RegistryIssue[];
}

export interface LoadOptions extends DiscoverOptions {
  plugins: PluginRegistry;
  /** Validate this text instead of reading the file. */
  source?: string;
}

/** Run every step and return all issues (never throws for a bad registry). */
export async function validateRegistry(opts: LoadOptions): Promise<Validation> {
  const env = opts.env ?? process.env;
  const { file, source: how } = discoverRegistry(opts);
  let text = opts.source;
  if (text === undefined) {
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      const reason = (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : String(e);
      return {
        names: [],
        services: [],
        issues: [{ path: "", message: `Cannot read registry: ${reason}` }],
      };
    }
  }
  const parsed = parseRegistryToml(text);
  if (!("data" in parsed)) return { names: [], services: [], issues: [parsed] };
  const { data } = parsed; // parsed.lines is read only when there is an issue to place
  const at = (issue: RegistryIssue, segs: (string | number)[]): RegistryIssue => ({
    ...issue,
    line: issue.line ?? lineOf(parsed.lines, segs),
  });

  const issues: RegistryIssue[] = [];
  const top = registrySchema.safeParse(data, { reportInput: true });
  if (!top.success) {
    issues.push(...zodIssues(top.error, registrySchema, []).map((i) => at(i, i.segments)));
    if (!data.services || typeof data.services !== "object") {
      return { names: [], services: [], issues };
    }
  }
  const rawServices = (data.services ?? {}) as Record<string, unknown>;
  const names = Object.keys(rawServices);
  const vars = { ...env, PROVISIONING_REGISTRY_DIR: dirname(file) };
  for (const i of expandTree(rawServices, vars, ["services"])) {
    issues.push({
      ...i,
      line: parsed.lines.get(i.path) ?? lineOf(parsed.lines, i.path.split(".")),
    });
  }

  const services: Service[] = [];
  for (const name of names) {
    const svc = await validateService(name, rawServices[name], opts.plugins);
    issues.push(...svc.issues.map((i) => at({ ...i, service: name }, i.segments)));
    if (svc.service) services.push(svc.service);
  }

  const graph = new Graph(services);
  for (const p of graph.problems()) {
    issues.push({ ...p, line: lineOf(parsed.lines, p.path.split(".")) });
  }
  const result: Validation = {
    names,
    services,
    issues: issues.map(({ segments: _, unusable: __, ...i }: Issue) => i),
  };
  if (issues.every(isUnusable)) { // a broken plugin affects only the services that use it
    result.registry = {
      file,
      source: how,
      services,
      byName: new Map(services.map((s) => [s.name, s])),
    };
  }
  return result;
}

/** Load and validate; throws a RegistryError listing every problem. */
export async function loadRegistry(opts: LoadOptions): Promise<Registry> {
  const v = await validateRegistry(opts);
  if (!v.registry) throw new RegistryError(discoverRegistry(opts).file, v.issues);
  return v.registry;
}

/**
 * `unusable`: the plugin of this service failed to load (import error, malformed, conflict).
 * The service stays in the registry — its use reports the plugin — and the others load.
 */
type Issue = RegistryIssue & { segments?: (string | number)[]; unusable?: boolean };

const isUnusable = (i: Issue): boolean => i.unusable === true;

/** Step: one `[services.X]` table against the base schema and its plugins' schemas. */
async function validateService(
  name: string,
  raw: unknown,
  plugins: PluginRegistry,
): Promise<{ service?: Service; issues: (RegistryIssue & { segments: (string | number)[] })[] }> {
  const base = ["services", name];
  const issues: (RegistryIssue & { segments: (string | number)[] })[] = [];
  const add = (segments: (string | number)[], message: string) =>
    issues.push({ path: tomlPath(segments), message, segments });

  if (!SERVICE_NAME_RE.test(name) || name.includes("..")) {
    add(
      base,
      `Invalid service name ${
        JSON.stringify(name)
      }: use lowercase letters, digits, ".", "_" and "-", starting with a letter or digit`,
    );
  }
  const parsed = serviceSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    issues.push(...zodIssues(parsed.error, serviceSchema, base));
    return { issues };
  }
  const svc = parsed.data;
  if (svc.name !== undefined && svc.name !== name) {
    add([...base, "name"], `Must match the table key "${name}" (got "${svc.name}")`);
  }

  // deployment: `mode` plus the table of that mode.
  const deployment: Record<string, unknown> = { mode: svc.deployment.mode };
  const mode = svc.deployment.mode;
  const dSegs = [...base, "deployment"];
  await pluginTable(
    plugins,
    "driver",
    mode,
    svc.deployment,
    dSegs,
    modeTable(mode),
    issues,
    (v) => deployment[modeTable(mode)] = v,
  );

  // health_check: type plus the table of that type (none needs none).
  const hc = svc.health_check;
  const health: Record<string, unknown> = {
    type: hc.type,
    interval: hc.interval,
    retries: hc.retries,
    timeout: hc.timeout,
  };
  if (hc.type !== "none") {
    await pluginTable(
      plugins,
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
  if (!issues.every(isUnusable)) return { issues };
  return {
    issues,
    service: {
      ...svc,
      name,
      deployment: deployment as Service["deployment"],
      health_check: health as Service["health_check"],
    },
  };
}

/** Validate the plugin-owned sub-table `table` of `parent` (e.g. deployment.binary). */
async function pluginTable(
  plugins: PluginRegistry,
  kind: "driver" | "check",
  name: string,
  parent: Record<string, unknown>,
  segs: (string | number)[],
  table: string,
  issues: (RegistryIssue & { segments: (string | number)[] })[],
  set: (value: unknown) => void,
): Promise<void> {
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
    if (issue.unusable) set(parent[table]); // kept unvalidated: using the service reports the plugin
    return;
  }
  const r = (plugin.config as z.ZodType).safeParse(parent[table], { reportInput: true });
  if (r.success) set(r.data);
  else issues.push(...zodIssues(r.error, plugin.config as z.ZodType, [...segs, table]));
}

/** Keys of a loose table that are neither known nor tables of other plugins. */
function extraKeys(
  obj: Record<string, unknown>,
  known: string[],
  segs: (string | number)[],
  issues: (RegistryIssue & { segments: (string | number)[] })[],
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
