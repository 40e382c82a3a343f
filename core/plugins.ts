/**
 * The plugin registry: which drivers and checks exist, and loading one only when it is used.
 *
 * Plugin directories mirror the project's layout (`<dir>/drivers/<mode>.ts`,
 * `<dir>/checks/<type>.ts`), so listing them is a `readdir`, and a module is imported only when
 * a service uses its mode or check type. The built-ins come through the same path, from the
 * bundled listing in `_builtins.ts`.
 *
 * @module
 */
import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { BUILTIN_SOURCE, builtinFile, builtins, type PluginListing } from "./_builtins.ts";
import { ExitCode, ProvisioningError } from "./errors.ts";
import type { Check, Driver } from "./types.ts";

export type PluginKind = "driver" | "check";

/** One plugin file, not yet imported. */
export interface PluginEntry {
  kind: PluginKind;
  /** Mode (`docker-compose`) or check type (`http`). */
  name: string;
  /** The plugin directory it came from (`bundled` for the built-ins). */
  source: string;
  /** The module file. */
  file: string;
  load: () => Promise<{ default?: unknown }>;
}

const EXTENSIONS = [".ts", ".js", ".mjs"];
const KIND_DIR: Record<PluginKind, string> = { driver: "drivers", check: "checks" };

/** The plugin directories in order: bundled, ./plugins, $PROVISIONING_HOME/plugins, PROVISIONING_PLUGIN_PATH. */
export function pluginDirs(
  opts: { cwd: string; home: string; env: Record<string, string | undefined> },
): string[] {
  const extra = (opts.env.PROVISIONING_PLUGIN_PATH ?? "").split(":").filter(Boolean);
  const dirs = [join(opts.cwd, "plugins"), join(opts.home, "plugins"), ...extra];
  return [...new Set(dirs.map((d) => resolve(opts.cwd, d)))];
}

function listDir(dir: string, kind: PluginKind): PluginEntry[] {
  let files: string[];
  try {
    files = readdirSync(join(dir, KIND_DIR[kind]));
  } catch {
    return [];
  }
  const entries: PluginEntry[] = [];
  for (const f of files.sort()) {
    const ext = EXTENSIONS.find((e) => f.endsWith(e));
    if (!ext || f.startsWith("_") || f.startsWith(".") || /_test\.[a-z]+$/.test(f)) continue;
    const stem = f.slice(0, -ext.length);
    const file = join(dir, KIND_DIR[kind], f);
    entries.push({
      kind,
      name: kind === "driver" ? stem.replaceAll("_", "-") : stem,
      source: dir,
      file,
      load: () => import(pathToFileURL(file).href),
    });
  }
  return entries;
}

function listBundled(listing: PluginListing, kind: PluginKind): PluginEntry[] {
  const prefix = `${KIND_DIR[kind]}/`;
  return Object.keys(listing).filter((k) => k.startsWith(prefix)).map((key) => {
    const stem = key.slice(prefix.length);
    return {
      kind,
      name: kind === "driver" ? stem.replaceAll("_", "-") : stem,
      source: BUILTIN_SOURCE,
      file: builtinFile(key),
      load: listing[key],
    };
  });
}

function isDriver(x: unknown): x is Driver {
  const d = x as Driver;
  return !!d && typeof d.mode === "string" && typeof d.config?.safeParse === "function" &&
    ["preflight", "start", "stop", "status", "logs"].every((m) =>
      typeof (d as unknown as Record<string, unknown>)[m] === "function"
    );
}

function isCheck(x: unknown): x is Check {
  const c = x as Check;
  return !!c && typeof c.type === "string" && typeof c.config?.safeParse === "function" &&
    typeof c.run === "function";
}

/** Drivers and checks by name; imports each module at most once, on first use. */
export class PluginRegistry {
  #entries: PluginEntry[];
  #loaded = new Map<string, Promise<Driver | Check>>();

  constructor(entries: PluginEntry[]) {
    this.#entries = entries;
  }

  /** List every plugin directory (no module is imported). */
  static discover(
    opts: { cwd: string; home: string; env: Record<string, string | undefined> },
  ): PluginRegistry {
    const entries: PluginEntry[] = [];
    for (const kind of ["driver", "check"] as const) {
      entries.push(...listBundled(builtins, kind));
      for (const dir of pluginDirs(opts)) entries.push(...listDir(dir, kind));
    }
    return new PluginRegistry(entries);
  }

  /** Every plugin file found, in directory order. */
  entries(kind?: PluginKind): PluginEntry[] {
    return this.#entries.filter((e) => !kind || e.kind === kind);
  }

  /** The available names of a kind, sorted. */
  names(kind: PluginKind): string[] {
    return [...new Set(this.entries(kind).map((e) => e.name))].sort();
  }

  has(kind: PluginKind, name: string): boolean {
    return this.entries(kind).some((e) => e.name === name);
  }

  /** The entry that serves `name`; two directories offering the same name is a conflict. */
  entry(kind: PluginKind, name: string): PluginEntry {
    const found = this.entries(kind).filter((e) => e.name === name);
    if (found.length === 0) {
      throw new ProvisioningError(
        `Unknown ${
          kind === "driver" ? "deployment mode" : "health check type"
        } "${name}": available: ${this.names(kind).join(", ")}`,
        { exitCode: ExitCode.usage },
      );
    }
    if (found.length > 1) {
      throw new ProvisioningError(
        `Conflicting ${kind} plugins for "${name}": ${found.map((e) => e.file).join(" and ")}`,
        { exitCode: ExitCode.usage, hints: ["Remove or rename one of them"] },
      );
    }
    return found[0];
  }

  /** The driver of a deployment mode, imported on first use. */
  driver(mode: string): Promise<Driver> {
    return this.#load("driver", mode) as Promise<Driver>;
  }

  /** The check of a health check type, imported on first use. */
  check(type: string): Promise<Check> {
    return this.#load("check", type) as Promise<Check>;
  }

  #load(kind: PluginKind, name: string): Promise<Driver | Check> {
    const key = `${kind}:${name}`;
    let p = this.#loaded.get(key);
    if (!p) {
      const entry = this.entry(kind, name);
      p = importPlugin(entry);
      this.#loaded.set(key, p);
    }
    return p;
  }
}

async function importPlugin(entry: PluginEntry): Promise<Driver | Check> {
  let mod: { default?: unknown };
  try {
    mod = await entry.load();
  } catch (cause) {
    throw new ProvisioningError(
      `Cannot load ${entry.kind} plugin "${entry.file}": ${(cause as Error)?.message ?? cause}`,
      { exitCode: ExitCode.usage, cause },
    );
  }
  const plugin = mod.default;
  const ok = entry.kind === "driver" ? isDriver(plugin) : isCheck(plugin);
  if (!ok) {
    throw new ProvisioningError(
      `Invalid ${entry.kind} plugin "${entry.file}": its default export is not a ${
        entry.kind === "driver"
          ? "Driver (mode, config, preflight, start, stop, status, logs)"
          : "Check (type, config, run)"
      }`,
      { exitCode: ExitCode.usage },
    );
  }
  const declared = entry.kind === "driver" ? (plugin as Driver).mode : (plugin as Check).type;
  if (declared !== entry.name) {
    throw new ProvisioningError(
      `Invalid ${entry.kind} plugin "${entry.file}": it declares "${declared}" but its file name says "${entry.name}"`,
      { exitCode: ExitCode.usage },
    );
  }
  return plugin as Driver | Check;
}
