/**
 * What a build embeds: in the source tree, nothing (`readOwnFile` reads the files from disk and
 * `--version` says `(source)`). `scripts/build.ts` replaces this module, in the bundle and the
 * binary only, with one holding the text of {@linkcode EMBEDDED_FILES} and the version and
 * commit it was built from. Nothing imports it but `assets.ts` and `version.ts`.
 *
 * @module
 */

/** The files of the program's own tree that a build embeds (paths relative to the project). */
export const EMBEDDED_FILES: readonly string[] = [
  "config/services.toml",
  "config/services.schema.json",
];

/** Relative path → text, in a build; `undefined` in the source tree. */
export const EMBEDDED: Readonly<Record<string, string>> | undefined = undefined;

/** The version and commit (`abc1234`, `-dirty` when the tree had changes) of a build. */
export const BUILD: { version: string; commit: string } | undefined = undefined;
