/**
 * cgroup v2, as systemd uses it to know every process of a unit: a process (and everything it
 * ever forks, re-parented and `setsid` ones included) stays in its cgroup until root moves it, so
 * `cgroup.procs` lists all of a service's processes and `cgroup.kill` kills them at once.
 *
 * A child is born inside its cgroup (see {@linkcode spawnInCgroup}): a child moved after it
 * started could fork before the move.
 *
 * Where the machine allows it: Linux with a cgroup2 mount (`/sys/fs/cgroup` on a unified host,
 * `/sys/fs/cgroup/unified` on a hybrid one) that we may write (root, or a delegated subtree).
 * Everything here is synchronous: cgroupfs, like procfs, never waits for a disk.
 *
 * @module
 */
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";

/** A cgroup2 mount: where it is, and which cgroup of the hierarchy its root is. */
export interface CgroupMount {
  /** The mount point (`/sys/fs/cgroup`). */
  path: string;
  /** The cgroup the mount shows at its root (`/` unless a container mounted a subtree). */
  root: string;
}

let mount: CgroupMount | null | undefined;

/** The cgroup2 mount of this machine (first in `/proc/self/mountinfo`), or undefined. */
export function cgroup2Mount(): CgroupMount | undefined {
  if (mount !== undefined) return mount ?? undefined;
  mount = null;
  if (process.platform !== "linux") return undefined;
  let text = "";
  try {
    text = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
    const [left, right] = line.split(" - ");
    if (!right?.startsWith("cgroup2 ")) continue;
    const fields = left.split(" ");
    mount = { root: unescape(fields[3]), path: unescape(fields[4]) };
    break;
  }
  return mount ?? undefined;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
}

/** The directory of the cgroup `pid` (default: this process) is in, or undefined. */
export function cgroupOf(pid: number | "self" = "self"): string | undefined {
  const m = cgroup2Mount();
  if (!m) return undefined;
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, "utf8");
  } catch {
    return undefined;
  }
  const line = text.split("\n").find((l) => l.startsWith("0::"));
  if (!line) return undefined;
  const path = line.slice(3);
  if (path.endsWith(" (deleted)")) return undefined;
  if (m.root === "/") return join(m.path, path);
  if (path !== m.root && !path.startsWith(`${m.root}/`)) return undefined;
  return join(m.path, path.slice(m.root.length));
}

/**
 * Create the cgroup `dir` (and its parents). True when it exists afterwards and we may move
 * processes into it; false when the machine does not allow it (no permission, read-only,
 * not a cgroup2 file system).
 */
export function createCgroup(dir: string): boolean {
  let made: string | undefined;
  try {
    made = mkdirSync(dir, { recursive: true });
    accessSync(join(dir, "cgroup.procs"), constants.W_OK);
    return true;
  } catch {
    // Not a cgroup file system after all: take back the plain directories we made.
    if (made) removeCgroup(dir, dirname(made));
    return false;
  }
}

/** Write to an interface file of a cgroup, never creating one (`r+`: it must exist). */
function writeControl(dir: string, file: string, text: string): void {
  writeFileSync(join(dir, file), text, { flag: "r+" });
}

/**
 * Spawn `command` with `args` (through `spawn(command, args)`) born inside the cgroup `dir`:
 * nothing it runs can fork outside before it is tracked. Undefined, without calling `spawn`,
 * when this process cannot enter `dir` or cannot tell where to return to.
 *
 * The first time, this process enters `dir` for the moment of the `spawn()` call (the fork
 * inherits it) and moves back. Once that worked, the child moves itself instead: `sh` writes
 * its own PID into `cgroup.procs`, then execs the command under the same PID (exit code 125,
 * with a line on its stderr, if the cgroup refuses it). Moving a runtime with a dozen threads
 * blocks it ~1.5 ms a move on a busy machine (two moves a start were a fifth of the
 * supervisor's time in a 200-service bring-up, `deno task bench scale`); a one-threaded `sh`
 * moves at a fraction of that, outside our event loop. The child may move itself whenever this
 * process may move itself: the same user, from the same cgroup, into the same one.
 */
export function spawnInCgroup<T>(
  dir: string,
  command: string,
  args: string[],
  spawn: (command: string, args: string[]) => T,
): T | undefined {
  if (childMayMove) {
    const procs = childEntry(dir);
    return procs ? spawn("/bin/sh", ["-c", ENTER, procs, command, ...args]) : undefined;
  }
  const home = cgroupOf("self");
  if (!home) return undefined;
  try {
    writeControl(dir, "cgroup.procs", `${process.pid}\n`);
  } catch {
    return undefined;
  }
  try {
    return spawn(command, args);
  } finally {
    try {
      writeControl(home, "cgroup.procs", `${process.pid}\n`);
      childMayMove = true;
    } catch {
      // Our old cgroup refuses us now (removed, or given controllers): never stay in the
      // service's, whose kill would kill us. The mount's root takes any process.
      writeControl(cgroup2Mount()!.path, "cgroup.procs", `${process.pid}\n`);
    }
  }
}

/** Whether this process has moved into a service's cgroup and back (see spawnInCgroup). */
let childMayMove = false;

/**
 * The `cgroup.procs` file through which a child of ours may enter the cgroup `dir` itself (a
 * launcher writes `$$` into it, then execs: {@linkcode ENTER_STEP}); undefined until one
 * {@linkcode spawnInCgroup} has shown that it may, or when `dir` is not a cgroup.
 */
export function childEntry(dir: string): string | undefined {
  if (!childMayMove) return undefined;
  const procs = join(dir, "cgroup.procs");
  try {
    accessSync(procs, constants.W_OK); // a cgroup's file (sh would make one in a plain folder)
    return procs;
  } catch {
    return undefined;
  }
}

/**
 * A step of a launcher script: enter the cgroup whose `cgroup.procs` is `$__pv_procs` (none
 * when empty; exit code 125, with a line on stderr, when it refuses). A launcher's own variables
 * are `__pv_*`: one it sets that the service's environment has would reach the service.
 */
export const ENTER_STEP = 'if [ -n "$__pv_procs" ]; then echo $$ 2>/dev/null >"$__pv_procs" || ' +
  '{ echo "cannot enter the cgroup of $__pv_procs" >&2; exit 125; }; fi';

/** `sh -c ENTER <cgroup.procs> <command> <args...>`: enter the cgroup, then become the command. */
const ENTER = `__pv_procs=$0; ${ENTER_STEP}; exec "$@"`;

/** The live processes of the cgroup `dir` (zombies are not listed); none when it does not exist. */
export function cgroupPids(dir: string): number[] {
  let text: string;
  try {
    text = readFileSync(join(dir, "cgroup.procs"), "utf8");
  } catch {
    return [];
  }
  return text.split("\n").filter(Boolean).map(Number).filter((p) => p !== process.pid);
}

/** Send `signal` to every process of the cgroup `dir`; returns the pids signalled. */
export function signalCgroup(dir: string, signal: NodeJS.Signals): number[] {
  const sent: number[] = [];
  for (const pid of cgroupPids(dir)) {
    try {
      process.kill(pid, signal);
      sent.push(pid);
    } catch { /* gone meanwhile */ }
  }
  return sent;
}

/**
 * SIGKILL every process of the cgroup `dir`, those forking at this very moment included
 * (`cgroup.kill`, Linux 5.14+; older kernels get a SIGKILL per listed process).
 */
export function killCgroup(dir: string): void {
  if (!existsSync(dir)) return;
  try {
    writeControl(dir, "cgroup.kill", "1");
    return;
  } catch { /* an older kernel */ }
  signalCgroup(dir, "SIGKILL");
}

/**
 * Remove the cgroup `dir` once it is empty, then its empty parents up to (not including)
 * `stop`. Never throws: a cgroup that still has processes or children stays.
 */
export function removeCgroup(dir: string, stop?: string): void {
  let current = dir;
  while (true) {
    try {
      rmdirSync(current);
    } catch {
      return;
    }
    const parent = dirname(current);
    if (!stop || parent === current || parent === stop || !parent.startsWith(`${stop}/`)) return;
    current = parent;
  }
}
