/**
 * Binary deployment mode: `[services.X.deployment.binary]` runs a local executable.
 *
 * The process is spawned detached (`setsid`: its own session and process group, so it outlives
 * the CLI and a stop can signal everything it forked), with stdout and stderr appended to
 * `services/logs/<name>.log`. `start` reports its PID and start time; the caller records them
 * in the state store, and later calls trust the PID only while the process with that PID still
 * has that start time. The driver never writes state.
 *
 * The driver does not lock: callers that may race (two CLIs starting one service) wrap
 * `status` + `start` in `withLock` from `core/state/lock.ts`.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, writeSync } from "node:fs";
import { resolve } from "node:path";
import { z } from "zod";
import { ExitCode, ProvisioningError } from "../core/errors.ts";
import { defineDriver, driverConfig } from "../core/plugins/api.ts";
import { rotateIfLarger } from "../core/state/rotate.ts";
import { isAlive, processStartTime } from "../core/process/identity.ts";
import { ensureDirs, logFile, openAppend, safeName } from "../core/state/files.ts";
import { readPid, readState } from "../core/state/store.ts";
import {
  describeExit,
  type DriverContext,
  type ExitInfo,
  type Finding,
  type Handle,
  type Service,
} from "../core/types.ts";
import { binaryChecks, binaryPreflight, resolveBinary } from "./binary/_files.ts";
import { binaryStatus, binaryStop, recordExit } from "./binary/_runtime.ts";
import { loadEnvFile } from "./binary/_env_file.ts";
import { readLog } from "../core/state/log_tail.ts";

/** Schema of `[services.X.deployment.binary]`. */
export const binaryConfig = z.strictObject({
  binary_path: z.string().min(1, "Must name the executable"),
  args: z.array(z.string()).default([]),
  working_dir: z.string().min(1).optional(),
  env: z.record(z.string(), z.string()).default({}),
  env_file: z.string().min(1).optional(),
});
export type BinaryConfig = z.infer<typeof binaryConfig>;

/** What `start` returns: the PID (also the process group id) and the child's exit. */
export interface BinaryHandle extends Handle {
  pid: number;
  pid_start: string;
  /** The process group id and the log file stdout and stderr go to. */
  data: { pgid: number; log: string };
  /**
   * Settles when the child exits while this process is alive (it never rejects), so a
   * same-process caller learns a crash during startup at once. It does not keep the event loop
   * alive: race it with something that does (the prober's timers), or use {@linkcode waitExit}.
   */
  exited: Promise<ExitInfo>;
}

/**
 * The exit of a started child, keeping the event loop alive while waiting; undefined after
 * `timeoutMs` (default: no limit).
 */
export function waitExit(
  handle: BinaryHandle,
  timeoutMs = Infinity,
): Promise<ExitInfo | undefined> {
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
  const out = openAppend(log);
  let child;
  let exited: Promise<ExitInfo> | undefined;
  try {
    writeSync(
      out,
      `--- ${new Date().toISOString()} starting ${name}: ${[path, ...cfg.args].join(" ")}\n`,
    );
    child = spawn(path, cfg.args, {
      cwd,
      env,
      detached: true,
      stdio: ["ignore", out, out],
    });
    child.on("error", () => {}); // reported through the "spawn" race below; later errors are moot
    // Listen before any await: a child that dies at once must not exit unobserved.
    const proc = child;
    exited = new Promise<ExitInfo>((resolve) => {
      proc.once("exit", (code, signal) => resolve(recordExit(proc.pid!, code, signal)));
    });
    const error = await new Promise<Error | undefined>((resolve) => {
      child!.once("spawn", () => resolve(undefined));
      child!.once("error", resolve);
    });
    if (error) {
      const message = `Cannot start "${name}": ${spawnProblem(error, path)}`;
      writeSync(out, `--- ${new Date().toISOString()} ${message}\n`);
      throw new ProvisioningError(message, { cause: error });
    }
    child.unref(); // only after a successful spawn (Deno throws on a child that never started)
  } finally {
    closeSync(out);
  }

  const pid = child.pid!;

  const pidStart = await processStartTime(pid);
  if (pidStart === undefined) { // gone before we could record it: report how it ended
    const exit = await within(exited!, 1000);
    const how = exit ? describeExit(exit) : "exited at once";
    throw new ProvisioningError(`Cannot start "${name}": ${how} right after start`, {
      hints: [`See the log: ${log}`],
    });
  }
  return {
    pid,
    pid_start: pidStart,
    started_at: new Date().toISOString(),
    data: { pgid: pid, log },
    exited: exited!,
  };
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
  logs: (svc, ctx, opts = {}) =>
    readLog(logFile(ctx.paths, svc.name), {
      lines: opts.lines ?? 50,
      follow: opts.follow,
      signal: opts.signal ?? ctx.signal,
    }),
});

export default binaryDriver;
