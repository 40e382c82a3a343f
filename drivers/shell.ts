/**
 * The `shell` deployment mode: a service some other tool runs — systemd, a vendor's control
 * script, `pg_ctl`, a daemon that forks — managed through four commands.
 *
 * ```toml
 * [services.cache.deployment]
 * mode = "shell"
 *
 * [services.cache.deployment.shell]
 * start = "redis-server /etc/redis/cache.conf --daemonize yes --pidfile /run/cache.pid"
 * stop = "kill $(cat /run/cache.pid)"
 * status = "kill -0 $(cat /run/cache.pid)"   # exit 0 = running
 * logs = "tail -n $PROVISIONING_LOG_LINES /var/log/cache.log"   # optional
 * pid_file = "/run/cache.pid"                # optional: shown by status, SIGKILL as a last resort
 * working_dir = "/srv/cache"                 # optional
 * env = { LANG = "C.UTF-8" }                 # optional
 * ```
 *
 * Each command runs with `/bin/sh -c` in its own process group, with the service's environment
 * plus `PROVISIONING_SERVICE`. `start` must return once the service is launched; the driver then
 * waits (within `startup.start_timeout`) until `status` exits 0. `stop` is followed by waiting
 * (within `shutdown.timeout`) until `status` exits non-zero. Output of `start` and `stop` goes
 * to `services/logs/<name>.log`; `logs` defaults to that file. A `logs` command receives
 * `PROVISIONING_LOG_LINES` and `PROVISIONING_LOG_FOLLOW` (`1` when following).
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { z } from "zod";
import { ExitCode, ProvisioningError } from "../core/errors.ts";
import { defineDriver, driverConfig, shellLine } from "../core/plugins/api.ts";
import { logFile } from "../core/state/files.ts";
import { readState } from "../core/state/store.ts";
import type {
  DriverContext,
  Handle,
  LogLine,
  LogOptions,
  RuntimeStatus,
  Service,
  StopOptions,
} from "../core/types.ts";
import { readLog } from "../core/state/log_tail.ts";
import { readTimedLog } from "../core/state/log_times.ts";
import { runShell, shellLines, type ShellResult } from "./shell/_run.ts";
import { shellPreflight } from "./shell/_preflight.ts";

/** A shell line: `${VAR}` values the registry substitutes into it are quoted (no injection). */
const command = shellLine(z.string().trim().min(1, "Must be a shell command"));

const config = z.strictObject({
  /** Launches the service and returns (a daemon that forks, `systemctl start x` ...). */
  start: command,
  /** Asks it to stop. */
  stop: command,
  /** Exits 0 while it runs. */
  status: command,
  /** Prints its log (default: the output of start and stop, kept by this tool). */
  logs: command.optional(),
  /** A file holding its PID, when it writes one. */
  pid_file: z.string().min(1).optional(),
  working_dir: z.string().min(1).optional(),
  env: z.record(z.string(), z.string()).default({}),
});

/** `[services.X.deployment.shell]` after defaults. */
export type ShellConfig = z.output<typeof config>;

/** How long a `status` command may take. */
const STATUS_TIMEOUT_MS = 10_000;
/** How long a `logs` command may take when not following. */
const LOGS_TIMEOUT_MS = 30_000;

const shell = defineDriver({
  mode: "shell",
  config,
  // Another tool runs it (systemd, a control script): nobody here restarts it.
  capabilities: { supervision: "none", owns: "process" },
  preflight: (svc, ctx) => shellPreflight(options(svc, ctx).cfg, ctx),
  start,
  stop,
  status,
  logs,
  logLines,
});
export default shell;

/** The validated table, the commands' environment and working directory. */
function options(
  svc: Service,
  ctx: DriverContext,
  extra: Record<string, string> = {},
): { cfg: ShellConfig; env: Record<string, string>; cwd?: string } {
  const cfg: ShellConfig = driverConfig(shell, svc);
  const env: Record<string, string> = {};
  const all = { ...ctx.env, ...cfg.env, PROVISIONING_SERVICE: svc.name, ...extra };
  for (const [k, v] of Object.entries(all)) if (v !== undefined) env[k] = v;
  return { cfg, env, cwd: resolve(ctx.cwd, cfg.working_dir ?? ".") };
}

/** `exited with code 3: <last line of output>` and the like. */
function failure(what: string, r: ShellResult, timeoutMs: number): string {
  const how = r.timedOut
    ? `did not finish within ${timeoutMs / 1000}s (killed)`
    : r.cancelled
    ? "was cancelled"
    : r.code === 127
    ? "failed: command not found (exit 127)"
    : `exited with code ${r.code}`;
  return `${what} command ${how}${r.tail.length ? `: ${r.tail.at(-1)}` : ""}`;
}

async function start(svc: Service, ctx: DriverContext): Promise<Handle> {
  const { cfg, env, cwd } = options(svc, ctx);
  const log = logFile(ctx.paths, svc.name);
  const deadline = performance.now() + svc.startup.start_timeout * 1000;
  const timeoutMs = svc.startup.start_timeout * 1000;
  const r = await runShell(cfg.start, {
    cwd,
    env,
    timeoutMs,
    signal: ctx.signal,
    log,
    banner: `starting ${svc.name}: ${cfg.start}`,
  }).catch((e) => fail(svc, "start", e));
  if (r.code !== 0) {
    throw new ProvisioningError(`Cannot start "${svc.name}": ${failure("start", r, timeoutMs)}`, {
      hints: [`See the log: ${log}`],
    });
  }
  const running = await waitStatus(svc, ctx, true, deadline - performance.now());
  if (!running.ok) {
    throw new ProvisioningError(
      `Cannot start "${svc.name}": the start command succeeded but the status command ${running.why}`,
      { hints: [`Check the status command: ${cfg.status}`, `See the log: ${log}`] },
    );
  }
  const pid = await readPidFile(cfg.pid_file);
  return { started_at: new Date().toISOString(), ...(pid ? { pid } : {}) };
}

async function stop(svc: Service, ctx: DriverContext, opts: StopOptions = {}): Promise<void> {
  const { cfg, env, cwd } = options(svc, ctx);
  if ((await runStatus(svc, ctx)).code !== 0) return; // nothing to stop
  const log = logFile(ctx.paths, svc.name);
  const timeoutMs = (svc.shutdown.timeout + 10) * 1000;
  const r = await runShell(cfg.stop, {
    cwd,
    env,
    timeoutMs,
    log,
    banner: `stopping ${svc.name}: ${cfg.stop}`,
  }).catch((e) => fail(svc, "stop", e));
  if (r.code !== 0) {
    throw new ProvisioningError(`Cannot stop "${svc.name}": ${failure("stop", r, timeoutMs)}`, {
      hints: [`See the log: ${log}`],
    });
  }
  const graceMs = opts.force ? 0 : Math.max(1000, svc.shutdown.timeout * 1000);
  if ((await waitStatus(svc, ctx, false, graceMs)).ok) return;
  const pid = await readPidFile(cfg.pid_file);
  if (pid) {
    try {
      process.kill(pid, "SIGKILL");
    } catch { /* gone meanwhile */ }
    if ((await waitStatus(svc, ctx, false, 5000)).ok) return;
  }
  throw new ProvisioningError(
    `Cannot stop "${svc.name}": the status command still reports it running ${
      graceMs / 1000
    }s after the stop command`,
    { hints: [pid ? `PID ${pid} survived SIGKILL` : "Set pid_file to allow a forced kill"] },
  );
}

async function status(svc: Service, ctx: DriverContext): Promise<RuntimeStatus> {
  const { cfg } = options(svc, ctx);
  const r = await runStatus(svc, ctx);
  const state = await readState(ctx.paths, svc.name);
  if (r.code === 0) {
    const pid = await readPidFile(cfg.pid_file);
    const started = Date.parse(state?.started_at ?? "");
    return {
      status: "running",
      ...(pid ? { pid } : {}),
      ...(Number.isNaN(started) ? {} : { uptime_s: Math.round((Date.now() - started) / 1000) }),
      restarts: state?.restarts ?? 0,
    };
  }
  if (r.timedOut || r.code === 126 || r.code === 127 || r.code === null) {
    return { status: "failed", message: failure("status", r, STATUS_TIMEOUT_MS) };
  }
  if (state?.status === "running") { // it was up and nobody stopped it through us
    return {
      status: "failed",
      restarts: state.restarts,
      message: `Not running any more: the status command exits ${r.code}`,
    };
  }
  return { status: "stopped", restarts: state?.restarts ?? 0 };
}

async function* logs(
  svc: Service,
  ctx: DriverContext,
  opts: LogOptions = {},
): AsyncIterable<string> {
  const lines = opts.lines ?? 50;
  const signal = opts.signal ?? ctx.signal;
  const { cfg, env, cwd } = options(svc, ctx, {
    PROVISIONING_LOG_LINES: String(lines),
    PROVISIONING_LOG_FOLLOW: opts.follow ? "1" : "0",
  });
  if (!cfg.logs) {
    yield* readLog(logFile(ctx.paths, svc.name), { lines, follow: opts.follow, signal });
    return;
  }
  const out = shellLines(cfg.logs, {
    cwd,
    env,
    signal,
    timeoutMs: opts.follow ? 2 ** 31 - 1 : LOGS_TIMEOUT_MS,
  });
  if (opts.follow) return yield* out;
  const last: string[] = [];
  for await (const line of out) {
    last.push(line);
    if (last.length > lines) last.shift();
  }
  yield* last;
}

/**
 * `logs` with times: those of the log file of ours (`core/state/log_times.ts`); the lines of a
 * `logs` command of its own carry none.
 */
async function* logLines(
  svc: Service,
  ctx: DriverContext,
  opts: LogOptions = {},
): AsyncIterable<LogLine> {
  if (options(svc, ctx).cfg.logs) {
    for await (const line of logs(svc, ctx, opts)) yield { line };
    return;
  }
  const signal = opts.signal ?? ctx.signal;
  yield* readTimedLog(logFile(ctx.paths, svc.name), { ...opts, signal });
}

function runStatus(svc: Service, ctx: DriverContext): Promise<ShellResult> {
  const { cfg, env, cwd } = options(svc, ctx);
  return runShell(cfg.status, { cwd, env, timeoutMs: STATUS_TIMEOUT_MS, signal: ctx.signal })
    .catch((e) => fail(svc, "status", e));
}

/** Poll `status` until it says `running` (or not), with growing delays, for up to `ms`. */
async function waitStatus(
  svc: Service,
  ctx: DriverContext,
  running: boolean,
  ms: number,
): Promise<{ ok: boolean; why: string }> {
  const end = performance.now() + Math.max(0, ms);
  let delay = 20;
  for (;;) {
    const r = await runStatus(svc, ctx);
    if ((r.code === 0) === running) return { ok: true, why: "" };
    const left = end - performance.now();
    if (left <= 0 || ctx.signal?.aborted) {
      return { ok: false, why: `does not report it running (${failure("status", r, 0)})` };
    }
    await new Promise((r) => setTimeout(r, Math.min(delay, left)));
    delay = Math.min(delay * 2, 500);
  }
}

async function readPidFile(file: string | undefined): Promise<number | undefined> {
  if (!file) return undefined;
  const text = await readFile(file, "utf8").catch(() => "");
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

function fail(svc: Service, what: string, e: unknown): never {
  throw new ProvisioningError(
    `Cannot run the ${what} command of "${svc.name}": ${(e as Error).message}`,
    { exitCode: ExitCode.preflight, cause: e },
  );
}
