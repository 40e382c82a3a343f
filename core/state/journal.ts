/**
 * The event journal: every lifecycle event of a home — requested (by whom), pre-flight,
 * starting, started, healthy, crashed, backoff, restarting, gave up, stopping, stopped, refused,
 * reloaded — as one JSON line of `services/events.jsonl`, appended by whoever causes it (a CLI,
 * the agent, the supervisor). This module owns the file: append, read, follow, rotate.
 *
 * - **Appends** open the file with `O_APPEND` and write each record in one `write()` of one line
 *   under `PIPE_BUF` (4 KiB; texts are cut to `TEXT_MAX` characters), so lines of processes
 *   appending at once never interleave on a local file system. The file is opened per append
 *   (about 50 µs here; a lifecycle event is rare), so a writer never holds a rotated file.
 * - **Order**: each writer stamps `writer_pid` and `seq`, a counter that strictly increases per
 *   writer, and an `at` that never goes back within a writer. Readers sort by `at`, then by the
 *   order of the lines in the files (the order the kernel appended them), which keeps each
 *   writer's own order.
 * - **Rotation**: an append that leaves the file larger than `maxSize` (10 MiB) renames it to
 *   `.1` (`.1` to `.2` ... up to `keep`, 3) under the home's `journal` lock, checking the size
 *   again there. A writer that opened the file just before the rename appends to the renamed
 *   file, which readers read as `.1`: nothing is lost.
 * - **Failures** never fail a lifecycle operation: a full or read-only disk makes appends no-ops,
 *   reported once a minute (`onJournalError`).
 * - Texts are the program's own messages; environment values never go in.
 *
 * @module
 */
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { type FileHandle, open, stat } from "node:fs/promises";
import { userInfo } from "node:os";
import { dirname, join } from "node:path";
import { sleep } from "../sleep.ts";
import type { StatePaths } from "../types.ts";
import { openAppend } from "./files.ts";
import { withHomeLock } from "./lock.ts";

/** Rotate the journal once it is larger than this (bytes). */
export const JOURNAL_MAX_SIZE = 10 * 1024 * 1024;
/** Rotated journals kept (`events.jsonl.1` ... `.3`). */
export const JOURNAL_KEEP = 3;
/** Longest `text` of a record, in characters (longer ones end with `…`). */
export const TEXT_MAX = 300;
/** Largest record in bytes, its newline included: one `write()` below `PIPE_BUF`. */
const RECORD_MAX = 4000;

/** What happened. */
export type JournalType =
  | "requested"
  | "preflight"
  | "starting"
  | "started"
  | "healthy"
  /** Started and alive; it has no health check. */
  | "ready"
  /** A start found it running already. */
  | "running"
  | "unhealthy"
  | "crashed"
  | "backoff"
  | "restarting"
  | "gave_up"
  | "failed"
  | "blocked"
  | "stopping"
  | "stopped"
  | "not_managed"
  | "refused"
  | "reloaded"
  | "warning";

/** Who asked for an operation. */
export type RequestedBy =
  | { kind: "cli"; pid: number; user: string }
  | { kind: "agent"; client: string }
  | { kind: "supervisor" };

/** One line of the journal. */
export interface JournalRecord {
  /** Strictly increasing per writer (`writer_pid`), from 1. */
  seq: number;
  writer_pid: number;
  /** ISO time; never goes back within one writer. */
  at: string;
  type: JournalType;
  /** Absent for an event of the whole platform (a start of everything, a registry reload). */
  service?: string;
  /** A short sentence: `crashed (killed by SIGKILL)`. */
  text: string;
  /** Whose process wrote it. */
  by: RequestedBy["kind"];
  operation?: "start" | "stop" | "restart" | "reload";
  requested_by?: RequestedBy;
  /** The service's PID. */
  pid?: number;
  exit_code?: number | null;
  signal?: string | null;
  /** `backoff`, `restarting`: which restart this is, of how many. */
  attempt?: number;
  max_attempts?: number;
  delay_ms?: number;
  /** `stopped`: gracefully, or with SIGKILL. */
  how?: "graceful" | "sigkill";
  /** Started only because a requested service needs it. */
  dependency?: boolean;
}

/** A record as a writer gives it (the journal stamps `seq`, `writer_pid` and `at`). */
export type JournalEvent = Omit<JournalRecord, "seq" | "writer_pid" | "at">;

/** Size bound of the journal. */
export interface JournalOptions {
  /** Rotate past this many bytes (default {@linkcode JOURNAL_MAX_SIZE}). */
  maxSize?: number;
  /** Rotated files kept, at least 1 (default {@linkcode JOURNAL_KEEP}). */
  keep?: number;
}

/** `services/events.jsonl` of a home. */
export function journalFile(paths: StatePaths): string {
  return join(dirname(paths.state), "events.jsonl");
}

/** This process as the requester of an operation: a CLI (or a script), its PID and user. */
export function processRequester(): RequestedBy {
  return { kind: "cli", pid: process.pid, user: userName() };
}

let user: string | undefined;

/**
 * This process's user name: the passwd entry of its uid (Bun's `userInfo()` answers "unknown"
 * without `USER`, so /etc/passwd is read then), else `USER`, else `uid N`.
 */
function userName(): string {
  if (user) return user;
  try {
    const name = userInfo().username;
    if (name && name !== "unknown") return user = name;
  } catch { /* no passwd entry */ }
  const uid = process.getuid?.();
  try {
    const entry = readFileSync("/etc/passwd", "utf8").split("\n")
      .map((l) => l.split(":")).find((f) => f[2] === String(uid));
    if (entry?.[0]) return user = entry[0];
  } catch { /* no /etc/passwd */ }
  return user = process.env.USER ?? `uid ${uid ?? "?"}`;
}

/** `cli (pid 12, user ana)`, `agent (client 127.0.0.1:50312)`, `supervisor`. */
export function describeRequester(by: RequestedBy): string {
  if (by.kind === "cli") return `cli (pid ${by.pid}, user ${by.user})`;
  if (by.kind === "agent") return `agent (client ${by.client})`;
  return "supervisor";
}

let seq = 0;
let lastAt = 0;
let errorAt = -Infinity;

/** Told (at most once a minute) that an append failed; it was a no-op. Default: one stderr line. */
let errorHandler = (error: Error, file: string) => {
  console.error(`⚠️  Not recording events in ${file}: ${error.message}`);
};

/** Replace how this process reports a journal it cannot write (the supervisor logs it). */
export function onJournalError(fn: (error: Error, file: string) => void): void {
  errorHandler = fn;
}

/** The line of `event` stamped for this writer: at most `RECORD_MAX` bytes. */
function encode(event: JournalEvent): string {
  const now = Math.max(Date.now(), lastAt);
  lastAt = now;
  const text = cut(String(event.text).replace(/[\r\n]+/g, " "), TEXT_MAX);
  // `seq` first: a reader finds the start of a record by it (see `parseLine`).
  let record: JournalRecord = {
    seq: ++seq,
    writer_pid: process.pid,
    at: new Date(now).toISOString(),
    ...event,
    text,
  };
  let line = JSON.stringify(record) + "\n";
  for (let max = TEXT_MAX; Buffer.byteLength(line) > RECORD_MAX && max > 8; max >>= 1) {
    record = { ...record, text: cut(text, max) };
    line = JSON.stringify(record) + "\n";
  }
  return line;
}

const cut = (s: string, max: number) => s.length > max ? `${s.slice(0, max - 1)}…` : s;

/**
 * Append one event to the journal of `paths`. The line is written before this returns; the
 * promise is the rotation it may have started (it never rejects). Never throws: a journal that
 * cannot be written (a full or read-only disk, a home gone) makes this a no-op, reported once a
 * minute.
 */
export function appendEvent(
  paths: StatePaths,
  event: JournalEvent,
  opts: JournalOptions = {},
): Promise<void> {
  const file = journalFile(paths);
  let fd: number | undefined;
  let size = 0;
  try {
    const line = Buffer.from(encode(event));
    fd = openAppend(file);
    const written = writeSync(fd, line);
    if (written !== line.length) throw Object.assign(new Error("short write"), { code: "EIO" });
    size = fstatSync(fd).size;
  } catch (error) {
    report(error as Error, file);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  const max = opts.maxSize ?? JOURNAL_MAX_SIZE;
  if (size <= max) return Promise.resolve();
  return rotate(paths, file, max, Math.max(1, opts.keep ?? JOURNAL_KEEP));
}

function report(error: Error, file: string): void {
  const code = (error as NodeJS.ErrnoException).code;
  // A home that is gone (removed under a running supervisor) is not made again for a line.
  if (code === "ENOENT") return;
  if (Date.now() - errorAt < 60_000) return;
  errorAt = Date.now();
  try {
    errorHandler(error, file);
  } catch { /* reporting must not fail either */ }
}

/** Rename the journal away under the home's lock; skipped while another writer rotates it. */
async function rotate(paths: StatePaths, file: string, max: number, keep: number): Promise<void> {
  try {
    await withHomeLock(paths, "journal", () => {
      rotateNow(file, max, keep);
      return Promise.resolve();
    }, { waitMs: 0 });
  } catch (error) {
    // Held by a live writer: it rotates. Anything else: the next append tries again.
    if (!/^Cannot lock/.test((error as Error).message)) report(error as Error, file);
  }
}

/** `file` → `.1` → `.2` ... (the oldest past `keep` removed), when it is still too large. */
function rotateNow(file: string, max: number, keep: number): void {
  let st;
  try {
    st = lstatSync(file);
  } catch {
    return; // rotated by another writer meanwhile
  }
  if (!st.isFile() || st.size <= max) return;
  rmSync(`${file}.${keep}`, { force: true });
  for (let i = keep - 1; i >= 1; i--) {
    try {
      renameSync(`${file}.${i}`, `${file}.${i + 1}`);
    } catch { /* not there */ }
  }
  renameSync(file, `${file}.1`);
}

/** Where a record's line ends: the file (its inode) and the byte offset after the line. */
export interface JournalPosition {
  ino: number;
  offset: number;
}

/** A record and where its line ends (as text `<ino>:<offset>`, an SSE event id). */
export interface JournalEntry {
  record: JournalRecord;
  position: JournalPosition;
}

/** What {@linkcode readJournal} reads. */
export interface ReadJournalOptions {
  /** Only records at or after this time (ms since the epoch). */
  since?: number;
  /** Only these services' records (and those of the whole platform). */
  services?: string[];
  /** Only the last N records read (before following). */
  limit?: number;
  /** Resume after this record instead (SSE's `Last-Event-ID`), across rotations. */
  after?: JournalPosition;
  /** Then keep yielding appended records until `signal` aborts, through rotations. */
  follow?: boolean;
  signal?: AbortSignal;
}

/** How long a follower still reads a rotated file (a writer that opened it just before). */
const DRAIN_GRACE_MS = 1_000;

/** One open journal file: where reading goes on, and a line not yet whole. */
interface Source {
  handle: FileHandle;
  ino: number;
  pos: number;
  pending: Buffer;
  /** A rotated file read until then. */
  until?: number;
}

/**
 * The journal's records, oldest first (by `at`, then by their order in the files), from the
 * rotated files and the current one; with `follow`, then each record appended later, as it comes.
 * A rotation while it reads loses and repeats nothing (files are told apart by inode).
 */
export async function* readJournal(
  paths: StatePaths,
  opts: ReadJournalOptions = {},
): AsyncGenerator<JournalEntry> {
  const file = journalFile(paths);
  const keep = (r: JournalRecord) =>
    (opts.since === undefined || Date.parse(r.at) >= opts.since) &&
    (!opts.services?.length || r.service === undefined || opts.services.includes(r.service));
  // The current file first, then the rotated ones: a rotation in between shows a file twice
  // (skipped by its inode), never not at all.
  const sources: Source[] = [];
  let current: Source | undefined;
  try {
    for (const name of [file, ...rotated(file)]) {
      const handle = await open(name, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() =>
        undefined
      );
      if (!handle) continue;
      const st = await handle.stat();
      if (!st.isFile() || sources.some((s) => s.ino === st.ino)) {
        await handle.close();
        continue;
      }
      // A file last written before `since` holds nothing newer.
      const stale = name !== file && opts.since !== undefined && st.mtimeMs < opts.since - 1_000;
      const source = { handle, ino: st.ino, pos: 0, pending: Buffer.alloc(0) };
      if (name === file) current = source;
      if (stale) await handle.close();
      else sources.push(source);
    }
    // Oldest first; resuming after a position skips what came before it.
    const ordered = sources.filter((s) => s !== current).reverse();
    if (current) ordered.push(current);
    let from = 0;
    if (opts.after) {
      const at = ordered.findIndex((s) => s.ino === opts.after!.ino);
      if (at >= 0) {
        from = at;
        ordered[at].pos = opts.after.offset;
      }
    }
    const backlog: JournalEntry[] = [];
    if (opts.limit === 0 && !opts.after) {
      // Nothing of the past: follow from the end.
      if (current) current.pos = (await current.handle.stat()).size;
    } else {
      for (const s of ordered.slice(from)) {
        for (const e of await readNew(s)) if (keep(e.record)) backlog.push(e);
      }
    }
    for (const s of ordered) if (s !== current) await s.handle.close();
    sources.length = 0;
    if (current) sources.push(current);
    backlog.sort((a, b) => Date.parse(a.record.at) - Date.parse(b.record.at));
    yield* opts.limit === undefined
      ? backlog
      : backlog.slice(Math.max(0, backlog.length - opts.limit));
    if (!opts.follow) return;

    let delay = 10;
    while (!opts.signal?.aborted) {
      let grew = false;
      for (const s of [...sources]) {
        for (const e of await readNew(s)) {
          grew = true;
          if (keep(e.record)) yield e;
        }
        if (s.until !== undefined && Date.now() > s.until) {
          sources.splice(sources.indexOf(s), 1);
          await s.handle.close();
        }
      }
      const now = await stat(file).catch(() => undefined);
      if (now && !sources.some((s) => s.ino === now.ino && s.until === undefined)) {
        // Rotated (or made anew): read the renamed file a little longer, and the new one.
        for (const s of sources) s.until ??= Date.now() + DRAIN_GRACE_MS;
        const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() =>
          undefined
        );
        if (handle) {
          const ino = (await handle.stat()).ino;
          sources.push({ handle, ino, pos: 0, pending: Buffer.alloc(0) });
          continue;
        }
      } else if (!now) {
        for (const s of sources) s.until ??= Date.now() + DRAIN_GRACE_MS;
      }
      if (grew) {
        delay = 10;
        continue;
      }
      try {
        await sleep(delay, opts.signal);
      } catch {
        return;
      }
      delay = Math.min(delay * 2, 250);
    }
  } finally {
    for (const s of sources) await s.handle.close().catch(() => {});
  }
}

/** `events.jsonl.1`, `.2` ... that exist, newest first. */
function rotated(file: string): string[] {
  const prefix = `${file.slice(dirname(file).length + 1)}.`;
  let names: string[];
  try {
    names = readdirSync(dirname(file));
  } catch {
    return [];
  }
  return names.filter((n) => n.startsWith(prefix) && /^\d+$/.test(n.slice(prefix.length)))
    .map((n) => Number(n.slice(prefix.length)))
    .sort((a, b) => a - b)
    .map((n) => `${file}.${n}`);
}

const CHUNK = 64 * 1024;

/** The whole records appended to `s` since it was last read. */
async function readNew(s: Source): Promise<JournalEntry[]> {
  const out: JournalEntry[] = [];
  for (;;) {
    const chunk = Buffer.alloc(CHUNK);
    const { bytesRead } = await s.handle.read(chunk, 0, CHUNK, s.pos);
    if (bytesRead === 0) return out;
    const buf = Buffer.concat([s.pending, chunk.subarray(0, bytesRead)]);
    const base = s.pos - s.pending.length;
    s.pos += bytesRead;
    let from = 0;
    for (let nl; (nl = buf.indexOf(0x0a, from)) !== -1; from = nl + 1) {
      const record = parseLine(buf.subarray(from, nl).toString("utf8"));
      if (record) out.push({ record, position: { ino: s.ino, offset: base + nl + 1 } });
    }
    s.pending = Buffer.from(buf.subarray(from));
  }
}

/**
 * A record from one line, or undefined. A line that an append cut short (a full disk) runs into
 * the next record: that one is still found, by the `{"seq":` it starts with.
 */
function parseLine(line: string): JournalRecord | undefined {
  for (const text of [line, line.slice(Math.max(0, line.lastIndexOf('{"seq":')))]) {
    try {
      const r = JSON.parse(text);
      if (
        r && typeof r === "object" && typeof r.seq === "number" && typeof r.at === "string" &&
        typeof r.type === "string" && typeof r.text === "string"
      ) return r as JournalRecord;
    } catch { /* try the last record in it */ }
  }
  return undefined;
}

export { parseSince } from "./since.ts";
