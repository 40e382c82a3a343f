/**
 * The read step of the registry loader: only a regular file, at most 64 MiB, strict UTF-8.
 *
 * @module
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from "node:fs";
import { embeddedText } from "../runtime/assets.ts";
import type { RegistryIssue } from "../types.ts";

/** The largest registry read (a 40,000-service registry is about 19 MB). */
export const MAX_REGISTRY_BYTES = 64 * 1024 * 1024;

const KINDS: [string, (s: Stats) => boolean][] = [
  ["a directory", (s) => s.isDirectory()],
  ["a FIFO", (s) => s.isFIFO()],
  ["a character device", (s) => s.isCharacterDevice()],
  ["a block device", (s) => s.isBlockDevice()],
  ["a socket", (s) => s.isSocket()],
];

/**
 * Step: read. Only a regular file of at most {@linkcode MAX_REGISTRY_BYTES}, as strict UTF-8:
 * `/dev/zero` would be read until memory runs out and a FIFO would block forever (it is opened
 * non-blocking and refused), and invalid UTF-8 is an error with its line, not U+FFFD. The
 * bundled registry of a bundle or binary (`<bundled>/config/services.toml`) is text embedded at
 * build time.
 */
export function readRegistryFile(file: string): { text: string } | { issue: RegistryIssue } {
  const embedded = embeddedText(file);
  if (embedded !== undefined) return { text: embedded };
  const fail = (reason: string) => ({
    issue: { path: "", message: `Cannot read registry: ${reason}` },
  });
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return fail("no such file");
    if (code === "EACCES") return fail("permission denied");
    return fail((e as Error).message);
  }
  let bytes: Uint8Array;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      return fail(`not a regular file (${KINDS.find(([, is]) => is(st))?.[0] ?? "special"})`);
    }
    if (st.size > MAX_REGISTRY_BYTES) {
      return fail(`larger than ${MAX_REGISTRY_BYTES / 1024 / 1024} MiB (${st.size} bytes)`);
    }
    // To the end, but never past the limit: the file may grow while it is read.
    bytes = new Uint8Array(st.size + 1);
    let n = 0;
    for (;;) {
      if (n > MAX_REGISTRY_BYTES) {
        return fail(`larger than ${MAX_REGISTRY_BYTES / 1024 / 1024} MiB`);
      }
      if (n === bytes.length) {
        const more = new Uint8Array(n + Math.min(n, MAX_REGISTRY_BYTES + 1 - n));
        more.set(bytes);
        bytes = more;
      }
      const got = readSync(fd, bytes, n, bytes.length - n, null);
      if (got === 0) break;
      n += got;
    }
    bytes = bytes.subarray(0, n);
  } catch (e) {
    return fail((e as Error).message);
  } finally {
    closeSync(fd);
  }
  try {
    return { text: new TextDecoder("utf-8", { fatal: true }).decode(bytes) };
  } catch {
    const bad = invalidUtf8(bytes);
    return {
      issue: {
        path: "",
        message: `Invalid UTF-8 (byte 0x${
          bytes[bad.offset].toString(16).padStart(2, "0")
        }): the registry must be UTF-8 text`,
        line: bad.line,
        column: bad.column,
      },
    };
  }
}

/** Where the first byte that is not valid UTF-8 is: offset, 1-based line and column. */
function invalidUtf8(b: Uint8Array): { offset: number; line: number; column: number } {
  let line = 1, column = 1;
  for (let i = 0; i < b.length;) {
    const len = sequenceLength(b, i);
    if (len === 0) return { offset: i, line, column };
    if (b[i] === 0x0a) {
      line++;
      column = 1;
    } else column++;
    i += len;
  }
  return { offset: 0, line, column };
}

/** The length of the well-formed UTF-8 sequence at `i` (RFC 3629), 0 when there is none. */
function sequenceLength(b: Uint8Array, i: number): number {
  const c = b[i];
  if (c < 0x80) return 1;
  const len = c >= 0xc2 && c <= 0xdf
    ? 2
    : c >= 0xe0 && c <= 0xef
    ? 3
    : c >= 0xf0 && c <= 0xf4
    ? 4
    : 0;
  if (len === 0 || i + len > b.length) return 0;
  for (let k = 1; k < len; k++) if ((b[i + k] & 0xc0) !== 0x80) return 0;
  const second = b[i + 1];
  if (c === 0xe0 && second < 0xa0) return 0; // overlong
  if (c === 0xed && second >= 0xa0) return 0; // a surrogate
  if (c === 0xf0 && second < 0x90) return 0; // overlong
  if (c === 0xf4 && second >= 0x90) return 0; // past U+10FFFF
  return len;
}
