/**
 * Files of the program's own tree (the bundled registry and its JSON Schema), read the same way
 * on every runtime through {@linkcode readOwnFile}: from disk in the source tree, from text
 * embedded at build time in the Node bundle (`dist/cli.cjs`, `dist/cli.mjs`) and the standalone
 * binary, which carry no tree of their own. There, {@linkcode ownFile} names them `<bundled>/config/…`.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { EMBEDDED } from "./_embedded.ts";

/** How a bundle or binary names the files it embeds: `<bundled>/config/services.toml`. */
export const BUNDLED_PREFIX = "<bundled>/";

/** Whether this is a build (bundle or binary) that carries its files embedded. */
export const IS_BUILD: boolean = EMBEDDED !== undefined;

/**
 * The project folder: two levels above this file in the source tree; {@linkcode BUNDLED_PREFIX}
 * in a build (which reads nothing of the project from disk).
 */
export const PROJECT_ROOT: string = (() => {
  if (IS_BUILD) return BUNDLED_PREFIX;
  try {
    return fileURLToPath(new URL("../../", import.meta.url));
  } catch {
    return "/nonexistent/"; // not a file: URL (an unknown bundler)
  }
})();

/** The path of `rel` (e.g. `config/services.toml`) in the program's own tree, as shown to users. */
export function ownFile(rel: string): string {
  return PROJECT_ROOT.replace(/\/?$/, "/") + rel;
}

/**
 * The text of `rel` in the program's own tree: read from disk in the source tree, embedded in
 * a build. Throws `Error` with `code` `ENOENT` for a file that is in neither.
 */
export function readOwnFile(rel: string): string {
  if (!EMBEDDED) return readFileSync(ownFile(rel), "utf8");
  const text = EMBEDDED[rel];
  if (text !== undefined) return text;
  throw Object.assign(
    new Error(`Cannot read "${ownFile(rel)}": this build does not embed it`),
    { code: "ENOENT" },
  );
}

/**
 * The embedded text of `path` when it is a file a build embeds (`<bundled>/config/…`), else
 * `undefined` (then it is an ordinary file: read it from disk).
 */
export function embeddedText(path: string): string | undefined {
  if (!EMBEDDED || !path.startsWith(BUNDLED_PREFIX)) return undefined;
  return EMBEDDED[path.slice(BUNDLED_PREFIX.length)];
}
