/**
 * The plugin registry: which drivers and checks exist, and loading one only when it is used.
 *
 * Plugin directories mirror the project's layout (`<dir>/drivers/<mode>.ts`,
 * `<dir>/checks/<type>.ts`), so listing them is a `readdir`, and a module is imported only when
 * a service uses its mode or check type (or `plugins list` asks). The built-ins come through the
 * same path, from the bundled listing in `_builtins.ts`.
 *
 * Directories, in order: bundled, `./plugins`, `$PROVISIONING_HOME/plugins`, then each entry
 * of `PROVISIONING_PLUGIN_PATH` (colon-separated). Two directories offering the same name are a
 * conflict, unless the later file is named `<name>.override.ts` (or `.js`, `.mjs`) and the
 * registry opts in (`[plugins] override = ["<name>"]`, see
 * {@linkcode PluginRegistry.allowOverrides}): then it replaces the earlier one. An override file
 * without the opt-in is never imported; the services using that name report it.
 *
 * @module
 */
import { basename, extname, join, resolve } from "node:path";
import { builtins } from "./builtins.ts";
import { bundledPaths, listBundled, listDir, type PluginEntry, type PluginKind } from "./_files.ts";
import { ExitCode, ProvisioningError } from "../errors.ts";
import { pluginApi } from "./api.ts";
import { whereFrom } from "../state/files.ts";
import { registryUses } from "../registry/uses.ts";
import type { Check, Driver } from "../types.ts";

export type { PluginEntry, PluginKind };

/** Where to look for plugins. */
export interface DiscoverPluginsOptions {
  cwd?: string;
  home?: string;
  env?: Record<string, string | undefined>;
}

/** A plugin that cannot be used: it failed to import, threw, is malformed or conflicts. */
export class PluginError extends ProvisioningError {
  override name = "PluginError";
  /** The plugin file (every file involved, for a conflict). */
  files: string[];
  constructor(message: string, files: string[], opts: { hints?: string[]; cause?: unknown } = {}) {
    super(message, { exitCode: ExitCode.usage, ...opts });
    this.files = files;
  }
}

/** One row of `plugins list`. */
export interface PluginInfo {
  name: string;
  kind: PluginKind;
  /** The directory it came from (`bundled` for the built-ins). */
  source: string;
  file: string;
  /** The file this one replaces (it is named `<name>.override.ts`). */
  overrides?: string;
  /** Why it cannot be used (import failed, malformed, conflict), when it cannot. */
  error?: string;
}

/** The plugin directories in order: ./plugins, $PROVISIONING_HOME/plugins, PROVISIONING_PLUGIN_PATH (the bundled one comes first). */
export function pluginDirs(
  opts: { cwd: string; home: string; env: Record<string, string | undefined> },
): string[] {
  const extra = (opts.env.PROVISIONING_PLUGIN_PATH ?? "").split(":").filter(Boolean);
  const dirs = [join(opts.cwd, "plugins"), join(opts.home, "plugins"), ...extra];
  return [...new Set(dirs.map((d) => resolve(opts.cwd, d)))];
}

const WHAT: Record<PluginKind, string> = { driver: "deployment mode", check: "health check type" };

/** Drivers and checks by name; imports each module at most once, on first use. */
export class PluginRegistry {
  #entries: PluginEntry[];
  #byKind: Record<PluginKind, { names: string[]; has: Set<string> }>;
  #loaded = new Map<string, Promise<Driver | Check>>();
  #allowed = new Set<string>();
  #trace?: (line: string) => void;

  /** `trace` receives one line per imported plugin module (`PROVISIONING_TRACE_PLUGINS=1`). */
  constructor(entries: PluginEntry[], opts: { trace?: (line: string) => void } = {}) {
    this.#entries = entries;
    this.#trace = opts.trace;
    const index = (kind: PluginKind) => {
      const names = [...new Set(entries.filter((e) => e.kind === kind).map((e) => e.name))];
      return { names: names.sort(), has: new Set(names) };
    };
    this.#byKind = { driver: index("driver"), check: index("check") };
  }

  /** List every plugin directory (no module is imported). */
  static discover(opts: DiscoverPluginsOptions = {}): PluginRegistry {
    const { env, cwd, home } = whereFrom(opts);
    const skip = bundledPaths(builtins);
    const entries: PluginEntry[] = [];
    for (const kind of ["driver", "check"] as const) {
      entries.push(...listBundled(builtins, kind));
      for (const dir of pluginDirs({ cwd, home, env })) entries.push(...listDir(dir, kind, skip));
    }
    const trace = env.PROVISIONING_TRACE_PLUGINS
      ? (line: string) => process.stderr.write(`${line}\n`)
      : undefined;
    return new PluginRegistry(entries, { trace });
  }

  /** Every plugin file found, in directory order. */
  entries(kind?: PluginKind): PluginEntry[] {
    return this.#entries.filter((e) => !kind || e.kind === kind);
  }

  /** The available names of a kind, sorted. */
  names(kind: PluginKind): string[] {
    return [...this.#byKind[kind].names];
  }

  has(kind: PluginKind, name: string): boolean {
    return this.#byKind[kind].has.has(name);
  }

  /**
   * The names (modes or check types) whose `<name>.override.*` file may replace the plugin it
   * overrides: the registry's `[plugins] override`. Replaces the previous list. Without it, an
   * override file is an error on its users and is never imported.
   */
  allowOverrides(names: Iterable<string>): void {
    const next = new Set(names);
    for (const key of this.#loaded.keys()) { // a name whose resolution changes is loaded anew
      const name = key.slice(key.indexOf(":") + 1);
      if (next.has(name) !== this.#allowed.has(name)) this.#loaded.delete(key);
    }
    this.#allowed = next;
  }

  /** The names the registry allowed to be overridden (see {@linkcode allowOverrides}). */
  allowedOverrides(): string[] {
    return [...this.#allowed];
  }

  /**
   * The entry that serves `name`, and the one it overrides. A later directory replaces an
   * earlier one only through a `<name>.override.*` file; otherwise two files are a conflict.
   */
  resolve(kind: PluginKind, name: string): { entry: PluginEntry; overrides?: PluginEntry } {
    const found = this.entries(kind).filter((e) => e.name === name);
    if (found.length === 0) {
      throw new ProvisioningError(
        `Unknown ${WHAT[kind]} "${name}": available: ${this.names(kind).join(", ")}`,
        { exitCode: ExitCode.usage },
      );
    }
    let entry = found[0];
    let overrides: PluginEntry | undefined;
    for (const next of found.slice(1)) {
      if (!next.override) {
        const base = basename(next.file);
        const ext = extname(base);
        throw new PluginError(
          `Conflicting ${kind} plugins for "${name}": "${entry.file}" and "${next.file}" (to ` +
            `replace the first, rename the second to ${base.slice(0, -ext.length)}.override${ext})`,
          [entry.file, next.file],
        );
      }
      [overrides, entry] = [entry, next];
    }
    if (overrides && !this.#allowed.has(name)) {
      throw new PluginError(
        `Not using ${kind} plugin "${entry.file}": it would override "${name}" of ` +
          `"${overrides.file}", and the registry does not allow it`,
        [entry.file, overrides.file],
        {
          hints: [
            `To use it, add to the registry: [plugins] override = ["${name}"]; else remove the file`,
          ],
        },
      );
    }
    return { entry, overrides };
  }

  /** The entry that serves `name` (see {@linkcode PluginRegistry.resolve}). */
  entry(kind: PluginKind, name: string): PluginEntry {
    return this.resolve(kind, name).entry;
  }

  /** The driver of a deployment mode, imported on first use. */
  driver(mode: string): Promise<Driver> {
    return this.#load("driver", mode) as Promise<Driver>;
  }

  /** The check of a health check type, imported on first use. */
  check(type: string): Promise<Check> {
    return this.#load("check", type) as Promise<Check>;
  }

  /**
   * Every plugin name with the file that serves it (conflicts and override files the registry
   * did not allow get `error`, found without importing anything). With `load` (true, or a
   * predicate choosing which), plugins are imported and checked too: a broken one gets `error`
   * instead of failing the list.
   */
  async list(
    opts: { load?: boolean | ((kind: PluginKind, name: string) => boolean) } = {},
  ): Promise<PluginInfo[]> {
    const rows: PluginInfo[] = [];
    const load = typeof opts.load === "function" ? opts.load : () => opts.load === true;
    for (const kind of ["driver", "check"] as const) {
      for (const name of this.names(kind)) {
        const candidates = this.entries(kind).filter((e) => e.name === name);
        try {
          const { entry, overrides } = this.resolve(kind, name);
          const row: PluginInfo = { name, kind, source: entry.source, file: entry.file };
          if (overrides) row.overrides = overrides.file;
          if (load(kind, name)) {
            await this.#load(kind, name).catch((e) => (row.error = messageOf(e)));
          }
          rows.push(row);
        } catch (e) {
          const last = candidates.at(-1)!;
          rows.push({ name, kind, source: last.source, file: last.file, error: messageOf(e) });
        }
      }
    }
    return rows;
  }

  #load(kind: PluginKind, name: string): Promise<Driver | Check> {
    const key = `${kind}:${name}`;
    let p = this.#loaded.get(key);
    if (!p) {
      try {
        const entry = this.entry(kind, name);
        this.#trace?.(`provisioning: importing ${kind} "${name}" from ${entry.file}`);
        p = importPlugin(entry);
      } catch (e) {
        p = Promise.reject(e);
      }
      p.catch(() => {}); // callers see the rejection; an unawaited one must not crash the process
      this.#loaded.set(key, p);
    }
    return p;
  }
}

/** Options of {@linkcode listPlugins}. */
export interface ListPluginsOptions extends DiscoverPluginsOptions {
  /**
   * Which plugins to import and check: `"used"` (default) those the registry uses — the ones
   * any command on it imports anyway —, `"all"` every one found (this runs their code), or
   * `"none"`.
   */
  load?: "used" | "all" | "none";
  /** The registry (default: discovered as every command does). */
  config?: string;
}

/**
 * What `plugins list` prints: every plugin found, with the opt-ins of the registry applied. A
 * read-only listing runs no plugin code the registry does not use: a file that sits in
 * `./plugins` is listed, not imported.
 */
export function listPlugins(opts: ListPluginsOptions = {}): Promise<PluginInfo[]> {
  const where = whereFrom(opts);
  const plugins = PluginRegistry.discover(where);
  const uses = registryUses({ ...where, config: opts.config });
  plugins.allowOverrides(uses.override);
  const load = opts.load ?? "used";
  return plugins.list({
    load: load === "all" ||
      (load === "used" && ((kind, name) => uses[kind].includes(name))),
  });
}

const SHAPE: Record<PluginKind, string> = {
  driver: "Driver (mode, config, preflight, start, stop, status, logs)",
  check: "Check (type, config, run)",
};

function isDriver(x: unknown): x is Driver {
  const d = x as Record<string, unknown> | undefined;
  return !!d && typeof d.mode === "string" && isSchema(d.config) &&
    ["preflight", "start", "stop", "status", "logs"].every((m) => typeof d[m] === "function");
}

function isCheck(x: unknown): x is Check {
  const c = x as Record<string, unknown> | undefined;
  return !!c && typeof c.type === "string" && isSchema(c.config) && typeof c.run === "function";
}

function isSchema(x: unknown): boolean {
  return typeof (x as { safeParse?: unknown } | undefined)?.safeParse === "function";
}

async function importPlugin(entry: PluginEntry): Promise<Driver | Check> {
  const what = `${entry.kind} plugin "${entry.file}"`;
  let plugin: unknown;
  try {
    plugin = (await entry.load()).default;
  } catch (cause) {
    throw new PluginError(`Cannot load ${what}: ${messageOf(cause)}`, [entry.file], { cause });
  }
  if (typeof plugin === "function") {
    try {
      plugin = await plugin(pluginApi);
    } catch (cause) {
      throw new PluginError(
        `Cannot load ${what}: its factory threw: ${messageOf(cause)}`,
        [entry.file],
        { cause },
      );
    }
  }
  const ok = entry.kind === "driver" ? isDriver(plugin) : isCheck(plugin);
  if (!ok) {
    throw new PluginError(
      `Invalid ${what}: its default export is not a ${SHAPE[entry.kind]}`,
      [entry.file],
      {
        hints: [
          "Default-export defineDriver({...}) / defineCheck({...}), or a function returning one",
        ],
      },
    );
  }
  const declared = entry.kind === "driver" ? (plugin as Driver).mode : (plugin as Check).type;
  if (declared !== entry.name) {
    throw new PluginError(
      `Invalid ${what}: it declares ${
        entry.kind === "driver" ? "mode" : "type"
      } "${declared}" but its file name says "${entry.name}"`,
      [entry.file],
    );
  }
  return plugin as Driver | Check;
}

function messageOf(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}
