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
 * the critical path of every start (2–50 ms each here). Every path built from a service name goes through {@linkcode safeName}.
 *
 * @module
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { chmod, mkdir, readdir, rename, rm } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, dirname, join } from "node:path";
import { z } from "zod";
import type { ServiceState, StatePaths } from "../types.ts";

import { randomHex, safeName } from "../names.ts";
import { isAlive } from "../process/identity.ts";

export { withLock } from "./lock.ts";
export type { LockOptions } from "./lock.ts";
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

/** Homes whose directories this process already created (a start need not redo it). */
const ensured = new Set<string>();

/**
 * Create every state directory with mode 0700, tightening existing ones too. Done once per
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
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
  }
  ensured.add(paths.home);
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
    throw error;
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

/** What `readState` does with a file it cannot understand. */
export interface ReadStateOptions {
  /**
   * Told about a corrupt state file (not JSON, or not a ServiceState) after it has been moved
   * aside to `<name>.json.corrupt`. Default: `process.emitWarning` (one line on stderr).
   */
  onCorrupt?: (file: string, reason: string) => void;
}

const stateSchema = z.object({
  name: z.string(),
  mode: z.string(),
  status: z.enum(["running", "stopped", "starting", "stopping", "failed"]),
  pid: z.number().int().positive().optional(),
  pid_start: z.string().optional(),
  handle: z.record(z.string(), z.unknown()).optional(),
  started_at: z.string().optional(),
  stopped_at: z.string().optional(),
  restarts: z.number().int().nonnegative(),
  last_exit: z.object({
    code: z.number().nullable(),
    signal: z.string().nullable(),
    at: z.string(),
  }).optional(),
  message: z.string().optional(),
});

/**
 * The persisted state of `name`, or undefined when there is none.
 *
 * A corrupt file never throws: it is moved aside to `<name>.json.corrupt` (kept for inspection,
 * out of the way of the next write), reported through `opts.onCorrupt`, and the service reads
 * as having no state, so `status` falls back to the PID file and a new start rewrites it.
 */
export async function readState(
  paths: StatePaths,
  name: string,
  opts: ReadStateOptions = {},
): Promise<ServiceState | undefined> {
  const file = stateFile(paths, name);
  let text: string;
  try {
    text = readFileSync(file, "utf8"); // synchronous, as in writeFileAtomic
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  let reason: string;
  try {
    const parsed = stateSchema.safeParse(JSON.parse(text));
    if (parsed.success && parsed.data.name === name) return parsed.data as ServiceState;
    reason = parsed.success
      ? `it belongs to "${parsed.data.name}"`
      : parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join(
        "; ",
      );
  } catch (error) {
    reason = (error as Error).message;
  }
  await rename(file, `${file}.corrupt`).catch(() => {});
  const report = opts.onCorrupt ??
    ((f: string, r: string) =>
      process.emitWarning(`Ignoring corrupt state file "${f}" (moved to ${f}.corrupt): ${r}`));
  report(file, reason);
  return undefined;
}

/** Persist `state` to `services/state/<name>.json` atomically. */
export async function writeState(paths: StatePaths, state: ServiceState): Promise<void> {
  await writeCreatingDirs(
    paths,
    stateFile(paths, state.name),
    JSON.stringify(state, null, 2) + "\n",
  );
}

/** Remove the state file of `name` (no error when absent). */
export async function removeState(paths: StatePaths, name: string): Promise<void> {
  await rm(stateFile(paths, name), { force: true });
}

/** The PID recorded for `name`, or undefined when there is no (readable, numeric) PID file. */
export function readPid(paths: StatePaths, name: string): Promise<number | undefined> {
  try {
    const text = readFileSync(pidFile(paths, name), "utf8").trim();
    const pid = Number(text);
    return Promise.resolve(
      /^\d+$/.test(text) && pid > 0 && Number.isSafeInteger(pid) ? pid : undefined,
    );
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return Promise.resolve(undefined);
    return Promise.reject(error);
  }
}

/** Record `pid` in `services/pids/<name>.pid` atomically. */
export async function writePid(paths: StatePaths, name: string, pid: number): Promise<void> {
  if (!Number.isSafeInteger(pid) || pid <= 0) {
    throw new RangeError(`Cannot write PID file for "${name}": invalid pid ${pid}`);
  }
  await writeCreatingDirs(paths, pidFile(paths, name), `${pid}\n`);
}

/** Remove the PID file of `name` (no error when absent). */
export async function removePid(paths: StatePaths, name: string): Promise<void> {
  await rm(pidFile(paths, name), { force: true });
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

async function writeCreatingDirs(paths: StatePaths, file: string, data: string): Promise<void> {
  try {
    await writeFileAtomic(file, data);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    await ensureDirs(paths, { force: true });
    await writeFileAtomic(file, data);
  }
}
