/**
 * The bundled plugin directory: the built-in drivers and checks and the plugins shipped in
 * `plugins/`, as lazy imports. It is a directory listing written as code so that bundles and
 * the standalone binary carry it; the loader treats it like any other plugin directory.
 * `tests/core/plugins_test.ts` keeps it in step with the files on disk.
 *
 * @module
 */

/** A directory's plugins: `<kind>/<name>` → import of the module. */
export type PluginListing = Record<string, () => Promise<{ default?: unknown }>>;

export const BUILTIN_SOURCE = "bundled";

export const builtins: PluginListing = {
  "drivers/binary": () => import("../drivers/binary.ts"),
  "drivers/docker": () => import("../drivers/docker.ts"),
  "drivers/docker_compose": () => import("../drivers/docker_compose.ts"),
  "drivers/kubernetes": () => import("../drivers/kubernetes.ts"),
  "drivers/remote": () => import("../drivers/remote.ts"),
  "checks/http": () => import("../checks/http.ts"),
  "checks/tcp": () => import("../checks/tcp.ts"),
  "checks/command": () => import("../checks/command.ts"),
  "checks/file": () => import("../checks/file.ts"),
};

/** Where each bundled entry lives in the source tree (for `plugins list` and error messages). */
export function builtinFile(key: string): string {
  return `${key}.ts`;
}
