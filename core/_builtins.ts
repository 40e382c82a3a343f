/**
 * The bundled plugin directory: the built-in drivers and checks and the plugins shipped in
 * `plugins/`, as lazy imports. It is a directory listing written as code so that bundles and
 * the standalone binary carry it; the loader treats it like any other plugin directory.
 * `tests/core/plugins_test.ts` keeps it in step with the files on disk.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/** A directory's plugins: `[plugins/]<kind>/<name>` → import of the module. */
export type PluginListing = Record<string, () => Promise<{ default?: unknown }>>;

export const BUILTIN_SOURCE = "bundled";

/**
 * The project folder the bundled files live in (the parent of `core/`, or of `dist/` in the
 * bundle); only used to recognise the project's own `plugins/` when it is also `./plugins`.
 */
export const BUILTIN_ROOT: string = (() => {
  try {
    return fileURLToPath(new URL("../", import.meta.url));
  } catch {
    return "/nonexistent/"; // a standalone binary's virtual file system
  }
})();

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
  "plugins/drivers/shell": () => import("../plugins/drivers/shell.ts"),
  "plugins/checks/dns": () => import("../plugins/checks/dns.ts"),
};

/** Where each bundled entry lives in the source tree (for `plugins list` and error messages). */
export function builtinFile(key: string): string {
  return `${key}.ts`;
}
