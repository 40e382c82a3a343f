#!/usr/bin/env node
// The Node bundle's entry (`dist/cli.cjs`), written by scripts/build.ts from
// scripts/_node_entry.cjs with the names of the two chunks filled in. It runs the command tree
// (`chunks/cli-<hash>.cjs`, CommonJS) compiled from a V8 code cache when there is one:
// parsing and compiling that file was ~10 ms of a 100 ms `--help` (Node 22 has a compile cache
// of its own; Node 20 none). The cache is `$XDG_CACHE_HOME/provisioning` (else
// `~/.cache/provisioning`), a folder of this user that only this user may write; each file is
// named by the chunk's content hash and V8's version, and made (the folder too) by the first
// run that finds none or one that V8 rejects. A folder or file that is a link, another user's or
// writable by others is neither read nor written: the chunk is then compiled as usual. The
// library (`chunks/mod-<hash>.mjs`) is imported from here, where `import()` has Node's loader.
"use strict";
const fs = require("node:fs");
const { dirname, join } = require("node:path");
const { Script } = require("node:vm");
const Module = require("node:module");

const BODY = join(__dirname, "chunks", "__BODY__");
globalThis[Symbol.for("provisioning.importLib")] = () => import("./chunks/__LIB__");

/** `file` exists, is a regular file (or folder) of ours, and nobody else may write it. */
function ours(file, folder) {
  try {
    const st = fs.lstatSync(file);
    const uid = process.getuid?.();
    return (folder ? st.isDirectory() : st.isFile()) && (uid === undefined || st.uid === uid) &&
      (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

const home = process.env.XDG_CACHE_HOME || (process.env.HOME && join(process.env.HOME, ".cache"));
const dir = home ? join(home, "provisioning") : undefined;
const suffix = `.v8-${process.versions.v8}-${process.arch}.cache`;
const cache = dir && join(dir, `${"__BODY__"}${suffix}`);
let cachedData;
if (cache && ours(dir, true) && ours(cache, false)) {
  try {
    cachedData = fs.readFileSync(cache);
  } catch { /* gone meanwhile */ }
}
const source = fs.readFileSync(BODY, "utf8");
const script = new Script(Module.wrap(source), { filename: BODY, cachedData });
if (cache && (!cachedData || script.cachedDataRejected)) {
  process.once("exit", () => {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      if (!ours(dir, true)) return;
      const tmp = `${cache}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, script.createCachedData(), { mode: 0o600, flag: "wx" });
      fs.renameSync(tmp, cache);
      for (const f of fs.readdirSync(dir)) { // the caches of other builds, for this V8
        if (f.startsWith("cli-") && f.endsWith(suffix) && join(dir, f) !== cache) {
          fs.rmSync(join(dir, f), { force: true });
        }
      }
    } catch { /* no cache this time */ }
  });
}
const mod = new Module(BODY, module);
mod.filename = BODY;
mod.paths = Module._nodeModulePaths(dirname(BODY));
script.runInThisContext()(mod.exports, Module.createRequire(BODY), mod, BODY, dirname(BODY));
