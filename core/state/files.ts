/**
 * The files a running platform leaves behind, under `$PROVISIONING_HOME`:
 *
 * ```
 * services/pids/<name>.pid     the PID of the service's process (group leader)
 * services/state/<name>.json   ServiceState: status, pid + its start time, restarts, last exit
 * services/logs/<name>.log     stdout + stderr of binary services
 * services/locks/<name>.lock   held while one CLI starts or stops the service
 * run/                         sockets and PID of the supervisor
 * ```
 *
 * Directories are 0700 and files 0600: logs and env may hold secrets. Every write is atomic
 * (temp file in the same directory, then rename), so a reader sees the old or the new file,
 * never half of one, whenever a writer is killed. Writes are not fsynced: the files describe
 * running processes, which a power loss ends anyway, and an fsync per state change would sit on
 * the critical path of every start (2–50 ms each here). Every path built from a service name
 * goes through {@linkcode safeName}. Only `store.ts` writes the state and PID files.
 *
 * @module
 */
import {
  closeSync,
  constants as fsConstants,
  fchmodSync,
  fstatSync,
  lstatSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { chmod, mkdir, readdir, rm } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, dirname, join } from "node:path";
import type { StatePaths } from "../types.ts";

import { ExitCode, ProvisioningError } from "../errors.ts";
import { randomHex, safeName } from "../names.ts";
import { isAlive } from "../process/identity.ts";

export { safeName };

/** The state directories under `home`. */
export function statePaths(home: string): StatePaths {
  return {
    home,
    pids: join(home, "services", "pids"),
    state: join(home, "services", "state"),
    logs: join(home, "services", "logs"),
    locks: join(home, "services", "locks"),
    run: join(home, "run"),
  };
}

/** `$PROVISIONING_HOME`, else `~/.provisioning`. */
export function defaultHome(env: Record<string, string | undefined> = process.env): string {
  if (env.PROVISIONING_HOME) return env.PROVISIONING_HOME;
  return join(env.HOME || homedir(), ".provisioning");
}

/** Where an operation runs: its environment, working directory and home. */
export interface Where {
  env: Record<string, string | undefined>;
  cwd: string;
  home: string;
}

/** The given environment, directory and home, else this process's (and `defaultHome`). */
export function whereFrom(opts: Partial<Where> = {}): Where {
  const env = opts.env ?? process.env;
  return { env, cwd: opts.cwd ?? process.cwd(), home: opts.home ?? defaultHome(env) };
}

/** Homes whose directories this process already created (a start need not redo it). */
const ensured = new Set<string>();

/**
 * Create every state directory with mode 0700. A directory that already exists must be ours:
 * a real directory (not a symbolic link), owned by this user, not writable by group or others
 * — else the command refuses with one line, as ssh refuses a key with loose permissions
 * (another user who made the home first could have planted symbolic links in it). Done once per
 * home and process unless `force` (a write that found a directory missing forces it).
 */
export async function ensureDirs(paths: StatePaths, opts: { force?: boolean } = {}): Promise<void> {
  if (ensured.has(paths.home) && !opts.force) return;
  const dirs = [
    paths.home,
    dirname(paths.pids),
    paths.pids,
    paths.state,
    paths.logs,
    paths.locks,
    paths.run,
  ];
  for (const dir of dirs) {
    trustDir(dir);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw diskError(error, dir);
    }
    if ((trustDir(dir) & 0o777) !== 0o700) {
      await chmod(dir, 0o700).catch((e) => {
        throw diskError(e, dir);
      });
    }
  }
  ensured.add(paths.home);
}

/** This process's user id (undefined where the platform has none). */
const myUid = () => process.getuid?.();

/**
 * Refuse `dir` unless it is absent, or a directory of ours that others cannot write. Returns
 * its mode (0 when absent).
 */
export function trustDir(dir: string): number {
  let st;
  try {
    st = lstatSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw error;
  }
  const refuse = (why: string, hint: string) => {
    throw new ProvisioningError(`Refusing to use ${dir}: ${why}`, {
      exitCode: ExitCode.preflight,
      hints: [hint],
    });
  };
  if (st.isSymbolicLink()) {
    refuse("it is a symbolic link", "Use a real directory as PROVISIONING_HOME");
  }
  if (!st.isDirectory()) refuse("it is not a directory", "Move it away, or set PROVISIONING_HOME");
  const uid = myUid();
  if (uid !== undefined && st.uid !== uid) {
    refuse(
      `it is owned by uid ${st.uid}, not by this user (uid ${uid})`,
      "Another user may have planted files in it: remove it, or set PROVISIONING_HOME",
    );
  }
  if (st.mode & 0o022) {
    refuse(
      `it is writable by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, "0")})`,
      `chmod 700 ${dir}`,
    );
  }
  return st.mode;
}

/**
 * Open `file` to append (created 0600), never through a symbolic link (`O_NOFOLLOW`), and only
 * when it is a regular file of ours. Returns the file descriptor.
 */
export function openAppend(file: string): number {
  const { O_WRONLY, O_APPEND, O_CREAT, O_NOFOLLOW } = fsConstants;
  let fd: number;
  try {
    fd = openSync(file, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW, 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ELOOP") throw diskError(error, file);
    throw new ProvisioningError(`Refusing to write ${file}: it is a symbolic link`, {
      exitCode: ExitCode.preflight,
      hints: [`Remove it: rm ${file}`],
    });
  }
  const st = fstatSync(fd);
  const uid = myUid();
  if (!st.isFile() || (uid !== undefined && st.uid !== uid)) {
    closeSync(fd);
    throw new ProvisioningError(
      `Refusing to write ${file}: ${st.isFile() ? `owned by uid ${st.uid}` : "not a regular file"}`,
      { exitCode: ExitCode.preflight, hints: [`Remove it: rm ${file}`] },
    );
  }
  fchmodSync(fd, 0o600);
  return fd;
}

/** What a failed write of the home's files says to a user: one line naming the path. */
const DISK_ERRORS: Record<string, string> = {
  ENOSPC: "No space left on device",
  EDQUOT: "Disk quota exceeded",
  EROFS: "Read-only file system",
  EACCES: "Permission denied",
  EPERM: "Operation not permitted",
};

/**
 * `error` as one clear line (`No space left on device: <path>`, exit 1) when it is a fault of
 * the machine (disk full, read-only, no permission); any other error as it is. The errno code
 * stays on the result (`code`), so a caller can tell a full disk from a bug.
 */
export function diskError(error: unknown, path: string): unknown {
  const code = (error as NodeJS.ErrnoException)?.code;
  if (!code || !(code in DISK_ERRORS)) return error;
  return Object.assign(
    new ProvisioningError(`${DISK_ERRORS[code]}: ${path}`, {
      hints: code === "ENOSPC" || code === "EDQUOT"
        ? ["Free some space; the supervisor retries its writes and keeps services watched"]
        : [`Check the owner and mount of ${path}`],
      cause: error,
    }),
    { code },
  );
}

/**
 * Replace `file` atomically with `data` (mode 0600): write a uniquely named temp file in the
 * same directory and rename it over `file`. On failure the temp file is removed and `file` is
 * untouched.
 */
export async function writeFileAtomic(file: string, data: string): Promise<void> {
  const tmp = join(
    dirname(file),
    `.${basename(file)}.${process.pid}.${randomHex()}.tmp`,
  );
  // Synchronous calls: a state file is a few hundred bytes on a local disk (never fsynced, see
  // the module doc), and under Deno each async fs call costs several times the CPU on the path
  // of every start, in the CLI and in the supervisor alike.
  try {
    writeFileSync(tmp, data, { encoding: "utf8", flag: "wx", mode: 0o600 });
    renameSync(tmp, file);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw diskError(error, file);
  }
  if (!swept.has(dirname(file))) {
    swept.add(dirname(file));
    await sweepTemps(dirname(file));
  }
}

/** `.<name>.<pid>.<12 hex>.tmp`: a temp file of {@linkcode writeFileAtomic} and its writer. */
const TEMP_FILE = /^\..+\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/**
 * Remove the temp files that writers killed between creating and renaming them left in `dir`
 * (their PID is gone); a process's first write into a directory cleans up after the dead (once
 * per directory and process: a readdir per write would sit on every start). A live writer's temp
 * file, or one whose PID was reused, is left alone. Best effort.
 */
const swept = new Set<string>();

async function sweepTemps(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const pid = Number(TEMP_FILE.exec(name)?.[1]);
    if (!pid || pid === process.pid || (await isAlive(pid))) continue;
    await rm(join(dir, name), { force: true }).catch(() => {});
  }
}

/** `services/pids/<name>.pid`. */
export function pidFile(paths: StatePaths, name: string): string {
  return join(paths.pids, `${safeName(name)}.pid`);
}

/** `services/state/<name>.json`. */
export function stateFile(paths: StatePaths, name: string): string {
  return join(paths.state, `${safeName(name)}.json`);
}

/** `services/logs/<name>.log`. */
export function logFile(paths: StatePaths, name: string): string {
  return join(paths.logs, `${safeName(name)}.log`);
}

/**
 * Inode, size and mtime of a service's state file, or undefined without one: every write (a
 * rename over it) changes it, so a reader may keep what it learnt while the key is the same.
 */
export function stateFileKey(paths: StatePaths, name: string): string | undefined {
  try {
    const st = statSync(stateFile(paths, name), { bigint: true });
    return `${st.ino}:${st.size}:${st.mtimeNs}`;
  } catch {
    return undefined;
  }
}
