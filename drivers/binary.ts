/**
 * Binary deployment mode: `[services.X.deployment.binary]` runs a local executable.
 *
 * The process is spawned detached (`setsid`: its own session and process group, so it outlives
 * the CLI), with stdout and stderr appended to `services/logs/<name>.log`. Everything it forks is
 * tracked (`binary/_track.ts`): it is born in a cgroup of its own where the machine allows one,
 * and its environment carries `PROVISIONING_SERVICE_ID`, which every descendant inherits — so a
 * stop, and the next start, end all of it, even when its main process is gone. `start` reports
 * its PID and start time; the caller records them in the state store, and later calls trust the
 * PID only while the process with that PID still has that start time. The driver never writes
 * state.
 *
 * A daemon that forks into the background sets `pid_file` (systemd's `Type=forking` with
 * `PIDFile=`): its start command must exit 0, and the process the file names is the service.
 * Without `pid_file`, a start command that exits 0 leaving a process behind is an error.
 *
 * The driver does not lock: callers that may race (two CLIs starting one service) wrap
 * `status` + `start` in `withLock` from `core/state/lock.ts`.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, writeSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { z } from "zod";
import { ExitCode, ProvisioningError } from "../core/errors.ts";
import { defineDriver, driverConfig } from "../core/plugins/api.ts";
import { rotateIfLarger } from "../core/state/rotate.ts";
import { cgroupPids, childEntry, removeCgroup, spawnInCgroup } from "../core/process/cgroup.ts";
import { isAlive, processStartTime, procStat } from "../core/process/identity.ts";
import { forgetScans, tagOf } from "../core/process/tree.ts";
import { pause } from "../core/sleep.ts";
import { ensureDirs, logFile, openAppend, safeName } from "../core/state/files.ts";
import { readPid, readState } from "../core/state/store.ts";
import {
  describeExit,
  type DriverContext,
  type ExitInfo,
  type Finding,
  type Handle,
  type LogLine,
  type LogOptions,
  type Service,
} from "../core/types.ts";
import { binaryChecks, binaryPreflight, resolveBinary } from "./binary/_files.ts";
import {
  binaryStatus,
  binaryStop,
  forkedMessage,
  normalizeSignal,
  recordChild,
  recordExit,
} from "./binary/_runtime.ts";
import {
  killTracked,
  newMarker,
  prepareCgroup,
  SERVICE_ID_VARIABLE,
  type Tracking,
  trackingOf,
} from "./binary/_track.ts";
import { loadEnvFile } from "./binary/_env_file.ts";
import { readLog } from "../core/state/log_tail.ts";
import { readTimedLog } from "../core/state/log_times.ts";
import {
  drainedLog,
  endLogWriter,
  launchWithWriter,
  type LogWriter,
  openLogOutput,
} from "../core/process/log_writer.ts";

/** Schema of `[services.X.deployment.binary]`. */
export const binaryConfig = z.strictObject({
  binary_path: z.string().min(1, "Must name the executable"),
  args: z.array(z.string()).default([]),
  working_dir: z.string().min(1).optional(),
  env: z.record(z.string(), z.string()).default({}),
  env_file: z.string().min(1).optional(),
  /**
   * For a daemon that forks into the background: the file it writes its PID to (relative paths
   * from `working_dir`). The start command must then exit 0 within `start_timeout`, and the
   * process the file names is the service (systemd's `Type=forking` with `PIDFile=`).
   */
  pid_file: z.string().min(1).optional(),
});
export type BinaryConfig = z.infer<typeof binaryConfig>;

/** What `start` returns: the PID (also the process group id) and the child's exit. */
export interface BinaryHandle extends Handle {
  pid: number;
  pid_start: string;
  /**
   * The process group id, the log file stdout and stderr go to, the marker in the environment of
   * every process of this start, the cgroup it runs in (where the machine allows one), and the
   * `pid_file` its main pid came from (a daemon that forked).
   */
  data: {
    pgid: number;
    log: string;
    marker: string;
    cgroup?: string;
    pid_file?: string;
    /** The process that writes its output into `log` within `[logs]` (`log_writer.ts`). */
    log_writer?: LogWriter;
  };
  /**
   * Settles when the child exits while this process is alive (it never rejects), so a
   * same-process caller learns a crash during startup at once. It does not keep the event loop
   * alive: race it with something that does (the prober's timers), or use {@linkcode waitExit}.
   * None for a daemon found through `pid_file`: it is not our child.
   */
  exited?: Promise<ExitInfo>;
}

/**
 * The exit of a started child, keeping the event loop alive while waiting; undefined after
 * `timeoutMs` (default: no limit), and at once for a daemon that is not our child.
 */
export function waitExit(
  handle: BinaryHandle,
  timeoutMs = Infinity,
): Promise<ExitInfo | undefined> {
  if (!handle.exited) return Promise.resolve(undefined);
  const hold = setInterval(() => {}, 60_000);
  const wait = Number.isFinite(timeoutMs) ? within(handle.exited, timeoutMs) : handle.exited;
  return wait.finally(() => clearInterval(hold));
}

/** The validated `[services.X.deployment.binary]` table of `svc`. */
export function binaryConfigOf(svc: Service): BinaryConfig {
  return driverConfig(binaryDriver, svc);
}

async function start(svc: Service, ctx: DriverContext): Promise<BinaryHandle> {
  const name = safeName(svc.name);
  const cfg = binaryConfigOf(svc);
  const failed = (await binaryChecks(cfg, ctx)).find((c) => !c.finding.ok);
  if (failed) {
    throw new ProvisioningError(`Cannot start "${name}": ${failed.problem}`, {
      exitCode: ExitCode.preflight,
      hints: failed.finding.hint ? [failed.finding.hint] : [],
    });
  }
  const { path, cwd } = await resolveBinary(cfg, ctx);
  const env = await childEnv(name, cfg, ctx, cwd);

  const prev = await readState(ctx.paths, name);
  const prevPid = prev?.pid ?? (await readPid(ctx.paths, name));
  if (prevPid && prev?.pid_start && await isAlive(prevPid, prev.pid_start)) {
    throw new ProvisioningError(`Cannot start "${name}": already running (pid ${prevPid})`, {
      hints: [`Stop it first: provisioning services stop ${name}`],
    });
  }

  await ensureDirs(ctx.paths);
  const log = logFile(ctx.paths, name);
  if (svc.logs) await rotateIfLarger(log, svc.logs.max_size, svc.logs.keep);
  // Synchronous: a local append of one line, on the path of every start (the async FileHandle
  // calls cost several times the CPU under Deno).
  const out = openAppend(log); // never through a symbolic link, only our own regular file
  const note = (line: string) => writeSync(out, `--- ${new Date().toISOString()} ${line}\n`);
  try {
    // Whatever is left of an earlier start (the workers of a crashed master, a daemon it
    // forked) goes first: the new one must not find its port taken or its files in use.
    await endLeftovers(svc, ctx, trackingOf(ctx.paths, ctx.env, name, prev), note);
    // Its processes are gone, so its writer has read their last bytes and is ending.
    await endLogWriter(prev?.handle?.log_writer as LogWriter | undefined, log, 200);
    return await spawnService(svc, ctx, { path, cwd, env, cfg, log, out, note });
  } finally {
    closeSync(out);
  }
}

/** Spawn the service (in its cgroup where one can be made) and report it, as `start` does. */
async function spawnService(
  svc: Service,
  ctx: DriverContext,
  o: {
    path: string;
    cwd: string;
    env: Record<string, string>;
    cfg: BinaryConfig;
    log: string;
    out: number;
    note: (line: string) => void;
  },
): Promise<BinaryHandle> {
  const { path, cwd, env, cfg, log, out, note } = o;
  const name = svc.name;
  const marker = newMarker(ctx.paths, name);
  env[SERVICE_ID_VARIABLE] = marker;
  let cgroup = prepareCgroup(ctx.paths, ctx.env, name);
  note(`starting ${name}: ${[path, ...cfg.args].join(" ")}`);
  // Through a writer that keeps the log within [logs]; straight into the file without a bound.
  // Where the child may enter its cgroup itself (or there is none), its launcher forks the
  // writer: one spawn for both.
  const procs = cgroup ? childEntry(cgroup.dir) : undefined;
  const launcher = svc.logs && (procs || !cgroup)
    ? await launchWithWriter(ctx.paths, name, log, svc.logs, procs, Object.keys(env))
    : undefined;
  const output = svc.logs && !launcher
    ? await openLogOutput(ctx.paths, name, log, svc.logs)
    : undefined;
  const stdout = output?.fd ?? out;
  const run = (command: string, args: string[]) =>
    spawn(command, args, { cwd, env, detached: true, stdio: ["ignore", stdout, stdout] });
  // In its cgroup from birth: it cannot fork anything before it is tracked.
  let child = launcher
    ? spawn(launcher.command, launcher.args(path, cfg.args), { cwd, env, stdio: launcher.stdio })
    : cgroup
    ? spawnInCgroup(cgroup.dir, path, cfg.args, run)
    : undefined;
  if (!child) {
    if (cgroup) removeCgroup(cgroup.dir, cgroup.base);
    cgroup = undefined; // we may create it, not enter it: the marker alone tracks this start
    child = run(path, cfg.args);
  }
  child.on("error", () => {}); // reported through the "spawn" race below; later errors are moot
  // Listen before any await: a child that dies at once must not exit unobserved.
  const proc = child;
  const exited = new Promise<ExitInfo>((resolve) => {
    proc.once("exit", (code, signal) => resolve(recordExit(proc.pid!, code, signal)));
  });
  if (proc.pid) recordChild(proc.pid, exited);
  forgetScans(); // a status read must not answer from a scan made before this child was born
  const error = await new Promise<Error | undefined>((resolve) => {
    proc.once("spawn", () => resolve(undefined));
    proc.once("error", resolve);
  });
  // The child has its copy now; without one (it never ran), the writer reads the end and ends.
  output?.close();
  let writer = output?.writer;
  let problem = error && spawnProblem(error, path);
  if (launcher && !error) {
    writer = await launcher.writer(proc).catch((e: Error) => {
      problem = e.message;
      return undefined;
    });
  }
  if (problem) {
    if (launcher && !error) {
      // The launcher may have become the service before its writer failed: end it.
      try {
        process.kill(-proc.pid!, "SIGKILL");
      } catch { /* never got that far */ }
      await within(exited, 1000);
    }
    if (cgroup) removeCgroup(cgroup.dir, cgroup.base);
    const message = `Cannot start "${name}": ${problem}`;
    note(message);
    throw new ProvisioningError(message, { cause: error });
  }
  child.unref(); // only after a successful spawn (Deno throws on a child that never started)

  const pid = child.pid!;
  const data: BinaryHandle["data"] = {
    pgid: pid,
    log,
    marker,
    ...(cgroup ? { cgroup: cgroup.dir } : {}),
    ...(writer ? { log_writer: writer } : {}),
  };
  // This start's processes only: the marker with its nonce, the cgroup emptied above.
  const mine: Tracking = { prefix: marker, cgroup, pgid: pid, markers: !cgroup };
  if (cfg.pid_file) {
    const file = resolve(cwd, cfg.pid_file);
    return await daemonized(svc, ctx, { file, pid, exited, data, mine, note });
  }

  const pidStart = await processStartTime(pid);
  if (pidStart === undefined || !(await isAlive(pid, pidStart))) {
    // Gone before we could record it: report how it ended, and leave nothing of it behind.
    const exit = await within(exited, 1000);
    const rest = await killTracked(mine, { timeoutMs: 0, force: true });
    if (exit?.code === 0 && rest.found.length) {
      throw new ProvisioningError(forkedMessage(name, rest.found[0]), {
        hints: [`See the log: ${log}`],
      });
    }
    const how = exit ? describeExit(exit) : "exited at once";
    throw new ProvisioningError(`Cannot start "${name}": ${how} right after start`, {
      hints: [`See the log: ${log}`],
    });
  }
  return {
    pid,
    pid_start: pidStart,
    started_at: new Date().toISOString(),
    data,
    exited,
  };
}

/**
 * Kill what is left of an earlier start of the service, gracefully as a stop would, and say so
 * in its log. Throws when something survives SIGKILL (a start beside it would be a duplicate).
 */
async function endLeftovers(
  svc: Service,
  ctx: DriverContext,
  t: Tracking,
  note: (line: string) => void,
): Promise<void> {
  const r = await killTracked(t, {
    signal: normalizeSignal(svc.shutdown?.signal ?? "SIGTERM"),
    timeoutMs: (svc.shutdown?.timeout ?? 10) * 1000,
    abort: ctx.signal,
    // The status read just before this start (under the same lock) made that scan.
    firstLookMaxAgeMs: 50,
    keepCgroup: true,
  });
  if (r.found.length === 0) return;
  note(
    `${svc.name}: ended what an earlier start left running (pid ${r.found.join(", ")})` +
      (r.sigkill ? " with SIGKILL" : ""),
  );
  if (r.survivors.length) {
    throw new ProvisioningError(
      `Cannot start "${svc.name}": pid ${
        r.survivors.join(", ")
      } of an earlier start survived SIGKILL`,
      { hints: ["A process in uninterruptible sleep (D state) dies once its I/O returns"] },
    );
  }
}

/**
 * The start of a daemon that forks (systemd's `Type=forking` with `PIDFile=`): its start
 * command must exit 0 within `start_timeout`, and then `pid_file` must name a live process of
 * this start (in its cgroup, or carrying its marker); that process is the service's main pid.
 * Anything else kills what the start left and throws.
 */
async function daemonized(
  svc: Service,
  ctx: DriverContext,
  o: {
    file: string;
    pid: number;
    exited: Promise<ExitInfo>;
    data: BinaryHandle["data"];
    mine: Tracking;
    note: (line: string) => void;
  },
): Promise<BinaryHandle> {
  const name = svc.name;
  const seconds = svc.startup?.start_timeout ?? 30;
  const deadline = Date.now() + seconds * 1000;
  let exit: ExitInfo | undefined;
  o.exited.then((e) => (exit = e));
  const fail = async (problem: string): Promise<never> => {
    await killTracked(o.mine, { timeoutMs: 0, force: true });
    const message = `Cannot start "${name}": ${problem}`;
    o.note(message);
    throw new ProvisioningError(message, { hints: [`See the log: ${o.data.log}`] });
  };
  let named: number | undefined;
  let delay = 5;
  while (true) {
    if (ctx.signal?.aborted) {
      await killTracked(o.mine, { timeoutMs: 0, force: true });
      throw ctx.signal.reason;
    }
    if (exit && (exit.code !== 0 || exit.signal)) {
      return await fail(`its start command ${describeExit(exit)}`);
    }
    if (exit) {
      named = await readPidFile(o.file);
      const stat = named ? await procStat(named) : undefined;
      if (named && stat && stat.state !== "Z" && ofThisStart(named, o)) {
        o.note(`${name}: forked into the background, main pid ${named} (${o.file})`);
        return {
          pid: named,
          pid_start: stat.startTime,
          started_at: new Date().toISOString(),
          data: { ...o.data, pgid: stat.pgid, pid_file: o.file },
        };
      }
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      if (!exit) {
        return await fail(
          `its start command (pid ${o.pid}) did not exit within start_timeout (${seconds}s): ` +
            "with pid_file it must fork the daemon and exit",
        );
      }
      return await fail(
        named
          ? `pid_file ${o.file} names pid ${named}, which is not a live process of this start`
          : `pid_file ${o.file} did not name a process within start_timeout (${seconds}s)`,
      );
    }
    await pause(Math.min(delay, left), ctx.signal);
    delay = Math.min(delay * 2, 50);
  }
}

/** Whether `pid` was started by this start: in its cgroup, or carrying its very marker. */
function ofThisStart(pid: number, o: { data: BinaryHandle["data"] }): boolean {
  if (o.data.cgroup && cgroupPids(o.data.cgroup).includes(pid)) return true;
  return tagOf(pid, SERVICE_ID_VARIABLE) === o.data.marker;
}

/** The PID a pid file names, or undefined (missing, empty, not a number). */
async function readPidFile(file: string): Promise<number | undefined> {
  const text = await readFile(file, "utf8").catch(() => "");
  const pid = Number(text.trim().split(/\s+/)[0]);
  return Number.isSafeInteger(pid) && pid > 1 ? pid : undefined;
}

/** `ctx.env`, then the env file, then `env` of the table (later wins). */
async function childEnv(
  name: string,
  cfg: BinaryConfig,
  ctx: DriverContext,
  cwd: string,
): Promise<Record<string, string>> {
  let fromFile: Record<string, string> = {};
  if (cfg.env_file) {
    const file = resolve(cwd, cfg.env_file);
    try {
      fromFile = await loadEnvFile(file);
    } catch (error) {
      throw new ProvisioningError(`Cannot start "${name}": ${(error as Error).message}`, {
        exitCode: ExitCode.preflight,
        hints: ["Check env_file in the registry"],
        cause: error,
      });
    }
  }
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...ctx.env, ...fromFile, ...cfg.env })) {
    if (value !== undefined) env[key] = value;
  }
  return env;
}

/** `promise`'s value, or undefined when it takes longer than `ms` (the timer is cleared). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function spawnProblem(error: NodeJS.ErrnoException, path: string): string {
  if (error.code === "ENOENT" && existsSync(path)) {
    return `cannot execute "${path}": its interpreter (#! line) or loader is missing`;
  }
  if (error.code === "ENOENT") return `binary "${path}" not found`;
  if (error.code === "EACCES") return `binary "${path}" is not executable`;
  return error.message;
}

/** The binary deployment driver. */
const binaryDriver = defineDriver<BinaryConfig>({
  mode: "binary",
  config: binaryConfig,
  // The supervisor spawns it as its child, so a crash is seen at once.
  capabilities: { supervision: "child", owns: "process" },
  preflight: (svc: Service, ctx: DriverContext): Promise<Finding[]> =>
    binaryPreflight(binaryConfigOf(svc), ctx),
  start,
  stop: (svc, ctx, opts) => binaryStop(svc, ctx, opts),
  status: (svc, ctx) => binaryStatus(svc, ctx),
  logs: (svc, ctx, opts = {}) => binaryLogs(svc, ctx, opts),
  logLines: (svc, ctx, opts = {}) => binaryLogLines(svc, ctx, opts),
  configInputs: (svc, ctx) => envFileInputs(binaryConfigOf(svc), ctx),
});

/**
 * The variables of `env_file` as a start reads them (relative to `working_dir`): a reload
 * restarts the service when they change (not when only a comment does). An unreadable file is
 * an input too: the start will fail on it.
 */
async function envFileInputs(
  cfg: BinaryConfig,
  ctx: DriverContext,
): Promise<Record<string, unknown>> {
  if (!cfg.env_file) return {};
  const file = resolve(ctx.cwd, cfg.working_dir ?? ".", cfg.env_file);
  const vars = await loadEnvFile(file).catch((e) => ({ unreadable: (e as Error).message }));
  return { "deployment.binary.env_file": vars };
}

/**
 * The service's log, as `tail -n N [-F]`. When the service has ended, its writer gets to write
 * the last lines first (it ends within milliseconds once the FIFO is closed), so the lines of a
 * crash are there to read.
 */
async function* binaryLogs(
  svc: Service,
  ctx: DriverContext,
  opts: LogOptions,
): AsyncGenerator<string> {
  const log = await drainedLogOf(svc, ctx);
  yield* readLog(log, {
    lines: opts.lines ?? 50,
    follow: opts.follow,
    signal: opts.signal ?? ctx.signal,
  });
}

/** `binaryLogs` with times, across rotated files (`core/state/log_times.ts`). */
async function* binaryLogLines(
  svc: Service,
  ctx: DriverContext,
  opts: LogOptions,
): AsyncGenerator<LogLine> {
  const log = await drainedLogOf(svc, ctx);
  yield* readTimedLog(log, { ...opts, signal: opts.signal ?? ctx.signal });
}

/** The service's log file, once the writer of a service that has ended has written its last. */
async function drainedLogOf(svc: Service, ctx: DriverContext): Promise<string> {
  const log = logFile(ctx.paths, svc.name);
  const state = await readState(ctx.paths, svc.name).catch(() => undefined);
  const writer = state?.handle?.log_writer as LogWriter | undefined;
  if (writer && !(state?.pid && (await isAlive(state.pid, state.pid_start)))) {
    await drainedLog(writer, log, 500);
  }
  return log;
}

export default binaryDriver;
