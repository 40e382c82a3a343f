/**
 * The program's version and the commit it was built from, for `--version`:
 * `provisioning 0.1.0 (abc1234)`. A build (bundle, binary) carries both, embedded by
 * `scripts/build.ts`; a run from the source tree says so and reads the commit from `.git` (two
 * small files, no `git` process): `provisioning 0.1.0 (abc1234, source)`, or `(source)`.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BUILD } from "./_embedded.ts";
import { PROJECT_ROOT } from "./assets.ts";

/** The version (as in package.json; `tests/core/runtime_test.ts` keeps the two in step). */
export const VERSION: string = BUILD?.version ?? "0.1.0";

/**
 * The commit this program was built from (`abc1234`, `abc1234-dirty` when the tree had
 * uncommitted changes), or the source tree's HEAD; `undefined` when neither is known.
 */
export function buildCommit(): string | undefined {
  return BUILD ? BUILD.commit : sourceCommit(join(PROJECT_ROOT, ".git"));
}

/** `provisioning 0.1.0 (abc1234)` for a build, `(abc1234, source)` or `(source)` otherwise. */
export function versionLine(): string {
  const commit = buildCommit();
  const from = BUILD ? commit : commit ? `${commit}, source` : "source";
  return `provisioning ${VERSION} (${from})`;
}

/** The short commit of `.git`'s HEAD, read from its files; `undefined` when there is none. */
export function sourceCommit(gitDir: string): string | undefined {
  const read = (f: string) => {
    try {
      return readFileSync(join(gitDir, f), "utf8").trim();
    } catch {
      return undefined;
    }
  };
  const head = read("HEAD");
  if (!head) return undefined;
  const ref = /^ref: (.+)$/.exec(head)?.[1];
  if (!ref) return /^[0-9a-f]{40}$/.test(head) ? head.slice(0, 7) : undefined;
  const loose = read(ref);
  if (loose && /^[0-9a-f]{40}$/.test(loose)) return loose.slice(0, 7);
  const packed = read("packed-refs")?.split("\n").find((l) => l.endsWith(` ${ref}`));
  return packed && /^[0-9a-f]{40} /.test(packed) ? packed.slice(0, 7) : undefined;
}
