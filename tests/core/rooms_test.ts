/**
 * The house rules of docs/architecture.md, checked on the source: no import cycle in product
 * code, one writer of service state, the CLI imports only the public entries, and every module
 * has a module doc.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { ROOT } from "../_cli.ts";

const PRODUCT = ["cli.ts", "mod.ts", "plugin.ts", "cli", "core", "drivers", "checks"];

function files(entry: string): string[] {
  const path = join(ROOT, entry);
  if (statSync(path).isFile()) return [path];
  return readdirSync(path).flatMap((f) => files(join(entry, f))).filter((f) => f.endsWith(".ts"));
}

const product = PRODUCT.flatMap(files);
const rel = (f: string) => relative(ROOT, f);

/** Runtime (not type-only) relative imports of `file`, as absolute paths. */
function imports(file: string): string[] {
  const text = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "");
  const out: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s+(?!type\s)[^;]*?from\s+"(\.[^"]+)"/gm)) {
    out.push(resolve(dirname(file), m[1]));
  }
  for (const m of text.matchAll(/import\(\s*"(\.[^"]+)"\s*\)/g)) {
    out.push(resolve(dirname(file), m[1]));
  }
  return out;
}

Deno.test("product code has no import cycle", () => {
  const graph = new Map(product.map((f) => [f, imports(f).filter((i) => i.endsWith(".ts"))]));
  const state = new Map<string, "active" | "done">();
  const stack: string[] = [];
  const visit = (f: string) => {
    if (state.get(f) === "done") return;
    if (state.get(f) === "active") {
      const cycle = [...stack.slice(stack.indexOf(f)), f].map(rel).join(" -> ");
      throw new Error(`import cycle: ${cycle}`);
    }
    state.set(f, "active");
    stack.push(f);
    for (const next of graph.get(f) ?? []) visit(next);
    stack.pop();
    state.set(f, "done");
  };
  // Lazy plugin imports (the bundled listing) are edges only when a plugin is used; a driver
  // importing core back through them is not a load-time cycle.
  for (const f of product) {
    if (!rel(f).endsWith("core/plugins/builtins.ts")) visit(f);
  }
});

Deno.test("only the state store writes service state", () => {
  const writers = product.filter((f) => {
    const text = readFileSync(f, "utf8");
    return /stateFile\(|pidFile\(/.test(text) && !rel(f).startsWith("core/state/");
  }).map(rel);
  assert.deepEqual(writers, []);
  const store = readFileSync(join(ROOT, "core/state/store.ts"), "utf8");
  assert.match(store, /export class StateStore/);
  const users = product.filter((f) =>
    /writeFileAtomic\(/.test(readFileSync(f, "utf8")) && !rel(f).startsWith("core/state/")
  ).map(rel);
  // The supervisor writes its own files (run/watch/*.json), never a service's state.
  assert.deepEqual(users, ["core/supervisor/daemon.ts"]);
});

Deno.test("the CLI imports only mod.ts and plugin.ts from the product", () => {
  const cli = [join(ROOT, "cli.ts"), ...files("cli")];
  for (const f of cli) {
    for (const i of imports(f)) {
      const r = rel(i);
      assert.ok(
        r === "mod.ts" || r === "plugin.ts" || r.startsWith("cli/"),
        `${rel(f)} imports ${r}`,
      );
    }
  }
});

Deno.test("every product module starts with a module doc", () => {
  const missing = product.filter((f) =>
    !readFileSync(f, "utf8").replace(/^#!.*\n/, "").startsWith("/**")
  )
    .map(rel);
  assert.deepEqual(missing, []);
});

Deno.test("only core/runtime/ looks at Deno or Bun", () => {
  const offenders = product.filter((f) => {
    if (rel(f).startsWith("core/runtime/")) return false;
    const code = readFileSync(f, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
    return /\b(?:globalThis\s*as[^)]*Deno|Deno\.|Bun\.)/.test(code);
  }).map(rel);
  assert.deepEqual(offenders, []);
});
