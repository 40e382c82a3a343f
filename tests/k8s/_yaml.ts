/**
 * A small YAML subset reader for request bodies of the API double (`application/apply-patch+yaml`,
 * `application/yaml`). kubectl sends JSON (which is YAML), other clients may send block YAML:
 * mappings, sequences (also `- key: value` items), plain and quoted scalars, `|`/`>` block
 * scalars, flow collections written as JSON, comments and one `---` document. Anchors, tags and
 * multi-document bodies are not supported (the real API server rejects multi-document bodies too).
 */

type Line = { indent: number; text: string; raw: string };

/** Parses one YAML (or JSON) document; throws an Error with the offending line on bad input. */
export function parseYaml(text: string): unknown {
  const trimmed = text.trim();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) return JSON.parse(trimmed);
  const raw = text.split(/\r?\n/);
  const start = raw.findIndex((l) => l.trim() === "---");
  const body = start >= 0 && raw.slice(0, start).every(isBlank) ? raw.slice(start + 1) : raw;
  const end = body.findIndex((l) => l.trim() === "---" || l.trim() === "...");
  if (end >= 0 && body.slice(end + 1).some((l) => !isBlank(l) && l.trim() !== "---")) {
    throw new Error("multi-document YAML is not supported in a request body");
  }
  const lines = (end >= 0 ? body.slice(0, end) : body).map((l) => ({
    indent: l.length - l.trimStart().length,
    text: l.trim(),
    raw: l,
  }));
  const r = new Reader(lines);
  r.skip();
  if (r.done()) return null;
  return r.node(r.peek().indent);
}

function isBlank(l: string): boolean {
  const t = l.trim();
  return t === "" || t.startsWith("#");
}

class Reader {
  i = 0;
  constructor(private lines: Line[]) {}
  done(): boolean {
    return this.i >= this.lines.length;
  }
  peek(): Line {
    return this.lines[this.i];
  }
  skip(): void {
    while (!this.done() && isBlank(this.peek().raw)) this.i++;
  }
  node(indent: number): unknown {
    return isItem(this.peek().text) ? this.seq(indent) : this.map(indent);
  }
  seq(indent: number): unknown[] {
    const out: unknown[] = [];
    for (this.skip(); !this.done(); this.skip()) {
      const line = this.peek();
      if (line.indent !== indent || !isItem(line.text)) break;
      const rest = line.text.slice(1).trimStart();
      if (rest === "") {
        this.i++;
        this.skip();
        out.push(
          !this.done() && this.peek().indent > indent ? this.node(this.peek().indent) : null,
        );
      } else if (keyOf(rest) !== undefined) {
        // `- key: value` starts a mapping indented where `key` starts.
        const inner = indent + (line.text.length - rest.length);
        this.lines[this.i] = { indent: inner, text: rest, raw: " ".repeat(inner) + rest };
        out.push(this.map(inner));
      } else {
        this.i++;
        out.push(scalar(rest));
      }
    }
    return out;
  }
  map(indent: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (this.skip(); !this.done(); this.skip()) {
      const line = this.peek();
      if (line.indent !== indent || isItem(line.text)) break;
      const kv = keyOf(line.text);
      if (kv === undefined) throw new Error(`cannot parse YAML line: ${line.raw}`);
      const [key, value] = kv;
      this.i++;
      if (/^[|>][-+]?$/.test(value)) out[key] = this.block(indent, value);
      else if (value !== "") out[key] = scalar(value);
      else {
        this.skip();
        const next = this.done() ? undefined : this.peek();
        if (next && next.indent > indent) out[key] = this.node(next.indent);
        else if (next && next.indent === indent && isItem(next.text)) out[key] = this.seq(indent);
        else out[key] = null;
      }
    }
    return out;
  }
  block(indent: number, style: string): string {
    const taken: string[] = [];
    while (!this.done() && (this.peek().raw.trim() === "" || this.peek().indent > indent)) {
      taken.push(this.peek().raw);
      this.i++;
    }
    while (taken.length && taken[taken.length - 1].trim() === "") taken.pop();
    const cut = Math.min(
      ...taken.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length),
    );
    const body = taken.map((l) => l.slice(cut));
    const text = style.startsWith(">") ? body.join(" ").replace(/ {2,}/g, " ") : body.join("\n");
    return style.endsWith("-") ? text : text + "\n";
  }
}

function isItem(text: string): boolean {
  return text === "-" || text.startsWith("- ");
}

/** `key: value` split outside quotes, or undefined when the text is not a mapping entry. */
function keyOf(text: string): [string, string] | undefined {
  const quoted = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*')\s*:(?:\s+(.*))?$/.exec(text);
  if (quoted) return [String(scalar(quoted[1])), stripComment(quoted[2] ?? "")];
  const plain = /^([^\s#'"{[\-?][^:#]*?|-[^\s:][^:#]*?)\s*:(?:\s+(.*))?$/.exec(text);
  if (plain) return [plain[1], stripComment(plain[2] ?? "")];
  return undefined;
}

function stripComment(value: string): string {
  if (value.startsWith('"') || value.startsWith("'")) return value.trim();
  const at = value.search(/\s#/);
  return (at >= 0 ? value.slice(0, at) : value).trim();
}

function scalar(text: string): unknown {
  const v = stripComment(text);
  if (v.startsWith('"')) return JSON.parse(v);
  if (v.startsWith("'")) return v.slice(1, -1).replaceAll("''", "'");
  if (v.startsWith("{") || v.startsWith("[")) return flow(v);
  if (v === "" || v === "~" || v === "null" || v === "Null" || v === "NULL") return null;
  if (/^(true|True|TRUE)$/.test(v)) return true;
  if (/^(false|False|FALSE)$/.test(v)) return false;
  if (/^[-+]?(0|[1-9][0-9]*)$/.test(v)) return Number(v);
  if (/^[-+]?([0-9]*\.[0-9]+|[0-9]+\.[0-9]*)([eE][-+]?[0-9]+)?$/.test(v)) return Number(v);
  return v;
}

/** Flow collections: JSON, or `[a, b]` / `{a: b}` with plain scalars. */
function flow(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    const inner = v.slice(1, -1).trim();
    const parts = inner === "" ? [] : inner.split(",").map((p) => p.trim());
    if (v.startsWith("[")) return parts.map(scalar);
    return Object.fromEntries(parts.map((p) => {
      const kv = keyOf(p);
      if (!kv) throw new Error(`cannot parse YAML flow mapping: ${v}`);
      return [kv[0], scalar(kv[1])];
    }));
  }
}
