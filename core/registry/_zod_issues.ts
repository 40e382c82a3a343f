/**
 * zod issues → registry issues: TOML paths, one issue per unknown key with a "did you mean"
 * hint drawn from the schema's own keys, and messages a user can act on.
 *
 * @module
 */
import type { z } from "zod";
import { suggest } from "../suggest.ts";
import { tomlPath } from "./schema.ts";
import type { RegistryIssue } from "../types.ts";

type Segs = (string | number)[];

/** `Unknown key "helth_check" (did you mean "health_check"?)`. */
export function unknownKeyMessage(key: string, known: readonly string[]): string {
  const hint = suggest(key, known);
  return `Unknown key ${JSON.stringify(key)}${hint ? ` (did you mean "${hint}"?)` : ""}`;
}

// deno-lint-ignore no-explicit-any
type AnySchema = any;

/** Unwrap defaults, optionals and pipes down to an object schema's keys, following `path`. */
export function schemaKeys(schema: AnySchema, path: readonly PropertyKey[]): string[] {
  let s = schema;
  const unwrap = () => {
    for (let i = 0; i < 10 && s?._zod?.def; i++) {
      const d = s._zod.def;
      if (
        d.type === "default" || d.type === "optional" || d.type === "nullable" ||
        d.type === "prefault"
      ) {
        s = d.innerType;
      } else if (d.type === "pipe") s = d.in;
      else break;
    }
  };
  unwrap();
  for (const seg of path) {
    const d = s?._zod?.def;
    if (d?.type === "object") s = d.shape[seg as string];
    else if (d?.type === "record") s = d.valueType;
    else if (d?.type === "array") s = d.element;
    else return [];
    unwrap();
  }
  return s?._zod?.def?.type === "object" ? Object.keys(s._zod.def.shape) : [];
}

/** zod's type names in TOML's words. */
const TYPE_NAMES: Record<string, string> = { record: "table", object: "table", int: "integer" };

function message(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case "invalid_type": {
      const expected = TYPE_NAMES[issue.expected] ?? issue.expected;
      if (issue.input === undefined) return `Missing required key (expected ${expected})`;
      if (issue.expected === "int" && typeof issue.input === "number") {
        return "Must be a whole number";
      }
      return `Expected ${expected}, got ${describe(issue.input)}`;
    }
    case "invalid_union": {
      // The branch that accepted the input's type says what is wrong with its value.
      const specific = issue.errors.flat().find((i) => i.code !== "invalid_type");
      return specific ? message(specific) : issue.message;
    }
    case "invalid_value":
      return `Invalid value: expected one of ${
        issue.values.map((v) => JSON.stringify(v)).join(", ")
      }`;
    default:
      return issue.message;
  }
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return "array";
  if (v instanceof Date) return "date";
  if (v === null) return "null";
  return typeof v === "object" ? "table" : `${typeof v} ${JSON.stringify(v)}`;
}

/** Convert a zod error on a value found at `base` into registry issues. */
export function zodIssues(
  error: z.ZodError,
  schema: z.ZodType,
  base: Segs,
): (RegistryIssue & { segments: Segs })[] {
  const out: (RegistryIssue & { segments: Segs })[] = [];
  for (const issue of error.issues) {
    const rel = issue.path.map((p) => (typeof p === "number" ? p : String(p)));
    if (issue.code === "unrecognized_keys") {
      const known = schemaKeys(schema, rel);
      for (const key of issue.keys) {
        const segments = [...base, ...rel, key];
        out.push({ path: tomlPath(segments), message: unknownKeyMessage(key, known), segments });
      }
      continue;
    }
    const segments = [...base, ...rel];
    out.push({ path: tomlPath(segments), message: message(issue), segments });
  }
  return out;
}
