/**
 * `tail -n N [-F]` for service logs: the last N lines, then (follow) lines as they are appended,
 * surviving truncation (size shrinks: read again from the start) and rotation (the path now names
 * another inode: drain the old file, then switch to the new one).
 *
 * @module
 */
import { type FileHandle, open, stat } from "node:fs/promises";
import { StringDecoder } from "node:string_decoder";
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
  const { lines = 50, follow = false, signal } = opts;
  let handle = await open(file, "r").catch(() => undefined);
  try {
    let pos = 0;
    if (handle) {
      const tail = await lastLines(handle, lines, follow);
      pos = tail.end;
      yield* tail.lines;
    }
    if (!follow) return;
    let decoder = new StringDecoder("utf8");
    let pending = "";
    let delay = 10;
    while (!signal?.aborted) {
      if (!handle) {
        handle = await open(file, "r").catch(() => undefined);
        pos = 0;
      }
      let grew = false;
      if (handle) {
        if ((await handle.stat()).size < pos) pos = 0; // truncated in place
        for (let chunk; (chunk = await readFrom(handle, pos)).length;) {
          pos += chunk.length;
          grew = true;
          const parts = (pending + decoder.write(chunk)).split("\n");
          pending = parts.pop()!;
          for (const line of parts) yield stripCr(line);
        }
        const now = await stat(file).catch(() => undefined);
        if (!now || now.ino !== (await handle.stat()).ino) { // rotated away: old file drained above
          await handle.close();
          handle = undefined;
          decoder = new StringDecoder("utf8");
          pending = "";
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

/**
 * The last `n` lines of an open file, read backwards in chunks. `complete` keeps an unterminated
 * last line out (a follower reads it once it is whole). `end` is the byte offset after them.
 */
async function lastLines(
  handle: FileHandle,
  n: number,
  complete: boolean,
): Promise<{ lines: string[]; end: number }> {
  const { size } = await handle.stat();
  let text = await readBack(handle, size, n);
  let end = size;
  if (complete && !text.endsWith("\n")) {
    const cut = text.lastIndexOf("\n") + 1;
    end -= Buffer.byteLength(text.slice(cut));
    text = text.slice(0, cut);
  }
  if (n <= 0 || text === "") return { lines: [], end };
  const lines = text.replace(/\n$/, "").split("\n").map(stripCr);
  return { lines: lines.slice(-n), end };
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
