/**
 * Where each key of a TOML document is written: a map from dotted path to 1-based line.
 * smol-toml returns values without positions; this light scan of table headers and
 * `key = value` lines is enough to point an error at its line. Keys inside inline tables and
 * multi-line values map to the line of their enclosing key.
 *
 * @module
 */
import { tomlPath } from "./schema.ts";

const KEY_PART = String.raw`(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')`;
const DOTTED = String.raw`${KEY_PART}(?:\s*\.\s*${KEY_PART})*`;
const HEADER_RE = new RegExp(String.raw`^\s*\[\[?\s*(${DOTTED})\s*\]\]?\s*(?:#.*)?$`);
const KEYVAL_RE = new RegExp(String.raw`^\s*(${DOTTED})\s*=`);
const PART_RE = new RegExp(KEY_PART, "g");

function splitKey(dotted: string): string[] {
  return (dotted.match(PART_RE) ?? []).map((p) =>
    p.startsWith('"') ? JSON.parse(p) : p.startsWith("'") ? p.slice(1, -1) : p
  );
}

/** Map every table header and key line to its 1-based line number. */
export function locateKeys(source: string): Map<string, number> {
  const lines = new Map<string, number>();
  let table: string[] = [];
  let inMultiline: string | null = null;
  source.split(/\r?\n/).forEach((text, i) => {
    if (inMultiline) {
      if (text.includes(inMultiline)) inMultiline = null;
      return;
    }
    const header = HEADER_RE.exec(text);
    if (header) {
      table = splitKey(header[1]);
      const path = tomlPath(table);
      if (!lines.has(path)) lines.set(path, i + 1);
      return;
    }
    const kv = KEYVAL_RE.exec(text);
    if (!kv) return;
    const parts = [...table, ...splitKey(kv[1])];
    for (let n = table.length + 1; n <= parts.length; n++) {
      const path = tomlPath(parts.slice(0, n));
      if (!lines.has(path)) lines.set(path, i + 1);
    }
    const rest = text.slice(kv[0].length);
    for (const q of ['"""', "'''"]) {
      const at = rest.indexOf(q);
      if (at >= 0 && rest.indexOf(q, at + 3) < 0) inMultiline = q;
    }
  });
  return lines;
}

/** The line of `path`, or of its nearest ancestor that is written in the file. */
export function lineOf(
  lines: Map<string, number>,
  segments: readonly (string | number)[],
): number | undefined {
  for (let n = segments.length; n > 0; n--) {
    const line = lines.get(tomlPath(segments.slice(0, n)));
    if (line) return line;
  }
  return undefined;
}
