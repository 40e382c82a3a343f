/**
 * Per-service lock files: `services/locks/<name>.lock` holds `<pid> <start time> <nonce>` of
 * its owner.
 *
 * The file is written complete under a temp name and then `link()`ed to the lock path, which
 * fails with EEXIST when the lock exists: as exclusive as `open(O_CREAT|O_EXCL)` ('wx'), but a
 * reader never sees an empty, half-written lock. A lock whose owner is dead, or whose PID now
 * belongs to another process (start time differs), is stale and taken over. Taking over happens
 * under a short-lived `<name>.lock.takeover` guard and re-checks the lock's content there, so two
 * waiters that both saw the same stale lock cannot both remove it (the second would otherwise
 * delete the first one's fresh lock).
 *
 * @module
 */
import { linkSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { ProvisioningError } from "../errors.ts";
import { diskError, ensureDirs } from "./files.ts";
import type { StatePaths } from "../types.ts";
import { randomHex, safeName } from "../names.ts";
import { isAlive, processStartTime } from "../process/identity.ts";
import { sleep } from "../sleep.ts";

/** Options of {@linkcode withLock}. */
export interface LockOptions {
  /** How long to wait for a lock held by a live process before giving up (default 60 000). */
  waitMs?: number;
  signal?: AbortSignal;
}

/** A takeover guard older than this was left by a process that died inside the guard. */
const GUARD_STALE_MS = 10_000;

/**
 * Run `fn` while holding the lock of service `name`, so two CLIs acting on the same service at
 * once run one after the other. Waiters poll with short growing delays; after `waitMs` they throw
 * `Cannot lock "x": held by pid N`. Not reentrant: a nested `withLock` on the same name waits for
 * the outer one (and times out).
 */
export async function withLock<T>(
  paths: StatePaths,
  name: string,
  fn: () => Promise<T>,
  opts: LockOptions = {},
): Promise<T> {
  return await holding(paths, name, join(paths.locks, `${safeName(name)}.lock`), fn, opts);
}

/**
 * Run `fn` while holding a lock of the home itself (`supervisor`: starting the supervisor), in
 * a namespace no service name can reach (`.supervisor.lock`; names never start with a dot).
 */
export async function withHomeLock<T>(
  paths: StatePaths,
  label: "supervisor" | "platform" | "journal",
  fn: () => Promise<T>,
  opts: LockOptions = {},
): Promise<T> {
  return await holding(paths, label, join(paths.locks, `.${label}.lock`), fn, opts);
}

async function holding<T>(
  paths: StatePaths,
  name: string,
  file: string,
  fn: () => Promise<T>,
  opts: LockOptions,
): Promise<T> {
  const token = await acquire(paths, name, file, opts);
  try {
    return await fn();
  } finally {
    await releaseIf(file, token);
  }
}

async function acquire(
  paths: StatePaths,
  name: string,
  file: string,
  opts: LockOptions,
): Promise<string> {
  const deadline = Date.now() + (opts.waitMs ?? 60_000);
  let delay = 5;
  while (true) {
    opts.signal?.throwIfAborted();
    const token = await tryCreate(paths, file);
    if (token) return token;
    let held: string | undefined;
    try {
      held = readFileSync(file, "utf8");
    } catch { /* released between our attempt and the read */ }
    if (held === undefined) continue;
    const owner = parseOwner(held);
    if (!owner || !(await isAlive(owner.pid, owner.start))) {
      if (await takeOver(paths, file, held)) continue;
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      const who = owner ? `pid ${owner.pid}` : "another process";
      throw new ProvisioningError(`Cannot lock "${name}": held by ${who}`, {
        hints: [`Wait for it to finish, or remove ${file} if ${who} is not a provisioning CLI`],
      });
    }
    await sleep(Math.min(delay, left), opts.signal);
    delay = Math.min(delay * 2, 100);
  }
}

/** Create `file` holding our owner line; the line (our token) on success, undefined on EEXIST. */
async function tryCreate(paths: StatePaths, file: string): Promise<string | undefined> {
  const token = `${process.pid} ${await ownStart()} ${randomHex()}\n`;
  const tmp = `${file}.${process.pid}.${randomHex()}.tmp`;
  // Synchronous calls, as writeFileAtomic's: a few bytes on a local disk, and under Deno each
  // async call cost several times the CPU, four of them on every start and stop of a service.
  try {
    writeFileSync(tmp, token, { mode: 0o600, flag: "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw diskError(error, file);
    await ensureDirs(paths, { force: true }); // refuses a home that is not ours
    try {
      writeFileSync(tmp, token, { mode: 0o600, flag: "wx" });
    } catch (e) {
      throw diskError(e, file);
    }
  }
  try {
    linkSync(tmp, file);
    return token;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return undefined;
    throw diskError(error, file);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Remove the stale lock whose content was `stale`, under the takeover guard. */
async function takeOver(paths: StatePaths, file: string, stale: string): Promise<boolean> {
  const guard = `${file}.takeover`;
  const token = await tryCreate(paths, guard);
  if (!token) {
    const age = await stat(guard).then((s) => Date.now() - s.mtimeMs, () => 0);
    if (age > GUARD_STALE_MS) await rm(guard, { force: true });
    return false;
  }
  try {
    await releaseIf(file, stale);
    return true;
  } finally {
    await releaseIf(guard, token);
  }
}

/** Remove `file` only if it still holds `content`. */
function releaseIf(file: string, content: string): Promise<void> {
  let now: string | undefined;
  try {
    now = readFileSync(file, "utf8");
  } catch { /* gone */ }
  if (now === content) rmSync(file, { force: true });
  return Promise.resolve();
}

function parseOwner(text: string): { pid: number; start?: string } | undefined {
  const [pid, start] = text.trim().split(/\s+/);
  if (!/^\d+$/.test(pid ?? "") || Number(pid) <= 0) return undefined;
  return { pid: Number(pid), start: start || undefined };
}

let ownStartTime: Promise<string> | undefined;

function ownStart(): Promise<string> {
  ownStartTime ??= processStartTime(process.pid).then((s) => s ?? "0");
  return ownStartTime;
}
