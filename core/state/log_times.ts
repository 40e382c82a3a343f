/**
 * When a line of a log was written. Engines know it (`docker logs -t`, `kubectl logs
 * --timestamps`: {@linkcode engineLine}). A log file of ours does not: the log writer copies a
 * service's raw bytes (`core/process/log_writer.ts`; stamping every line would take a process
 * reading each line, several times the CPU of `head` and only whole seconds in POSIX tools).
 * So {@linkcode readTimedLog} gives a file's line, in this order of trust:
 *
 * 1. the time it starts with ({@linkcode lineTime}): our `--- 2026-…Z` lines, and the RFC 3339
 *    time with a zone that most loggers (and the demo services) begin a line with;
 * 2. else the time of the next line that has one, else the time the file last changed (its
 *    mtime): not when it was written but *by when* — an upper bound, so `since` never leaves
 *    out a line written after the cut (it may keep a few written shortly before);
 * 3. with `follow`, a new line without a time of its own gets the time it was read (at most
 *    the tail's 250 ms poll late).
 *
 * @module
 */
import { type FileHandle, open } from "node:fs/promises";
import type { LogLine } from "../types.ts";
import { type LogPosition, readLogEntries } from "./log_tail.ts";

const CHUNK = 64 * 1024;

/** A date-time with a zone at the start of a line (after our `--- `), then a blank or the end. */
const STAMP =
  /^(?:--- )?(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:[Zz]|[+-]\d\d:?\d\d))(?=\s|$)/;

/** The time (ms since the epoch) a line starts with, if it starts with an RFC 3339 time. */
export function lineTime(line: string): number | undefined {
  const m = STAMP.exec(line);
  if (!m) return undefined;
  const iso = m[1].replace(/^(.{10})[ t]/, "$1T").replace(",", ".")
    .replace(/([+-]\d\d)(\d\d)$/, "$1:$2");
  const t = Date.parse(iso);
  return Number.isNaN(t) ? undefined : t;
}

/** A line as engines print it with timestamps, `<RFC 3339> <text>`: the text and its time. */
export function engineLine(raw: string): LogLine {
  const space = raw.indexOf(" ");
  const time = space > 0 ? Date.parse(raw.slice(0, space)) : NaN;
  return Number.isNaN(time) ? { line: raw } : { line: raw.slice(space + 1), time };
}

/** Options of {@linkcode readTimedLog}. */
export interface ReadTimedLogOptions {
  /** The last N lines (default 50), across rotated files (`<file>.1`, `.2` …). */
  lines?: number;
  /** Only lines whose time is at or after this (ms since the epoch). */
  since?: number;
  /** Then every line appended, until `signal` aborts (across rotations, as `readLogEntries`). */
  follow?: boolean;
  signal?: AbortSignal;
}

/**
 * The last `lines` lines of a log and its rotated files, each with a time (see the module doc),
 * oldest first; files older than `since` by their mtime are not read.
 */
export async function* readTimedLog(
  file: string,
  opts: ReadTimedLogOptions = {},
): AsyncGenerator<LogLine> {
  const { lines = 50, since, follow = false, signal } = opts;
  const past = await history(file, { lines, since, complete: follow });
  yield* past.lines;
  if (!follow) return;
  for await (const e of readLogEntries(file, { follow, signal, lines: 0, after: past.end })) {
    yield { line: e.line, time: lineTime(e.line) ?? Date.now() };
  }
}

/**
 * The newest lines of `file`, then `file.1`, `file.2` … read backwards until `lines` are found,
 * a line is older than `since`, or a file is missing. `end`: where the current file's lines
 * end (a follower resumes there). `complete` leaves an unterminated last line to the follower.
 */
async function history(
  file: string,
  o: { lines: number; since?: number; complete: boolean },
): Promise<{ lines: LogLine[]; end: LogPosition }> {
  const found: LogLine[] = []; // newest first
  let end: LogPosition = { ino: 0, offset: 0 };
  let top: LogLine | undefined; // the first line of the newer file
  for (let i = 0; found.length < o.lines; i++) {
    const handle = await open(i === 0 ? file : `${file}.${i}`, "r").catch(() => undefined);
    if (!handle) {
      if (i === 0) continue; // no log now; rotated ones may be there
      break;
    }
    try {
      const st = await handle.stat();
      let size = st.size;
      if (i === 0 && o.complete) size = await lastNewline(handle, size);
      if (i === 0) end = { ino: st.ino, offset: size };
      // A rotation by bytes may have cut a line in two: its start ends this file unterminated.
      if (top && !top.line.startsWith("--- ")) {
        const from = await lastNewline(handle, size);
        top.line = (await slice(handle, from, size)) + top.line;
        size = from;
      }
      if (o.since !== undefined && st.mtimeMs < o.since) break; // it and older ones: before
      let next = st.mtimeMs;
      for await (const line of backwards(handle, size)) {
        const own = lineTime(line);
        if (own !== undefined) next = own;
        if (o.since !== undefined && next < o.since) return { lines: found.reverse(), end };
        found.push({ line, time: next });
        if (found.length >= o.lines) break;
      }
      top = size > 0 ? found.at(-1) : undefined;
    } finally {
      await handle.close();
    }
  }
  return { lines: found.reverse(), end };
}

/** The offset after the last newline before `size` (0 without one). */
async function lastNewline(handle: FileHandle, size: number): Promise<number> {
  for (let pos = size; pos > 0;) {
    const len = Math.min(CHUNK, pos);
    pos -= len;
    const buf = Buffer.alloc(len);
    const { bytesRead } = await handle.read(buf, 0, len, pos);
    const nl = buf.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (nl !== -1) return pos + nl + 1;
  }
  return 0;
}

/** The lines of the first `size` bytes of a file, last line first. */
async function* backwards(handle: FileHandle, size: number): AsyncGenerator<string> {
  if (size === 0) return;
  const lastByte = Buffer.alloc(1);
  await handle.read(lastByte, 0, 1, size - 1);
  let pos = lastByte[0] === 0x0a ? size - 1 : size;
  let rest = Buffer.alloc(0); // the start of a line whose beginning is further back
  while (pos > 0) {
    const len = Math.min(CHUNK, pos);
    pos -= len;
    const chunk = Buffer.alloc(len);
    const { bytesRead } = await handle.read(chunk, 0, len, pos);
    const buf = Buffer.concat([chunk.subarray(0, bytesRead), rest]);
    let stop = buf.length;
    for (let nl; stop > 0 && (nl = buf.lastIndexOf(0x0a, stop - 1)) !== -1; stop = nl) {
      yield text(buf.subarray(nl + 1, stop));
    }
    rest = Buffer.from(buf.subarray(0, stop));
  }
  yield text(rest);
}

/** The bytes `from` to `to` of a file, as text. */
async function slice(handle: FileHandle, from: number, to: number): Promise<string> {
  const buf = Buffer.alloc(to - from);
  const { bytesRead } = await handle.read(buf, 0, buf.length, from);
  return buf.subarray(0, bytesRead).toString("utf8");
}

function text(bytes: Buffer): string {
  const s = bytes.toString("utf8");
  return s.endsWith("\r") ? s.slice(0, -1) : s;
}
