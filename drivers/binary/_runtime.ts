/**
 * Stop and status of binary services, from the state and PID files.
 *
 * A PID is ours only while the state file names it together with its start time and a process
 * with that PID and start time is alive. Anything else is a stale record: it is cleaned up and
 * nothing is ever signalled, so a reused PID can never cost a foreign process its life.
 *
 * @module
 */
import { ProvisioningError } from "../../core/errors.ts";
import { groupMembers, isAlive, killGroup, waitGone } from "../../core/process/identity.ts";
import { readPid, readState, removePid, safeName, writeState } from "../../core/state/files.ts";
import type {
  DriverContext,
  RuntimeStatus,
  Service,
  ServiceState,
  StopOptions,
} from "../../core/types.ts";

/** How a child ended: exit code, or the signal that killed it. */
export interface ExitInfo {
  code: number | null;
  signal: string | null;
}

/** Exits of children started by this process, by PID (a stop or status reports them). */
const exits = new Map<number, ExitInfo & { at: string }>();

/** Remember the exit of a child of this process; returns the exit. */
export function recordExit(pid: number, code: number | null, signal: string | null): ExitInfo {
  exits.set(pid, { code, signal, at: new Date().toISOString() });
  return { code, signal };
}

/** How long to wait for the group to vanish after SIGKILL before declaring survivors. */
const KILL_WAIT_MS = 5_000;

/**
 * Stop the service: its shutdown signal to the whole process group, up to `shutdown.timeout`
 * seconds for every member to go (a zombie counts as gone), then SIGKILL (`force`: at once).
 * A stale PID is only cleaned up. Throws when a process survives SIGKILL.
 */
export async function binaryStop(
  svc: Service,
  ctx: DriverContext,
  opts: StopOptions = {},
): Promise<void> {
  const name = safeName(svc.name);
  const state = await readState(ctx.paths, name);
  const pid = state?.pid ?? (await readPid(ctx.paths, name));
  if (!pid || !state?.pid_start || state.pid !== pid || !(await isAlive(pid, state.pid_start))) {
    if (pid) await cleanStale(ctx, name, pid);
    if (state && state.status !== "stopped" && state.status !== "failed") {
      await writeState(ctx.paths, stoppedState(state, pid));
    }
    return;
  }
  const start = state.pid_start;
  await writeState(ctx.paths, { ...state, status: "stopping" });
  const exists = async () => (await groupMembers(pid)).length > 0 || (await isAlive(pid, start));
  const signal = opts.signal ?? ctx.signal;
  let gone = false;
  if (!opts.force) {
    signalGroup(pid, normalizeSignal(svc.shutdown?.signal ?? "SIGTERM"));
    gone = await waitGone(exists, (svc.shutdown?.timeout ?? 10) * 1000, { signal });
  }
  if (!gone) {
    signalGroup(pid, "SIGKILL");
    gone = await waitGone(exists, KILL_WAIT_MS, { signal });
  }
  if (!gone) {
    const survivors = await groupMembers(pid);
    if (await isAlive(pid, start) && !survivors.includes(pid)) survivors.unshift(pid);
    throw new ProvisioningError(
      `Cannot stop "${name}": pid ${survivors.join(", ")} survived SIGKILL`,
      { hints: ["A process in uninterruptible sleep (D state) dies once its I/O returns"] },
    );
  }
  await removePid(ctx.paths, name);
  await writeState(ctx.paths, stoppedState(state, pid));
}

/** Status from the state and PID files; a stale PID file is removed on the way. */
export async function binaryStatus(svc: Service, ctx: DriverContext): Promise<RuntimeStatus> {
  const name = safeName(svc.name);
  const state = await readState(ctx.paths, name);
  const filePid = await readPid(ctx.paths, name);
  const pid = state?.pid ?? filePid;
  const restarts = state?.restarts ?? 0;
  if (pid && state?.pid_start && state.pid === pid && (await isAlive(pid, state.pid_start))) {
    const status = state.status === "starting" || state.status === "stopping"
      ? state.status
      : "running";
    const started = state.started_at ? Date.parse(state.started_at) : NaN;
    const uptime_s = Number.isNaN(started)
      ? undefined
      : Math.max(0, Math.floor((Date.now() - started) / 1000));
    // A live service's message is the supervisor's word on it ("Unhealthy: ...").
    return {
      status,
      pid,
      uptime_s,
      restarts,
      ...(state.message ? { message: state.message } : {}),
    };
  }
  const last = state?.last_exit;
  const lastExit = last ? { exit_code: last.code, exit_signal: last.signal } : {};
  if (!pid) {
    const status = state?.status === "failed" ? "failed" : "stopped";
    return { status, restarts, message: state?.message, ...lastExit };
  }
  // A PID without a live process that is ours: a stale record.
  const exit = exits.get(pid);
  const foreign = !exit && (await isAlive(pid));
  const message = foreign
    ? `PID ${pid} belongs to another process (stale PID file removed)`
    : exit
    ? `Process ${pid} ${
      exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`
    }`
    : `Process ${pid} exited while unwatched`;
  await cleanStale(ctx, name, pid);
  if (!state || state.status === "stopped" || state.status === "failed") {
    return {
      status: state?.status === "failed" ? "failed" : "stopped",
      restarts,
      message,
      ...lastExit,
    };
  }
  // It was running, starting or stopping; unless we were stopping it, it failed.
  const next: ServiceState = state.status === "stopping"
    ? stoppedState(state, pid)
    : { ...stoppedState(state, pid), status: "failed", message };
  await writeIfUnchanged(ctx, state, next);
  return {
    status: next.status,
    restarts,
    message,
    ...(next.last_exit
      ? { exit_code: next.last_exit.code, exit_signal: next.last_exit.signal }
      : {}),
  };
}

/** `state` after its process `pid` is gone: no PID, stopped_at, last_exit when we know it. */
function stoppedState(state: ServiceState, pid: number | undefined): ServiceState {
  const { pid: _pid, pid_start: _start, message: _message, ...rest } = state;
  const exit = pid ? exits.get(pid) : undefined;
  return {
    ...rest,
    status: "stopped",
    stopped_at: new Date().toISOString(),
    last_exit: exit ?? state.last_exit,
  };
}

/**
 * Remove the PID file of `name` if it still names `pid` and no newer start has claimed `pid`
 * meanwhile (a start writes the state before the PID file).
 */
async function cleanStale(ctx: DriverContext, name: string, pid: number): Promise<void> {
  const now = await readState(ctx.paths, name);
  if (now?.pid === pid && now.pid_start && (await isAlive(pid, now.pid_start))) return;
  if ((await readPid(ctx.paths, name)) === pid) await removePid(ctx.paths, name);
}

/** Write `next` unless another CLI changed the state since we read `seen` (compare-and-write). */
async function writeIfUnchanged(
  ctx: DriverContext,
  seen: ServiceState,
  next: ServiceState,
): Promise<void> {
  const now = await readState(ctx.paths, seen.name);
  if (now?.pid === seen.pid && now?.pid_start === seen.pid_start && now?.status === seen.status) {
    await writeState(ctx.paths, next);
  }
}

/** Signal the group led by `pid`; if the leader left its group, at least the leader. */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  if (killGroup(pid, signal)) return;
  try {
    process.kill(pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

/** `TERM`, `sigterm` and `SIGTERM` all name SIGTERM. */
function normalizeSignal(name: string): NodeJS.Signals {
  const upper = name.toUpperCase();
  return (upper.startsWith("SIG") ? upper : `SIG${upper}`) as NodeJS.Signals;
}
