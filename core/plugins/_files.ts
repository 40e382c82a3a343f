/**
 * Listing plugin directories without importing anything: `<dir>/drivers/<mode>.ts|.js|.mjs`
 * and `<dir>/checks/<type>.ts|.js|.mjs`, plus the bundled listing of `_builtins.ts`.
 *
 * @module
 */
import { readdirSync, realpathSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { BUILTIN_ROOT, BUILTIN_SOURCE, builtinFile, type PluginListing } from "./builtins.ts";

export type PluginKind = "driver" | "check";

/** One plugin file, not yet imported. */
export interface PluginEntry {
  kind: PluginKind;
  /** Mode (`docker-compose`) or check type (`http`). */
  name: string;
  /** The plugin directory it came from (`bundled` for the built-ins). */
  source: string;
  /** The module file (relative to the project for bundled plugins). */
  file: string;
  /** Named `<name>.override.<ext>`: it may replace a plugin of the same name from an earlier directory. */
  override?: boolean;
  load: () => Promise<{ default?: unknown }>;
}

/** Extensions a plugin file may have. */
export const PLUGIN_EXTENSIONS = [".ts", ".js", ".mjs"];
/** The sub-directory of each kind. */
export const KIND_DIR: Record<PluginKind, string> = { driver: "drivers", check: "checks" };
const OVERRIDE = ".override";

/** A file stem → the plugin name (`docker_compose` → `docker-compose` for drivers). */
export function pluginName(kind: PluginKind, stem: string): string {
  return kind === "driver" ? stem.replaceAll("_", "-") : stem;
}

/** Whether a directory entry is a plugin file (not a private helper, a test or a dotfile). */
export function isPluginFile(file: string): boolean {
  return PLUGIN_EXTENSIONS.some((e) => file.endsWith(e)) && !file.startsWith("_") &&
    !file.startsWith(".") && !/_test\.[a-z]+$/.test(file) && !file.endsWith(".d.ts");
}

function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/** The real paths of the bundled plugin files (those found on disk). */
export function bundledPaths(listing: PluginListing): Set<string> {
  return new Set(Object.keys(listing).map((k) => real(join(BUILTIN_ROOT, builtinFile(k)))));
}

/**
 * The plugins of one kind in `dir`, sorted by file name. Files in `skip` (real paths: the
 * bundled ones, when `./plugins` is this project's own folder) are left out.
 */
export function listDir(dir: string, kind: PluginKind, skip = new Set<string>()): PluginEntry[] {
  let files: string[];
  try {
    files = readdirSync(join(dir, KIND_DIR[kind]));
  } catch {
    return [];
  }
  const entries: PluginEntry[] = [];
  for (const f of files.sort()) {
    if (!isPluginFile(f)) continue;
    const file = join(dir, KIND_DIR[kind], f);
    if (skip.has(real(file))) continue;
    let stem = f.slice(0, f.lastIndexOf("."));
    const override = stem.endsWith(OVERRIDE);
    if (override) stem = stem.slice(0, -OVERRIDE.length);
    entries.push({
      kind,
      name: pluginName(kind, stem),
      source: dir,
      file,
      ...(override ? { override } : {}),
      load: () => import(pathToFileURL(file).href),
    });
  }
  return entries;
}

/** The bundled plugins of one kind (`drivers/x`, `checks/x`). */
export function listBundled(listing: PluginListing, kind: PluginKind): PluginEntry[] {
  return Object.keys(listing).filter((k) => k.split("/").at(-2) === KIND_DIR[kind]).map((key) => ({
    kind,
    name: pluginName(kind, key.split("/").at(-1)!),
    source: BUILTIN_SOURCE,
    file: builtinFile(key),
    load: listing[key],
  }));
}
