/**
 * Find and kill a whole process tree, including grandchildren that were re-parented after their
 * parent died or left its session (`setsid`), by tagging it with an environment variable that
 * every descendant inherits (the technique of Jenkins' ProcessTreeKiller).
 *
 * Two users: the `command` check (dax spawns its children in our own process group, so a group
 * kill is not possible; `TAG_VARIABLE` is) and the binary driver, whose services carry
 * `PROVISIONING_SERVICE_ID` so that everything a service forks is found without a cgroup.
 *
 * Linux only (it reads `/proc/PID/environ`, which only the process's owner and root may read);
 * elsewhere nothing is found and the caller's own kill of its direct child is all there is. A
 * process that clears its environment before it execs is not found: a cgroup finds those.
 *
 * @module
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import process from "node:process";

/** The variable that tags every process of one check run. */
export const TAG_VARIABLE = "PROVISIONING_CHECK_RUN";

/** A fresh tag value, unique per run (Web Crypto: no `node:crypto` in the supervisor). */
export function newTag(): string {
  return `${process.pid}-${crypto.randomUUID()}`;
}

/** Which tagged processes to look for. */
export interface TagQuery {
  /** The variable (default {@linkcode TAG_VARIABLE}). */
  variable?: string;
  /** Match values starting with the tag instead of equal to it. */
  prefix?: boolean;
  /**
   * Share scans with other callers that pass this: reuse one made at most this many ms ago (its
   * processes checked again to be alive; only a process born since, elsewhere than in a spawn of
   * ours, see {@linkcode forgetScans}, is missed), and keep this one for them. The status reads
   * of one `platform status` share one scan this way. Default 0: a fresh scan of our own.
   */
  maxAgeMs?: number;
}

/** One live process carrying the variable. */
export interface TaggedProcess {
  pid: number;
  /** The variable's value in its environment. */
  value: string;
  /** The owner of `/proc/PID` (its effective user). */
  uid: number;
  /** Its start time (field 22 of `/proc/PID/stat`), to tell it from a later one with its PID. */
  startTime: string;
}

/** The last shared scan, per variable: when, and every process carrying the variable. */
const scans = new Map<string, { at: number; found: TaggedProcess[] }>();

/**
 * Every live process (ours excepted) whose environment carries `variable`, with its value. Reads
 * `/proc` synchronously: procfs never waits for a disk, and under Deno the async reads cost
 * several times the CPU. A zombie has an empty environment, so it is never found.
 */
export function scanTagged(variable: string, maxAgeMs = 0): TaggedProcess[] {
  const last = scans.get(variable);
  if (last && maxAgeMs > 0 && Date.now() - last.at <= maxAgeMs) {
    return last.found.filter((p) => startTimeOf(String(p.pid)) === p.startTime);
  }
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  const key = `${variable}=`;
  const found: TaggedProcess[] = [];
  for (const name of entries) {
    const first = name.charCodeAt(0);
    if (first < 48 || first > 57) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${name}/environ`, "latin1");
    } catch {
      continue; // gone already, or not ours to read
    }
    let at = 0;
    if (!environ.startsWith(key)) {
      at = environ.indexOf(`\0${key}`) + 1;
      if (at === 0) continue;
    }
    const end = environ.indexOf("\0", at + key.length);
    const value = environ.slice(at + key.length, end < 0 ? undefined : end);
    const startTime = startTimeOf(name);
    let uid: number;
    try {
      uid = statSync(`/proc/${name}`).uid;
    } catch {
      continue; // gone meanwhile
    }
    if (startTime) found.push({ pid, value, uid, startTime });
  }
  if (maxAgeMs > 0) scans.set(variable, { at: Date.now(), found });
  return found;
}

/** Forget the shared scans (this process just spawned something they cannot know of). */
export function forgetScans(): void {
  scans.clear();
}

/** The start time of a live, non-zombie process, or undefined. */
function startTimeOf(pid: string): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return rest[0] === "Z" || rest[0] === "X" ? undefined : rest[19];
  } catch {
    return undefined;
  }
}

/** The value of `variable` in the environment of `pid`, or undefined (none, gone, not ours). */
export function tagOf(pid: number, variable = TAG_VARIABLE): string | undefined {
  let environ: string;
  try {
    environ = readFileSync(`/proc/${pid}/environ`, "latin1");
  } catch {
    return undefined;
  }
  const key = `${variable}=`;
  return environ.split("\0").find((e) => e.startsWith(key))?.slice(key.length);
}

/** The tagged processes `query` asks for. */
export function tagged(tag: string, query: TagQuery = {}): TaggedProcess[] {
  return scanTagged(query.variable ?? TAG_VARIABLE, query.maxAgeMs).filter((p) =>
    query.prefix ? p.value.startsWith(tag) : p.value === tag
  );
}

/** The pids of live processes whose environment carries `TAG_VARIABLE=tag` (or `query`'s). */
export function findTagged(tag: string, query: TagQuery = {}): Promise<number[]> {
  return Promise.resolve(tagged(tag, query).map((p) => p.pid));
}

/**
 * Sends `signal` (default SIGKILL) to every process tagged with `tag`, repeating until none is
 * new (a process may fork between the scan and the kill). Returns the pids that were signalled.
 */
export function killTagged(
  tag: string,
  opts: TagQuery & { rounds?: number; signal?: NodeJS.Signals } = {},
): Promise<number[]> {
  const killed = new Set<number>();
  for (let round = 0; round < (opts.rounds ?? 5); round++) {
    const pids = tagged(tag, { ...opts, maxAgeMs: 0 }).map((p) => p.pid)
      .filter((pid) => !killed.has(pid));
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, opts.signal ?? "SIGKILL");
        killed.add(pid);
      } catch {
        // exited in the meantime
      }
    }
  }
  return Promise.resolve([...killed]);
}
