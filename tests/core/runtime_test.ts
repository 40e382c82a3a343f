/**
 * `core/runtime/assets.ts` and `version.ts` in the source tree: the program's own files read
 * from disk through `readOwnFile`, what a build embeds exists, the version matches
 * package.json, and the commit is read from `.git` without running git.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EMBEDDED_FILES } from "../../core/runtime/_embedded.ts";
import {
  BUNDLED_PREFIX,
  embeddedText,
  IS_BUILD,
  ownFile,
  readOwnFile,
} from "../../core/runtime/assets.ts";
import { sourceCommit, VERSION, versionLine } from "../../core/runtime/version.ts";
import { BUNDLED_REGISTRY } from "../../core/registry/load.ts";
import { ROOT } from "../_cli.ts";

Deno.test("readOwnFile reads the program's own files from the source tree", () => {
  assert.equal(IS_BUILD, false);
  assert.equal(ownFile("config/services.toml"), join(ROOT, "config/services.toml"));
  assert.equal(BUNDLED_REGISTRY, join(ROOT, "config/services.toml"));
  for (const rel of EMBEDDED_FILES) {
    assert.equal(readOwnFile(rel), readFileSync(join(ROOT, rel), "utf8"), rel);
  }
  assert.throws(() => readOwnFile("config/nope.toml"), { code: "ENOENT" });
});

Deno.test("nothing is embedded in the source tree: <bundled>/ paths are ordinary paths there", () => {
  assert.equal(embeddedText(`${BUNDLED_PREFIX}config/services.toml`), undefined);
  assert.equal(embeddedText(join(ROOT, "config/services.toml")), undefined);
});

Deno.test("the version is package.json's; a source run names its commit and says source", () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  assert.equal(VERSION, pkg.version);
  assert.match(versionLine(), new RegExp(`^provisioning ${VERSION} \\(([0-9a-f]{7}, )?source\\)$`));
});

Deno.test("sourceCommit reads HEAD through a loose ref, packed-refs or a detached HEAD", () => {
  const git = mkdtempSync(join(tmpdir(), "prov-git-"));
  const a = "a".repeat(40), b = "b".repeat(40), c = "c".repeat(40);
  try {
    assert.equal(sourceCommit(join(git, "missing")), undefined);
    writeFileSync(join(git, "HEAD"), "ref: refs/heads/main\n");
    assert.equal(sourceCommit(git), undefined, "a branch without commits");
    writeFileSync(join(git, "packed-refs"), `# pack-refs with: peeled\n${b} refs/heads/main\n`);
    assert.equal(sourceCommit(git), "bbbbbbb");
    mkdirSync(join(git, "refs/heads"), { recursive: true });
    writeFileSync(join(git, "refs/heads/main"), `${a}\n`);
    assert.equal(sourceCommit(git), "aaaaaaa", "a loose ref wins over packed-refs");
    writeFileSync(join(git, "HEAD"), `${c}\n`);
    assert.equal(sourceCommit(git), "ccccccc");
  } finally {
    rmSync(git, { recursive: true, force: true });
  }
});
