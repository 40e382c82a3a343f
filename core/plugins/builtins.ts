/**
 * The bundled plugin directory: the built-in drivers (`drivers/`) and checks (`checks/`), as
 * lazy imports. It is a directory listing written as code so that bundles and
 * the standalone binary carry it; the loader treats it like any other plugin directory.
 * `tests/core/plugins_test.ts` keeps it in step with the files on disk.
 *
 * @module
 */
import { PROJECT_ROOT } from "../runtime/assets.ts";

/** A directory's plugins: `<kind>/<name>` → import of the module. */
export type PluginListing = Record<string, () => Promise<{ default?: unknown }>>;

export const BUILTIN_SOURCE = "bundled";

/**
 * The project folder the bundled files live in (the parent of `core/`; `<bundled>/` in a bundle
 * or binary, which carry them compiled in); only used to recognise the project's own
 * `plugins/` when it is also `./plugins`.
 */
export const BUILTIN_ROOT: string = PROJECT_ROOT;

export const builtins: PluginListing = {
  "drivers/binary": () => import("../../drivers/binary.ts"),
  "drivers/docker": () => import("../../drivers/docker.ts"),
  "drivers/docker_compose": () => import("../../drivers/docker_compose.ts"),
  "drivers/kubernetes": () => import("../../drivers/kubernetes.ts"),
  "drivers/remote": () => import("../../drivers/remote.ts"),
  "checks/http": () => import("../../checks/http.ts"),
  "checks/tcp": () => import("../../checks/tcp.ts"),
  "checks/command": () => import("../../checks/command.ts"),
  "checks/file": () => import("../../checks/file.ts"),
  "drivers/shell": () => import("../../drivers/shell.ts"),
  "checks/dns": () => import("../../checks/dns.ts"),
};

/** Where each bundled entry lives in the source tree (for `plugins list` and error messages). */
export function builtinFile(key: string): string {
  return `${key}.ts`;
}
