/**
 * Loading the service registry: a list of small named steps, each testable alone —
 * discover → read (`_read.ts`) → parse → expand variables → validate schema (with defaults) →
 * validate plugin tables (`_plugin_tables.ts`) → validate graph. Every problem is collected,
 * with its TOML path and line, and reported at once.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parse, TomlError } from "smol-toml";
import { type Env, expandTree } from "./_expand.ts";
import { nameProblem } from "../names.ts";
import {
  extraKeys,
  isPluginTable,
  type Issue,
  isUnusable,
  pluginOverrides,
  pluginTable,
  type SegIssue,
  type ServiceContext,
} from "./_plugin_tables.ts";
import { lineOf, locateKeys } from "./_toml_lines.ts";
import { readRegistryFile } from "./_read.ts";
import { RegistryError } from "../errors.ts";
import { Graph } from "../graph/graph.ts";
import type { PluginRegistry } from "../plugins/registry.ts";
import { ownFile } from "../runtime/assets.ts";
import { whereFrom } from "../state/files.ts";
import { zodIssues } from "./_zod_issues.ts";
import {
  healthCheckBaseSchema,
  modeTable,
  registrySchema,
  serviceSchema,
  tomlPath,
} from "./schema.ts";
import type { Registry, RegistryIssue, Service } from "../types.ts";

export { MAX_REGISTRY_BYTES, readRegistryFile } from "./_read.ts";

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
    const read = readRegistryFile(file);
    if ("issue" in read) return { names: [], services: [], issues: [read.issue] };
    text = read.text;
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
  for (const i of pluginOverrides(data.plugins, opts.plugins)) issues.push(at(i, i.segments));

  const rawServices = (data.services ?? {}) as Record<string, unknown>;
  const names = Object.keys(rawServices);
  const vars = { ...env, PROVISIONING_REGISTRY_DIR: dirname(file) };
  // Plugin tables are expanded once their plugin is known: it says which keys are shell lines.
  for (const i of expandTree(rawServices, vars, ["services"], { skip: isPluginTable })) {
    issues.push(at(i, i.segments));
  }

  const services: Service[] = [];
  const ctx = { plugins: opts.plugins, vars };
  for (const name of names) {
    const svc = await validateService(name, rawServices[name], ctx);
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

/** Step: one `[services.X]` table against the base schema and its plugins' schemas. */
async function validateService(
  name: string,
  raw: unknown,
  ctx: ServiceContext,
): Promise<{ service?: Service; issues: SegIssue[] }> {
  const base = ["services", name];
  const issues: SegIssue[] = [];
  const add = (segments: (string | number)[], message: string) =>
    issues.push({ path: tomlPath(segments), message, segments });

  const bad = nameProblem(name);
  if (bad) add(base, bad);
  const parsed = serviceSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    issues.push(...zodIssues(parsed.error, serviceSchema, base));
    return { issues };
  }
  const svc = parsed.data;
  if (svc.name !== undefined && svc.name !== name) {
    add([...base, "name"], `Must match the table key "${name}" (got "${svc.name}")`);
  }
  svc.conflicts.forEach((other, i) => {
    if (other === name) add([...base, "conflicts", i], `"${name}" cannot conflict with itself`);
  });

  // deployment: `mode` plus the table of that mode.
  const deployment: Record<string, unknown> = { mode: svc.deployment.mode };
  const mode = svc.deployment.mode;
  const dSegs = [...base, "deployment"];
  await pluginTable(
    ctx,
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
