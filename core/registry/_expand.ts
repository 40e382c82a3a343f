/**
 * Variable expansion for registry values: `${VAR}`, `${VAR:-default}`, `$$` (a literal `$`)
 * and a leading `~` (`~` alone or `~/...`). Applied to every string of the parsed TOML,
 * before validation, so errors point at the key that holds the value.
 *
 * @module
 */
import type { RegistryIssue } from "../types.ts";
import { tomlPath } from "./schema.ts";

const VAR_RE = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export type Env = Record<string, string | undefined>;

/** Expand one string; undefined variables without a default are collected in `missing`. */
export function expandString(value: string, env: Env, missing: string[] = []): string {
  let out = value.replace(VAR_RE, (match, name?: string, def?: string) => {
    if (match === "$$") return "$";
    const v = env[name!];
    if (v !== undefined && v !== "") return v;
    if (def !== undefined) return def;
    if (v === "") return "";
    missing.push(name!);
    return match;
  });
  const home = env.HOME;
  if (home && (out === "~" || out.startsWith("~/"))) out = home + out.slice(1);
  return out;
}

/** Expand every string in a parsed TOML value, in place; returns one issue per undefined variable. */
export function expandTree(
  root: unknown,
  env: Env,
  path: (string | number)[] = [],
): RegistryIssue[] {
  const issues: RegistryIssue[] = [];
  const walk = (node: unknown, at: (string | number)[]): unknown => {
    if (typeof node === "string") {
      const missing: string[] = [];
      const out = expandString(node, env, missing);
      for (const name of missing) {
        issues.push({
          path: tomlPath(at),
          message: `Undefined variable "${name}" (set it, or write \${${name}:-default})`,
          service: at[0] === "services" ? String(at[1]) : undefined,
        });
      }
      return out;
    }
    if (Array.isArray(node)) {
      node.forEach((v, i) => (node[i] = walk(v, [...at, i])));
    } else if (node && typeof node === "object" && !(node instanceof Date)) {
      const obj = node as Record<string, unknown>;
      for (const k of Object.keys(obj)) obj[k] = walk(obj[k], [...at, k]);
    }
    return node;
  };
  walk(root, path);
  return issues;
}
