/**
 * Builds: `bundle` → `dist/cli.mjs` (one ESM file for Node 20+, esbuild); `binary` →
 * `dist/provisioning` (the bundle compiled by Bun into a standalone executable; `bun` comes from
 * npm on first use). `deno compile` (task `compile`) needs Deno's download host, which is not
 * reachable everywhere; the Bun binary is the offline route.
 *
 * Importable: `await bundle()` / `await binary()` return the output path.
 *
 * @module
 */
import $ from "dax";

const root = $.path(import.meta.url).parentOrThrow().parentOrThrow();
const dist = root.join("dist");

/** esbuild: cli.ts → dist/cli.mjs. Built-in plugins are bundled; user plugins still load from disk. */
export async function bundle(): Promise<string> {
  $.logStep("Bundling", "cli.ts → dist/cli.mjs");
  const { build } = await import("esbuild");
  const outfile = dist.join("cli.mjs").toString();
  await build({
    entryPoints: [root.join("cli.ts").toString()],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "warning",
    banner: {
      js: [
        'import { createRequire as __createRequire } from "node:module";',
        "const require = __createRequire(import.meta.url);",
      ].join("\n"),
    },
  });
  // The entry's `#!/usr/bin/env -S deno run -A` line survives bundling: the bundle is for Node.
  const text = await Deno.readTextFile(outfile);
  await Deno.writeTextFile(outfile, text.replace(/^#!.*\n/, "#!/usr/bin/env node\n"));
  await Deno.chmod(outfile, 0o755);
  return outfile;
}

/** Bun: dist/cli.mjs → dist/provisioning (standalone, ~110 MB). */
export async function binary(): Promise<string> {
  const entry = await bundle();
  const outfile = dist.join("provisioning").toString();
  $.logStep("Compiling", "dist/cli.mjs → dist/provisioning (bun build --compile)");
  await $`npm exec --yes --package=bun@1.4.5 -- bun build --compile --minify ${entry} --outfile ${outfile}`
    .cwd(root.toString()).quiet("stdout");
  return outfile;
}

if (import.meta.main) {
  const what = Deno.args[0] ?? "bundle";
  const out = what === "binary" ? await binary() : await bundle();
  $.logStep("Built", out);
}
