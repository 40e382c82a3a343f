/**
 * Files of the program's own tree (the bundled registry, the entry points), found the same way
 * from the source tree (`core/runtime/assets.ts`) and from the one-file bundle (`dist/cli.mjs`),
 * where this module's URL is the bundle's.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/** The project folder: two levels above this file in the source tree, one above `dist/`. */
export const PROJECT_ROOT: string = (() => {
  try {
    const here = import.meta.url;
    return fileURLToPath(
      new URL(here.endsWith("/core/runtime/assets.ts") ? "../../" : "../", here),
    );
  } catch {
    return "/nonexistent/"; // a standalone binary's virtual file system
  }
})();

/** The absolute path of `rel` (e.g. `config/services.toml`) in the program's own tree. */
export function ownFile(rel: string): string {
  return PROJECT_ROOT.replace(/\/?$/, "/") + rel;
}
