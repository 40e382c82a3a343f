/**
 * Builds: `bundle` → `dist/cli.cjs` (the entry Node runs), `dist/cli.mjs` and `dist/chunks/`
 * (Node 20+, esbuild, split so that lazily imported code such as the Kubernetes client loads
 * only when used); `binary` →
 * `dist/provisioning` (that bundle compiled by Bun into a standalone executable with bytecode;
 * `bun` is a devDependency from npm). Both embed the files the program reads from its own tree
 * (`core/runtime/_embedded.ts`: the bundled registry and its JSON Schema) and the version and
 * commit they were built from. `deno compile` (task `compile`) needs Deno's download host, which
 * is not reachable everywhere; the Bun binary is the offline route.
 *
 * ```sh
 * deno run -A scripts/build.ts bundle|binary [--clean]   # --clean: no chunk of an older build
 * ```
 *
 * Importable: `await bundle()` / `await binary()` return the output path; `ensureBuilt()`
 * builds only when an output is older than its sources (tests share one build).
 *
 * @module
 */
import $ from "dax";
import type { Plugin } from "esbuild";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createHash } from "node:crypto";
import { basename, dirname, join } from "node:path";
import process from "node:process";
import { EMBEDDED_FILES } from "../core/runtime/_embedded.ts";

const root = $.path(import.meta.url).parentOrThrow().parentOrThrow();
/** The repository root (with a trailing slash). */
export const ROOT: string = root.toString().replace(/\/?$/, "/");
/** Where builds go. */
export const DIST: string = join(ROOT, "dist");
/** The Node bundle's entry (CommonJS: the command tree; it imports the library when needed). */
export const BUNDLE_FILE: string = join(DIST, "cli.cjs");
/** The same CLI as an ES module (what Bun compiles). */
export const ESM_ENTRY: string = join(DIST, "cli.mjs");
/** The standalone binary. */
export const BINARY_FILE: string = join(DIST, "provisioning");

/** The version (package.json) and commit (`git`, `-dirty` with uncommitted changes) of a build. */
export async function buildInfo(): Promise<{ version: string; commit: string }> {
  const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  const git = (args: string[]) =>
    $`git -C ${ROOT} ${args}`.quiet().noThrow().then((r) => r.code === 0 ? r.stdout.trim() : "");
  const [head, changes] = await Promise.all([
    git(["rev-parse", "--short=7", "HEAD"]),
    git(["status", "--porcelain", "--untracked-files=no"]),
  ]);
  return { version, commit: head ? `${head}${changes ? "-dirty" : ""}` : "unknown" };
}

/** esbuild plugin: `core/runtime/_embedded.ts` becomes the files' text and the build info. */
function embedPlugin(info: { version: string; commit: string }): Plugin {
  return {
    name: "provisioning-embedded",
    setup(b) {
      b.onLoad({ filter: /[\\/]core[\\/]runtime[\\/]_embedded\.ts$/ }, () => {
        const files = Object.fromEntries(
          EMBEDDED_FILES.map((rel) => [rel, readFileSync(join(ROOT, rel), "utf8")]),
        );
        return {
          loader: "js",
          contents: [
            `export const EMBEDDED_FILES = ${JSON.stringify(EMBEDDED_FILES)};`,
            `export const EMBEDDED = ${JSON.stringify(files)};`,
            `export const BUILD = ${JSON.stringify(info)};`,
          ].join("\n"),
        };
      });
    },
  };
}

/**
 * esbuild plugin: zod's error messages in English only. `import { z } from "zod"` keeps every
 * member of `z`, so its 40 locales (a third of what `--help` loaded) would be parsed on every
 * start; `z.locales.en` stays (and is zod's default).
 */
const zodEnglishOnly: Plugin = {
  name: "zod-english-only",
  setup(b) {
    b.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, () => ({
      loader: "js",
      contents: 'export { default as en } from "./en.js";',
    }));
  },
};

/**
 * esbuild plugin: commander's `node:child_process` loaded when first used. Commander needs it
 * only for executable subcommands (we have none), yet requiring it on every start cost 3.6 ms
 * of a 20 ms `--help`.
 */
const lazyChildProcess: Plugin = {
  name: "commander-lazy-child-process",
  setup(b) {
    b.onResolve(
      { filter: /^node:child_process$/ },
      (args) =>
        /[\\/]commander[\\/]/.test(args.importer)
          ? { path: "lazy-child-process", namespace: "lazy" }
          : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "lazy" }, () => ({
      loader: "js",
      contents: [
        "let cp;",
        'const load = () => (cp ??= require("node:child_process"));',
        "module.exports = { spawn: (...args) => load().spawn(...args) };",
      ].join("\n"),
    }));
  },
};

/** Options of {@linkcode bundle}. */
export interface BundleOptions {
  /**
   * Remove every chunk of an earlier build (for a package or a release). Default: only those
   * older than ten minutes, so that a CLI started from the previous build still finds its own.
   */
  clean?: boolean;
}

/**
 * esbuild: cli.ts → dist/cli.mjs + dist/chunks/*.mjs (ESM, split: the library, `mod.ts`, is a
 * chunk of its own, as is each lazily imported module); and cli.ts → dist/chunks/cli-<hash>.cjs,
 * the command tree and commander as one CommonJS file, which Node runs through the entry
 * dist/cli.cjs (scripts/_node_entry.cjs: from a V8 code cache, importing the library's chunk
 * when a command needs it). An `.mjs` entry makes Node load its ES module loader (21 of its own
 * modules) before the first line, ~10 ms of a `--help` that needs none of it, and compiling the
 * tree was ~10 ms more. Bun compiles the ES module entry (in it, the library as an entry of its
 * own instead of a chunk made `--version` twice as slow: it stays a chunk).
 * Built-in plugins are bundled (in chunks, imported when used); user plugins still load from
 * disk. Chunks are named by content and written before the entries, which are renamed into
 * place: a CLI running from dist/ meanwhile never sees half a build.
 */
export async function bundle(opts: BundleOptions = {}): Promise<string> {
  $.logStep("Bundling", "cli.ts → dist/cli.cjs, dist/cli.mjs + dist/chunks/");
  const { build } = await import("esbuild");
  const info = await buildInfo();
  const common = {
    absWorkingDir: ROOT, // the metafile's paths (`mod.ts` below) wherever this runs from
    bundle: true,
    write: false,
    platform: "node",
    target: "node20",
    // Whitespace and syntax only: stack traces keep the functions' names.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: "none",
    logLevel: "warning",
  } as const;
  const esm = await build({
    ...common,
    entryPoints: { cli: join(ROOT, "cli.ts") },
    outdir: DIST,
    entryNames: "[name]",
    chunkNames: "chunks/[name]-[hash]",
    outExtension: { ".js": ".mjs" },
    splitting: true,
    format: "esm",
    metafile: true,
    plugins: [embedPlugin(info), zodEnglishOnly, lazyChildProcess],
    banner: {
      js: [
        'import { createRequire as __createRequire } from "node:module";',
        "const require = __createRequire(import.meta.url);",
      ].join("\n"),
    },
  });
  // The chunk that `import("../../mod.ts")` loads; the CommonJS entry imports the same one.
  const lib = Object.entries(esm.metafile.outputs).find(([, o]) => o.entryPoint === "mod.ts")?.[0];
  if (!lib) throw new Error("Cannot bundle: esbuild made no chunk of mod.ts");
  const cjs = await build({
    ...common,
    entryPoints: [join(ROOT, "cli.ts")],
    outfile: join(DIST, "chunks", "cli.cjs"),
    format: "cjs",
    plugins: [embedPlugin(info), lazyChildProcess, libFromEntry],
  });
  // The command tree, named by its content (its code cache is too), and the entry that runs it.
  // (Its `#!` line goes: it runs inside a function, as Node's own loader wraps a module.)
  const tree = new TextEncoder().encode(cjs.outputFiles[0].text.replace(/^#!.*/, ""));
  const hash = createHash("sha256").update(tree).digest("hex").slice(0, 12);
  const body = `cli-${hash}.cjs`;
  const entry = readFileSync(join(ROOT, "scripts", "_node_entry.cjs"), "utf8")
    .replaceAll("__BODY__", body).replaceAll("__LIB__", basename(lib));
  const outputs = [
    ...esm.outputFiles,
    { path: join(DIST, "chunks", body), contents: tree },
    { path: BUNDLE_FILE, contents: new TextEncoder().encode(entry) },
  ];
  mkdirSync(join(DIST, "chunks"), { recursive: true });
  const written = new Set<string>();
  const entries = new Map<string, Uint8Array>();
  for (const f of outputs) {
    if (dirname(f.path) === DIST) {
      entries.set(f.path, f.contents);
      continue;
    }
    written.add(f.path);
    writeAtomic(f.path, f.contents);
  }
  for (const file of [ESM_ENTRY, BUNDLE_FILE]) {
    const contents = entries.get(file);
    if (!contents) throw new Error(`Cannot bundle: esbuild wrote no ${file}`);
    // The entry's `#!/usr/bin/env -S deno run -A` line survives bundling: the bundle is for Node.
    const text = new TextDecoder().decode(contents).replace(/^#!.*\n/, "#!/usr/bin/env node\n");
    writeAtomic(file, text, 0o755);
  }
  const keepAfter = opts.clean ? Infinity : Date.now() - 10 * 60_000;
  for (const name of readdirSync(join(DIST, "chunks"))) {
    const file = join(DIST, "chunks", name);
    if (!written.has(file) && statSync(file).mtimeMs < keepAfter) rmSync(file, { force: true });
  }
  return BUNDLE_FILE;
}

/**
 * esbuild plugin (the CommonJS command tree): the library is imported by the entry that runs it
 * (scripts/_node_entry.cjs), not bundled in nor imported from the tree itself.
 */
const libFromEntry: Plugin = {
  name: "lib-from-entry",
  setup(b) {
    b.onLoad({ filter: /[\\/]cli[\\/]commands[\\/]_import_lib\.ts$/ }, () => ({
      loader: "js",
      contents:
        'export const importLib = () => globalThis[Symbol.for("provisioning.importLib")]();',
    }));
  },
};

/** Options of {@linkcode binary}. */
export interface BinaryOptions {
  /** Bun's `--target` (e.g. `bun-linux-arm64`); default: this machine's platform. */
  target?: string;
  /** Default `dist/provisioning`. */
  outfile?: string;
  /** Build the bundle first (default true). */
  bundleFirst?: boolean;
}

/**
 * Bun: dist/cli.mjs → dist/provisioning (standalone, ~120 MB), with bytecode (a cold start
 * several times faster) and chunks (lazily imported code is loaded from the binary only when
 * used). It does not read `.env` or `bunfig.toml` from the directory it runs in: a process
 * manager must not take its services' environment from wherever it was started.
 */
export async function binary(opts: BinaryOptions = {}): Promise<string> {
  if (opts.bundleFirst !== false) await bundle();
  const entry = ESM_ENTRY;
  const outfile = opts.outfile ?? BINARY_FILE;
  const bun = join(ROOT, "node_modules", ".bin", "bun");
  if (!existsSync(bun)) throw new Error(`Cannot compile: ${bun} not found (npm ci)`);
  $.logStep(
    "Compiling",
    `dist/cli.mjs → ${outfile.replace(ROOT, "")} (bun build --compile --bytecode${
      opts.target ? ` --target=${opts.target}` : ""
    })`,
  );
  const tmp = `${outfile}.tmp-${process.pid}`;
  try {
    const r = await $`${bun} build --compile --bytecode --minify --splitting --format=esm ${
      opts.target ? [`--target=${opts.target}`] : []
    } --no-compile-autoload-dotenv --no-compile-autoload-bunfig ${entry} --outfile ${tmp}`
      .cwd(ROOT).noThrow().captureCombined().quiet();
    if (r.code !== 0) throw new Error(`Cannot compile: bun exited with ${r.code}:\n${r.combined}`);
    renameSync(tmp, outfile);
    if (outfile === BINARY_FILE && !opts.target) writeFileSync(BINARY_FROM, bundleHash());
  } finally {
    rmSync(tmp, { force: true });
  }
  return outfile;
}

/** The hash of the bundle `dist/provisioning` was compiled from (see {@linkcode ensureBuilt}). */
const BINARY_FROM = join(DIST, ".provisioning.from");

/**
 * What identifies a bundle: its ES module entry's SHA-256 (chunks are named by content, and the
 * entry names the chunks it imports).
 */
function bundleHash(): string {
  return createHash("sha256").update(readFileSync(ESM_ENTRY)).digest("hex");
}

/** The newest modification time among the files a build is made of. */
function newestSource(): number {
  let newest = 0;
  const visit = (path: string) => {
    let st;
    try {
      st = statSync(path);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const f of readdirSync(path)) visit(join(path, f));
    } else if (/\.(ts|js|mjs|json|toml)$/.test(path)) newest = Math.max(newest, st.mtimeMs);
  };
  for (const p of ["cli.ts", "mod.ts", "plugin.ts", "cli", "core", "drivers", "checks"]) {
    visit(join(ROOT, p));
  }
  for (const p of [...EMBEDDED_FILES, "package.json", "package-lock.json", "scripts/build.ts"]) {
    visit(join(ROOT, p));
  }
  return newest;
}

const mtime = (file: string) => existsSync(file) ? statSync(file).mtimeMs : -1;

/**
 * The bundle or the binary, built only when missing or out of date (tests share one build
 * instead of compiling ~10 s each): the bundle when older than its sources, the binary when
 * compiled from another bundle than the one in dist/ (a rebuilt bundle that came out the same,
 * as `npm pack` makes, keeps it). Returns its path.
 */
export async function ensureBuilt(what: "bundle" | "binary"): Promise<string> {
  if (mtime(BUNDLE_FILE) < newestSource()) await bundle();
  if (what === "bundle") return BUNDLE_FILE;
  let from = "";
  try {
    from = readFileSync(BINARY_FROM, "utf8");
  } catch { /* never built, or built by an older build.ts */ }
  if (existsSync(BINARY_FILE) && from === bundleHash()) return BINARY_FILE;
  return await binary({ bundleFirst: false });
}

/** Write `data` to `file` through a temp file and a rename (readers see old or new, whole). */
function writeAtomic(file: string, data: string | Uint8Array, mode = 0o644): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  renameSync(tmp, file);
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const clean = args.includes("--clean");
  const what = args.find((a) => !a.startsWith("--")) ?? "bundle";
  if (what !== "bundle" && what !== "binary") {
    $.logError("Cannot build:", `unknown target "${what}" (bundle | binary) [--clean]`);
    process.exit(2);
  }
  const bundled = await bundle({ clean });
  $.logStep("Built", what === "binary" ? await binary({ bundleFirst: false }) : bundled);
}
