/**
 * Variable expansion for registry values: `${VAR}`, `${VAR:-default}`, `$$` (a literal `$`)
 * and a leading `~` (`~` alone or `~/...`). Applied to every string of the parsed TOML,
 * before validation, so errors point at the key that holds the value. Any other `${` is an
 * error (unterminated, or not a name); a `$` before anything else is kept (`$PATH` in a shell
 * command is the shell's). Every string is also checked for NUL bytes, which no argument,
 * path or environment value can carry.
 *
 * In a shell command line (`shell`), each substituted value is quoted for the place it lands
 * in — unquoted, inside '…' or inside "…" — so a value is always one word of data and never
 * shell syntax: `echo ${X}` with `X="a; rm -rf ~"` runs `echo 'a; rm -rf ~'`.
 *
 * @module
 */
import type { RegistryIssue } from "../types.ts";
import { tomlPath } from "./schema.ts";

const REF_RE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s;

export type Env = Record<string, string | undefined>;

/** The outcome of expanding one string. */
export interface Expansion {
  value: string;
  /** Undefined variables without a default. */
  missing: string[];
  /** Malformed references (`${VAR`, `${1BAD}`), as messages. */
  errors: string[];
}

/** Expand one string; `shell` quotes each substituted value for a shell command line. */
export function expandValue(value: string, env: Env, opts: { shell?: boolean } = {}): Expansion {
  const missing: string[] = [];
  const errors: string[] = [];
  const tilde = (s: string) => s === "~" || s.startsWith("~/");
  if (!value.includes("$")) {
    const out = tilde(value) && env.HOME ? (opts.shell ? shellQuote(env.HOME) : env.HOME) : "";
    return { value: out ? out + value.slice(1) : value, missing, errors };
  }
  const shell = opts.shell ? new ShellQuoting() : undefined;
  const literal = (text: string) => {
    shell?.feed(text);
    return text;
  };
  const substitute = (v: string, ref: string) => {
    if (!shell) return v;
    const quoted = shell.quote(v);
    if (quoted === undefined) {
      errors.push(
        `A "\\" right before "${ref}" would escape the quote around its value: remove the "\\"`,
      );
      return ref;
    }
    return quoted;
  };

  let out = "";
  let i = 0;
  if (shell && tilde(value) && env.HOME) { // a shell line: the home is a quoted value too
    out += substitute(env.HOME, "~");
    i = 1;
  }
  while (i < value.length) {
    const j = value.indexOf("$", i);
    if (j < 0) {
      out += literal(value.slice(i));
      break;
    }
    out += literal(value.slice(i, j));
    const next = value[j + 1];
    if (next === "$") {
      out += literal("$");
      i = j + 2;
      continue;
    }
    if (next !== "{") {
      out += literal("$");
      i = j + 1;
      continue;
    }
    const close = value.indexOf("}", j + 2);
    if (close < 0) {
      errors.push(
        `Unterminated variable reference ${
          JSON.stringify(clip(value.slice(j)))
        }: close it with "}" (or write "$\${" for a literal "\${")`,
      );
      out += value.slice(j);
      break;
    }
    const ref = value.slice(j, close + 1);
    const m = REF_RE.exec(value.slice(j + 2, close));
    i = close + 1;
    if (!m) {
      errors.push(
        `Invalid variable reference ${JSON.stringify(clip(ref))}: a name is letters, digits and ` +
          `"_", not starting with a digit; write \${NAME} or \${NAME:-default} (or "$\${" for a ` +
          `literal "\${")`,
      );
      out += ref;
      continue;
    }
    const [, name, def] = m;
    const v = env[name];
    if (v !== undefined && v !== "") out += substitute(v, ref);
    else if (def !== undefined) out += substitute(def, ref);
    else if (v === "") out += substitute("", ref);
    else {
      missing.push(name);
      out += ref;
    }
  }
  // Outside shell lines, after expansion, as always: `${DIR:-~/data}` is under the home.
  if (!shell && tilde(out) && env.HOME) out = env.HOME + out.slice(1);
  return { value: out, missing, errors };
}

/** Expand one string; undefined variables without a default are collected in `missing`. */
export function expandString(value: string, env: Env, missing: string[] = []): string {
  const r = expandValue(value, env);
  missing.push(...r.missing);
  return r.value;
}

/** Options of {@linkcode expandTree}. */
export interface ExpandTreeOptions {
  /** Leave this table alone (its plugin expands it later, knowing which keys are shell lines). */
  skip?: (at: readonly (string | number)[], node: unknown) => boolean;
  /** This string is a shell command line: quote the values substituted into it. */
  shell?: (at: readonly (string | number)[]) => boolean;
}

/**
 * Expand every string in a parsed TOML value, in place; returns one issue per undefined
 * variable, malformed reference and string holding a NUL byte.
 */
export function expandTree(
  root: unknown,
  env: Env,
  path: (string | number)[] = [],
  opts: ExpandTreeOptions = {},
): (RegistryIssue & { segments: (string | number)[] })[] {
  const issues: (RegistryIssue & { segments: (string | number)[] })[] = [];
  const at = [...path]; // one stack, copied only for an issue
  const report = (message: string) =>
    issues.push({
      path: tomlPath(at),
      message,
      service: at[0] === "services" ? String(at[1]) : undefined,
      segments: [...at],
    });
  // Most strings hold no `$` or `~`: they are only checked for NUL (a large registry has a
  // million of them), and only changed values are written back.
  const string = (node: string): string => {
    let value = node;
    if (node.includes("$") || node[0] === "~") {
      const r = expandValue(node, env, { shell: opts.shell?.(at) });
      for (const name of r.missing) {
        report(`Undefined variable "${name}" (set it, or write \${${name}:-default})`);
      }
      for (const message of r.errors) report(message);
      value = r.value;
    }
    if (value.includes("\0")) report("Must not contain a NUL byte");
    return value;
  };
  const walk = (node: unknown): void => {
    if (!node || typeof node !== "object" || node instanceof Date) return;
    if (opts.skip?.(at, node)) return;
    const obj = node as Record<string | number, unknown>;
    const keys: (string | number)[] = Array.isArray(node) ? [...node.keys()] : Object.keys(node);
    for (const k of keys) {
      const v = obj[k];
      at.push(k);
      if (typeof v === "string") {
        const out = string(v);
        if (out !== v) obj[k] = out;
      } else walk(v);
      at.pop();
    }
  };
  if (typeof root === "string") string(root); // a lone string has nowhere to be written back
  else walk(root);
  return issues;
}

/** A reference as quoted in a message: at most 40 characters. */
function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 39)}…` : s;
}

/** `v` as one single-quoted shell word (`'` becomes `'"'"'`, which dax's shell also reads). */
export function shellQuote(v: string): string {
  return `'${v.replaceAll("'", `'"'"'`)}'`;
}

type Frame = "top" | "single" | "double" | "sub" | "paren" | "tick";

/**
 * Where a shell command line is, as its literal text is fed in: unquoted, in '…', in "…",
 * inside `$(…)` or backticks (unquoted again). Enough of POSIX sh (and dax's shell) to know
 * how to quote a value inserted at the current point.
 */
class ShellQuoting {
  #stack: Frame[] = ["top"];
  #escape = false;
  /** The last character fed was an unquoted `$` (text arrives in pieces: `$` then `(...`). */
  #dollar = false;

  feed(text: string): void {
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      const top = this.#stack.at(-1)!;
      const dollar = this.#dollar;
      this.#dollar = false;
      if (this.#escape) {
        this.#escape = false;
        continue;
      }
      if (top === "single") {
        if (c === "'") this.#stack.pop();
        continue;
      }
      if (c === "\\") this.#escape = true;
      else if (c === "$") this.#dollar = true;
      else if (c === "(" && dollar) this.#stack.push("sub");
      else if (c === "`") {
        if (top === "tick") this.#stack.pop();
        else this.#stack.push("tick");
      } else if (top === "double") {
        if (c === '"') this.#stack.pop();
      } else if (c === "'") this.#stack.push("single");
      else if (c === '"') this.#stack.push("double");
      else if (c === "(") this.#stack.push("paren");
      else if (c === ")" && (top === "sub" || top === "paren")) this.#stack.pop();
    }
  }

  /** `v` quoted for the current point; undefined right after a `\` (it would escape the quote). */
  quote(v: string): string | undefined {
    if (this.#escape) return undefined;
    const top = this.#stack.at(-1);
    if (top === "single") return `'${shellQuote(v)}'`; // close, the word, reopen
    if (top === "double") return `"${shellQuote(v)}"`;
    return shellQuote(v);
  }
}
