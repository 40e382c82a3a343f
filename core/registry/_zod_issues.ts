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

/** Unwrap defaults, optionals and pipes down to the schema at `path` (undefined when unknown). */
export function schemaAt(schema: AnySchema, path: readonly PropertyKey[]): AnySchema {
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
    else return undefined;
    unwrap();
  }
  return s;
}

/** The keys of the object schema at `path` (none when it is not an object). */
export function schemaKeys(schema: AnySchema, path: readonly PropertyKey[]): string[] {
  const s = schemaAt(schema, path);
  return s?._zod?.def?.type === "object" ? Object.keys(s._zod.def.shape) : [];
}

/**
 * A number out of its bounds, said with both bounds when the schema has both: "Must be between
 * 1 and 65535" rather than zod's "Too small: expected number to be >=1". A message the schema
 * wrote itself is kept.
 */
function rangeMessage(
  issue: z.core.$ZodIssueTooBig | z.core.$ZodIssueTooSmall,
  schema: AnySchema,
): string {
  if (issue.origin !== "number" || !/^Too (small|big):/.test(issue.message)) return issue.message;
  const at = schemaAt(schema, issue.path);
  const min = at?.minValue, max = at?.maxValue;
  const inclusive = (at?._zod?.def?.checks ?? []).every((c: AnySchema) =>
    c?._zod?.def?.inclusive !== false
  );
  if (inclusive && Number.isFinite(min) && Number.isFinite(max)) {
    return `Must be between ${min} and ${max}`;
  }
  if (issue.code === "too_small") {
    return `Must be ${issue.inclusive ? "at least" : "more than"} ${issue.minimum}`;
  }
  return `Must be ${issue.inclusive ? "at most" : "less than"} ${issue.maximum}`;
}

/** zod's type names in TOML's words. */
const TYPE_NAMES: Record<string, string> = { record: "table", object: "table", int: "integer" };

function message(issue: z.core.$ZodIssue, schema: AnySchema): string {
  switch (issue.code) {
    case "too_big":
    case "too_small":
      return rangeMessage(issue, schema);
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
      return specific ? message(specific, undefined) : issue.message;
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
    out.push({ path: tomlPath(segments), message: message(issue, schema), segments });
  }
  return out;
}
