/**
 * `tail -n N [-F]` for service logs: the last N lines, then (follow) lines as they are appended,
 * surviving truncation (size shrinks: read again from the start) and rotation (the path now names
 * another inode: drain the old file, then switch to the new one).
 *
 * @module
 */
import { type FileHandle, open, stat } from "node:fs/promises";
import { sleep } from "../sleep.ts";

const CHUNK = 64 * 1024;

/** Options of {@linkcode readLog}. */
export interface ReadLogOptions {
  /** Last N lines first (default 50). */
  lines?: number;
  /** Keep yielding appended lines until `signal` aborts. */
  follow?: boolean;
  signal?: AbortSignal;
}

/**
 * Lines of `file` without their newlines: the last `lines`, then with `follow` every complete
 * line appended later. A missing file yields nothing (and is waited for when following).
 */
export async function* readLog(file: string, opts: ReadLogOptions = {}): AsyncGenerator<string> {
  for await (const entry of readLogEntries(file, opts)) yield entry.line;
}

/**
 * Where a line of a log ends: the file (its inode) and the byte offset after the line. As text,
 * `<ino>:<offset>` — the `id` of a log event, which {@linkcode readLogEntries} resumes after.
 */
export interface LogPosition {
  ino: number;
  offset: number;
}

/** One line of a log and where it ends. */
export interface LogEntry extends LogPosition {
  line: string;
}

/** Options of {@linkcode readLogEntries}. */
export interface ReadLogEntriesOptions extends ReadLogOptions {
  /**
   * Go on after this line instead of the last `lines` (SSE's `Last-Event-ID`): in the file now,
   * or in `<file>.1` when it has been rotated since (its rest first). Older: the last `lines`.
   */
  after?: LogPosition;
}

/** `readLog` with the position of every line, resuming after a position across a rotation. */
export async function* readLogEntries(
  file: string,
  opts: ReadLogEntriesOptions = {},
): AsyncGenerator<LogEntry> {
  const { lines = 50, follow = false, signal, after } = opts;
  let handle = await open(file, "r").catch(() => undefined);
  try {
    let pos = 0;
    let ino = handle ? (await handle.stat()).ino : 0;
    if (handle && after && after.ino === ino) {
      pos = after.offset;
    } else if (after && (await stat(`${file}.1`).catch(() => undefined))?.ino === after.ino) {
      // Rotated since: what it wrote after that line into the old file, then the new file.
      const old = await open(`${file}.1`, "r");
      try {
        yield* completeLines(old, after.ino, after.offset, Infinity);
      } finally {
        await old.close();
      }
    } else if (handle) {
      const tail = await lastLines(handle, lines, follow);
      pos = tail.end;
      let end = tail.end;
      // `raw` runs last line first; that one lacks its newline when not terminated.
      const entries = tail.raw.map((raw, i) => {
        const e = { line: stripCr(raw), ino, offset: end };
        end -= Buffer.byteLength(raw) + (i === 0 && !tail.terminated ? 0 : 1);
        return e;
      });
      yield* entries.reverse();
    }
    if (!follow) return;
    let pending = Buffer.alloc(0);
    let delay = 10;
    while (!signal?.aborted) {
      if (!handle) {
        handle = await open(file, "r").catch(() => undefined);
        pos = 0;
        ino = handle ? (await handle.stat()).ino : 0;
      }
      let grew = false;
      if (handle) {
        if ((await handle.stat()).size < pos) pos = 0; // truncated in place
        for (let chunk; (chunk = await readFrom(handle, pos)).length;) {
          grew = true;
          const buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
          const base = pos - pending.length;
          pos += chunk.length;
          let from = 0;
          for (let nl; (nl = buf.indexOf(0x0a, from)) !== -1; from = nl + 1) {
            yield {
              line: stripCr(buf.subarray(from, nl).toString("utf8")),
              ino,
              offset: base + nl + 1,
            };
          }
          pending = Buffer.from(buf.subarray(from));
        }
        const now = await stat(file).catch(() => undefined);
        if (!now || now.ino !== ino) { // rotated away: old file drained above
          await handle.close();
          handle = undefined;
          pending = Buffer.alloc(0);
          if (now) continue;
        }
      }
      if (grew) {
        delay = 10;
        continue;
      }
      try {
        await sleep(delay, signal);
      } catch {
        return;
      }
      delay = Math.min(delay * 2, 250);
    }
  } finally {
    await handle?.close();
  }
}

/** Complete lines of an open file from `pos` on (at most `max`), with their positions. */
async function* completeLines(
  handle: FileHandle,
  ino: number,
  pos: number,
  max: number,
): AsyncGenerator<LogEntry> {
  let pending = Buffer.alloc(0);
  let n = 0;
  for (let chunk; n < max && (chunk = await readFrom(handle, pos)).length;) {
    const buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    const base = pos - pending.length;
    pos += chunk.length;
    let from = 0;
    for (let nl; n < max && (nl = buf.indexOf(0x0a, from)) !== -1; from = nl + 1, n++) {
      yield { line: stripCr(buf.subarray(from, nl).toString("utf8")), ino, offset: base + nl + 1 };
    }
    pending = Buffer.from(buf.subarray(from));
  }
}

/**
 * The last `n` lines of an open file, read backwards in chunks. `complete` keeps an unterminated
 * last line out (a follower reads it once it is whole). `end` is the byte offset after them;
 * `raw` holds them last line first, as they are (a `\r` kept).
 */
async function lastLines(
  handle: FileHandle,
  n: number,
  complete: boolean,
): Promise<{ raw: string[]; end: number; terminated: boolean }> {
  const { size } = await handle.stat();
  let text = await readBack(handle, size, n);
  let end = size;
  if (complete && !text.endsWith("\n")) {
    const cut = text.lastIndexOf("\n") + 1;
    end -= Buffer.byteLength(text.slice(cut));
    text = text.slice(0, cut);
  }
  const terminated = text.endsWith("\n");
  if (n <= 0 || text === "") return { raw: [], end, terminated };
  const lines = text.replace(/\n$/, "").split("\n");
  return { raw: lines.slice(-n).reverse(), end, terminated };
}

/** Decoded bytes from the end of the file back far enough to hold `n` lines (or the whole file). */
async function readBack(handle: FileHandle, size: number, n: number): Promise<string> {
  const chunks: Buffer[] = [];
  let start = size;
  let newlines = 0;
  while (start > 0 && newlines <= n) {
    const len = Math.min(CHUNK, start);
    start -= len;
    const buf = Buffer.alloc(len);
    const { bytesRead } = await handle.read(buf, 0, len, start);
    const chunk = buf.subarray(0, bytesRead);
    for (const byte of chunk) if (byte === 0x0a) newlines++;
    chunks.unshift(chunk);
  }
  const all = Buffer.concat(chunks);
  // Not at the file's start: drop the partial first line so decoding starts on a line boundary.
  const from = start > 0 ? all.indexOf(0x0a) + 1 : 0;
  return all.subarray(from).toString("utf8");
}

async function readFrom(handle: FileHandle, pos: number): Promise<Buffer> {
  const buf = Buffer.alloc(CHUNK);
  const { bytesRead } = await handle.read(buf, 0, CHUNK, pos);
  return buf.subarray(0, bytesRead);
}

function stripCr(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}
