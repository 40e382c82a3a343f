/**
 * Process identity: is a PID still the process we started, which processes share its group,
 * is a name or a port already taken.
 *
 * Linux reads `/proc`; macOS (and other Unixes) ask `ps`. A PID alone is never trusted: PIDs are
 * reused, so callers compare the start time recorded at spawn with {@linkcode processStartTime}.
 * A zombie (exited, not yet reaped by its parent) counts as dead.
 *
 * @module
 */
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { basename } from "node:path";
import { sleep } from "../sleep.ts";

export { listeningPids } from "./_proc_net.ts";

const isLinux = process.platform === "linux";

/** The fields of `/proc/PID/stat` this module uses. */
interface ProcStat {
  comm: string;
  state: string;
  /** The parent's pid (1, or a subreaper, once the parent died). */
  ppid: number;
  pgid: number;
  sid: number;
  startTime: string;
}

/**
 * Parse `/proc/PID/stat`. `comm` may hold spaces and parentheses, so the fields are split after
 * the last `)`: the first one there is field 3 (state), field 22 (start time) is index 19.
 */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return undefined;
  const rest = text.slice(close + 2).trim().split(" ");
  if (rest.length < 20) return undefined;
  return {
    comm: text.slice(open + 1, close),
    state: rest[0],
    ppid: Number(rest[1]),
    pgid: Number(rest[2]),
    sid: Number(rest[3]),
    startTime: rest[19],
  };
}

/**
 * `/proc/PID/stat` parsed, or undefined when there is no such process. Read synchronously:
 * procfs never waits for a disk, and under Deno the async read costs ten times the CPU, on the
 * path of every start, status and stop.
 */
export function procStat(pid: number): Promise<ProcStat | undefined> {
  if (!validPid(pid)) return Promise.resolve(undefined);
  try {
    return Promise.resolve(parseProcStat(readFileSync(`/proc/${pid}/stat`, "utf8")));
  } catch {
    return Promise.resolve(undefined);
  }
}

/**
 * The start time of a process as the kernel reports it: on Linux field 22 of `/proc/PID/stat`
 * (clock ticks since boot), elsewhere `ps -o lstart=`. Undefined when there is no such process.
 */
export async function processStartTime(pid: number): Promise<string | undefined> {
  if (!validPid(pid)) return undefined;
  if (isLinux) return (await procStat(pid))?.startTime;
  const out = await ps(["-o", "lstart=", "-p", String(pid)]);
  return out?.trim() || undefined;
}

/**
 * Whether a process in `state` is dead: exiting (`X`), or a zombie (`Z`) whose threads are all
 * gone. The main thread of a multi-threaded process turns `Z` the moment it exits, while its
 * other threads still finish and still hold its files and sockets (a port stays bound): that
 * process is not dead yet.
 */
function isDead(pid: number, state: string): boolean {
  if (state === "X") return true;
  if (state !== "Z") return false;
  try {
    return readdirSync(`/proc/${pid}/task`).every((t) => t === String(pid));
  } catch {
    return true;
  }
}

/**
 * Whether `pid` exists and is not a zombie; with `startTime`, also whether it is the very process
 * that had that start time (a reused PID is not alive for this purpose).
 */
export async function isAlive(pid: number, startTime?: string): Promise<boolean> {
  if (!validPid(pid)) return false;
  if (isLinux) {
    const stat = await procStat(pid);
    if (!stat || isDead(pid, stat.state)) return false;
    return startTime === undefined || stat.startTime === startTime;
  }
  const out = await ps(["-o", "stat=", "-p", String(pid)]);
  if (!out?.trim() || out.trim().startsWith("Z")) return false;
  return startTime === undefined || (await processStartTime(pid)) === startTime;
}

/** The live, non-zombie PIDs whose process group is `pgid`. */
export async function groupMembers(pgid: number): Promise<number[]> {
  if (!validPid(pgid)) return [];
  if (!isLinux) {
    const out = (await ps(["-A", "-o", "pid=,pgid=,stat="])) ?? "";
    return out.split("\n").map((l) => l.trim().split(/\s+/))
      .filter(([pid, group, stat]) => pid && Number(group) === pgid && !stat?.startsWith("Z"))
      .map(([pid]) => Number(pid));
  }
  const pids = await allPids();
  const stats = await Promise.all(pids.map(async (pid) => [pid, await procStat(pid)] as const));
  return stats.filter(([pid, s]) => s && s.pgid === pgid && !isDead(pid, s.state))
    .map(([pid]) => pid);
}

/**
 * Send `signal` to every process of group `pgid` (`kill(-pgid)`). Returns false when the group
 * no longer exists. Refuses pgid 0 and 1, which would signal our own group or everything.
 */
export function killGroup(pgid: number, signal: NodeJS.Signals | number): boolean {
  if (!validPid(pgid) || pgid === 1) {
    throw new RangeError(`Cannot signal process group ${pgid}: not a service's group`);
  }
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
}

/**
 * Poll `exists` (true while the thing is still there) with short growing delays (5 ms doubling to
 * 100 ms) until it returns false or `timeoutMs` passes. Resolves true when gone, false on timeout;
 * rejects with the signal's reason when `opts.signal` aborts.
 */
export async function waitGone(
  exists: () => Promise<boolean>,
  timeoutMs: number,
  opts: { signal?: AbortSignal } = {},
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let delay = 5;
  while (true) {
    opts.signal?.throwIfAborted();
    if (!(await exists())) return true;
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await sleep(Math.min(delay, left), opts.signal);
    delay = Math.min(delay * 2, 100);
  }
}

/**
 * Live processes called `name`: `/proc/PID/comm` equal to it, or the basename of `argv[0]` (comm
 * is cut at 15 characters). Used by conflict pre-flight to spot foreign processes such as dnsmasq.
 */
export async function findProcessesByName(name: string): Promise<{ pid: number; name: string }[]> {
  if (!isLinux) {
    const out = (await ps(["-A", "-o", "pid=,stat=,comm="])) ?? "";
    return out.split("\n").map((l) => l.trim().match(/^(\d+)\s+(\S+)\s+(.*)$/))
      .filter((m): m is RegExpMatchArray => !!m && !m[2].startsWith("Z"))
      .filter((m) => basename(m[3]) === name)
      .map((m) => ({ pid: Number(m[1]), name: basename(m[3]) }));
  }
  const found = await Promise.all((await allPids()).map(async (pid) => {
    const stat = await procStat(pid);
    if (!stat || stat.state === "Z" || stat.state === "X") return undefined;
    if (stat.comm === name) return { pid, name: stat.comm };
    const argv0 = await readFile(`/proc/${pid}/cmdline`, "utf8").then((t) => t.split("\0")[0])
      .catch(() => "");
    return argv0 && basename(argv0) === name ? { pid, name: basename(argv0) } : undefined;
  }));
  return found.filter((p) => p !== undefined);
}

/**
 * Whether a TCP port is taken: try to bind `host:port` (default 127.0.0.1) for a moment.
 * True on EADDRINUSE; other bind errors (EACCES for a low port ...) are thrown.
 */
export function portInUse(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE") resolve(true);
      else reject(error);
    });
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(false)));
  });
}

function validPid(pid: number): boolean {
  return Number.isSafeInteger(pid) && pid > 0;
}

async function allPids(): Promise<number[]> {
  return (await readdir("/proc")).filter((e) => /^\d+$/.test(e)).map(Number);
}

/** `ps ARGS` stdout, or undefined when ps exits non-zero (no such process). */
function ps(args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile("ps", args, { encoding: "utf8" }, (error, stdout) => {
      resolve(error ? undefined : stdout);
    });
  });
}

const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]", "::1", "0.0.0.0"]);

/** Whether `host` names this machine (a port probed there is a local port). */
export function isLocalHost(host: string): boolean {
  return LOCAL_HOSTS.has(host);
}
