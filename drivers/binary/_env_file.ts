/**
 * A small dotenv reader for `env_file` (no dotenv package is in the dependency set, and the
 * format needs a few dozen lines): `KEY=VALUE` lines, blank lines and `#` comments, an optional
 * `export ` prefix, values in single quotes (literal), double quotes (`\n`, `\t`, `\"`, `\\`
 * escapes; may span lines) or bare (trimmed, a ` #` starts a comment). No `${VAR}` expansion:
 * the file is data, not a script.
 *
 * @module
 */
import { readFile } from "node:fs/promises";

/** One line that is not `KEY=VALUE`. */
export interface EnvFileError {
  line: number;
  message: string;
}

/** Parse dotenv text into variables plus the lines that could not be read. */
export function parseEnvFile(
  text: string,
): { vars: Record<string, string>; errors: EnvFileError[] } {
  const vars: Record<string, string> = {};
  const errors: EnvFileError[] = [];
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i].trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = line.match(/^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s?(.*)$/);
    if (!m) {
      errors.push({ line: lineNo, message: `expected KEY=VALUE, got ${JSON.stringify(line)}` });
      continue;
    }
    const [, key] = m;
    let raw = m[2].trim();
    const quote = raw[0];
    if (quote === '"' || quote === "'") {
      let end = closingQuote(raw, quote);
      while (end < 0 && i + 1 < lines.length) {
        raw += "\n" + lines[++i];
        end = closingQuote(raw, quote);
      }
      if (end < 0) {
        errors.push({ line: lineNo, message: `unterminated ${quote} quote for ${key}` });
        continue;
      }
      const body = raw.slice(1, end);
      vars[key] = quote === "'" ? body : unescape(body);
    } else {
      vars[key] = raw.replace(/\s+#.*$/, "").trim();
    }
  }
  return { vars, errors };
}

/**
 * Read and parse an env file. Throws the fs error when it cannot be read and a SyntaxError
 * naming `file:line` for the first malformed line.
 */
export async function loadEnvFile(file: string): Promise<Record<string, string>> {
  const { vars, errors } = parseEnvFile(await readFile(file, "utf8"));
  if (errors.length) {
    throw new SyntaxError(`Cannot read env file ${file}:${errors[0].line}: ${errors[0].message}`);
  }
  return vars;
}

/** Index of the unescaped closing quote after position 0, or -1. */
function closingQuote(text: string, quote: string): number {
  for (let i = 1; i < text.length; i++) {
    if (quote === '"' && text[i] === "\\") i++;
    else if (text[i] === quote) return i;
  }
  return -1;
}

const ESCAPES: Record<string, string> = { n: "\n", r: "\r", t: "\t", '"': '"', "\\": "\\" };

function unescape(body: string): string {
  return body.replace(/\\(.)/g, (all, ch: string) => ESCAPES[ch] ?? all);
}
