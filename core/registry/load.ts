/**
 * Loading the service registry: a list of small named steps, each testable alone —
 * discover → read (`_read.ts`) → parse → expand variables → validate each service: schema (with
 * defaults) and plugin tables (`_service.ts`, `_plugin_tables.ts`) → validate graph. Every
 * problem is collected, with its TOML path and line, and reported at once: only a file that
 * cannot be read or parsed stops early, and each later step sees every service, valid or not.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parse, TomlError } from "smol-toml";
import { type Env, expandTree } from "./_expand.ts";
import { isPluginTable, type Issue, isUnusable, pluginOverrides } from "./_plugin_tables.ts";
import { lineOf, locateKeys } from "./_toml_lines.ts";
import { readRegistryFile } from "./_read.ts";
import { validateService } from "./_service.ts";
import { RegistryError } from "../errors.ts";
import { Graph, type GraphNode } from "../graph/graph.ts";
import type { PluginRegistry } from "../plugins/registry.ts";
import { ownFile } from "../runtime/assets.ts";
import { whereFrom } from "../state/files.ts";
import { zodIssues } from "./_zod_issues.ts";
import { registrySchema, tomlPath } from "./schema.ts";
import type { Registry, RegistryIssue, Service } from "../types.ts";

export { MAX_REGISTRY_BYTES, readRegistryFile } from "./_read.ts";

/** The bundled registry shipped with the tool. */
export const BUNDLED_REGISTRY = ownFile("config/services.toml");

export interface DiscoverOptions {
  /** `--config FILE`. */
  config?: string;
  cwd?: string;
  env?: Env;
  /**
   * Told that nothing else was found and the bundled registry is used. Default: one line on
   * stderr, once per process (JSON output goes to stdout and stays one document); `null` keeps
   * quiet.
   */
  notice?: ((line: string) => void) | null;
}

/** Where a registry file was found: the five places of {@linkcode discoverRegistry}. */
export type RegistrySource = "--config" | "PROVISIONING_SERVICES" | "project" | "home" | "bundled";

/** Find the registry file: `--config`, `PROVISIONING_SERVICES`, project, home, bundled. */
export function discoverRegistry(
  opts: DiscoverOptions = {},
): { file: string; source: RegistrySource } {
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
  const notice = opts.notice === undefined ? onceToStderr : opts.notice;
  notice?.(
    `Using the bundled registry ${BUNDLED_REGISTRY}: found no --config, ` +
      `PROVISIONING_SERVICES, ${project} or ${inHome}`,
  );
  return { file: BUNDLED_REGISTRY, source: "bundled" };
}

let bundledNoticed = false;

/** The default notice: one line on stderr, the first time only (a command looks more than once). */
function onceToStderr(line: string): void {
  if (bundledNoticed) return;
  bundledNoticed = true;
  process.stderr.write(`${line}\n`);
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
  /** The file read (absolute), and how it was found. */
  file: string;
  source: RegistrySource;
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

/**
 * Run every step and return all issues (never throws for a bad registry). Only a file that
 * cannot be read or parsed stops the run; after that each step sees every service, valid or
 * not, so one run reports every problem of every step.
 */
export async function validateRegistry(opts: LoadOptions): Promise<Validation> {
  const env = opts.env ?? process.env;
  const { file, source: how } = discoverRegistry(opts);
  const none = (issues: RegistryIssue[]): Validation => ({
    file,
    source: how,
    names: [],
    services: [],
    issues,
  });
  let text = opts.source;
  if (text === undefined) {
    const read = readRegistryFile(file);
    if ("issue" in read) return none([read.issue]);
    text = read.text;
  }
  const parsed = parseRegistryToml(text);
  if (!("data" in parsed)) return none([parsed]);
  const { data } = parsed; // parsed.lines is read only when there is an issue to place
  const at = (issue: RegistryIssue, segs: (string | number)[]): RegistryIssue => ({
    ...issue,
    line: issue.line ?? lineOf(parsed.lines, segs),
  });

  const issues: RegistryIssue[] = [];
  const top = registrySchema.safeParse(data, { reportInput: true });
  if (!top.success) {
    issues.push(...zodIssues(top.error, registrySchema, []).map((i) => at(i, i.segments)));
    if (!data.services || typeof data.services !== "object") return none(issues);
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
  const nodes: GraphNode[] = [];
  const ctx = { plugins: opts.plugins, vars };
  for (const name of names) {
    const svc = await validateService(name, rawServices[name], ctx);
    issues.push(...svc.issues.map((i) => at({ ...i, service: name }, i.segments)));
    if (svc.service) services.push(svc.service);
    nodes.push(svc.node);
  }
  for (const i of graphIssues(nodes)) issues.push(at(i, i.segments));

  const result: Validation = {
    file,
    source: how,
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

/**
 * Step: validate graph, over every service, valid or not — a schema error in a service must not
 * hide its unknown dependencies — with every service on a cycle reported on its own.
 */
export function graphIssues(nodes: GraphNode[]): (RegistryIssue & { segments: string[] })[] {
  return new Graph(nodes).problems({ everyCycleMember: true }).map((p) => {
    const head = `services.${p.service}`;
    const key = p.path.startsWith(`${head}.`) ? p.path.slice(head.length + 1) : undefined;
    const segments = ["services", p.service, ...(key ? [key] : [])];
    return { service: p.service, path: tomlPath(segments), message: p.message, segments };
  });
}

/** Load and validate; throws a RegistryError listing every problem. */
export async function loadRegistry(opts: LoadOptions): Promise<Registry> {
  const v = await validateRegistry(opts);
  if (!v.registry) throw new RegistryError(v.file, v.issues);
  return v.registry;
}
