/**
 * Stop and status of binary services, from the recorded state. Neither writes state: the
 * caller records what they report in the state store.
 *
 * A PID is ours only while the state names it together with its start time and a process with
 * that PID and start time is alive. Anything else is a stale record, reported as such (`stale`)
 * for an explicit reconcile; nothing is ever signalled, so a reused PID can never cost a foreign
 * process its life.
 *
 * @module
 */
import { ProvisioningError } from "../../core/errors.ts";
import { groupMembers, isAlive, killGroup, waitGone } from "../../core/process/identity.ts";
import { readPid, readState } from "../../core/state/store.ts";
import {
  describeExit,
  type DriverContext,
  type ExitInfo,
  type RuntimeStatus,
  type Service,
  type StopOptions,
  type StopResult,
} from "../../core/types.ts";

/** Exits of children started by this process, by PID (a status in the same process reports them). */
const exits = new Map<number, ExitInfo>();

/** Remember the exit of a child of this process; returns the exit. */
export function recordExit(pid: number, code: number | null, signal: string | null): ExitInfo {
  exits.set(pid, { code, signal });
  return { code, signal };
}

/** How long to wait for the group to vanish after SIGKILL before declaring survivors. */
const KILL_WAIT_MS = 5_000;

/**
 * Stop the service: its shutdown signal to the whole process group, up to `shutdown.timeout`
 * seconds for every member to go (a zombie counts as gone), then SIGKILL (`force`: at once).
 * A record without a live process of ours is left alone. Throws when a process survives SIGKILL.
 */
export async function binaryStop(
  svc: Service,
  ctx: DriverContext,
  opts: StopOptions = {},
): Promise<StopResult> {
  const name = svc.name;
  const state = await readState(ctx.paths, name);
  const pid = state?.pid;
  if (!pid || !state?.pid_start || !(await isAlive(pid, state.pid_start))) return {};
  const start = state.pid_start;
  const exists = async () => (await groupMembers(pid)).length > 0 || (await isAlive(pid, start));
  const signal = opts.signal ?? ctx.signal;
  let gone = false;
  if (!opts.force) {
    signalGroup(pid, normalizeSignal(svc.shutdown?.signal ?? "SIGTERM"));
    gone = await waitGone(exists, (svc.shutdown?.timeout ?? 10) * 1000, { signal });
  }
  if (gone) return { exit: exits.get(pid) };
  signalGroup(pid, "SIGKILL");
  gone = await waitGone(exists, KILL_WAIT_MS, { signal });
  if (!gone) {
    const survivors = await groupMembers(pid);
    if (await isAlive(pid, start) && !survivors.includes(pid)) survivors.unshift(pid);
    throw new ProvisioningError(
      `Cannot stop "${name}": pid ${survivors.join(", ")} survived SIGKILL`,
      { hints: ["A process in uninterruptible sleep (D state) dies once its I/O returns"] },
    );
  }
  return { killed: !opts.force, exit: exits.get(pid) };
}

/** Status from the recorded state and the process table. A pure read. */
export async function binaryStatus(svc: Service, ctx: DriverContext): Promise<RuntimeStatus> {
  const name = svc.name;
  const state = await readState(ctx.paths, name);
  const restarts = state?.restarts ?? 0;
  const pid = state?.pid ?? (await readPid(ctx.paths, name));
  const recorded = state?.status ?? "stopped";
  const detail = {
    restarts,
    ...(state?.message ? { message: state.message } : {}),
    ...(state?.last_exit
      ? { exit_code: state.last_exit.code, exit_signal: state.last_exit.signal }
      : {}),
    ...(state?.next_attempt_at ? { next_attempt_at: state.next_attempt_at } : {}),
    ...(state?.last_log_lines ? { last_log_lines: state.last_log_lines } : {}),
  };
  if (pid && state?.pid === pid && state.pid_start && (await isAlive(pid, state.pid_start))) {
    const status = recorded === "starting" || recorded === "stopping" ? recorded : "running";
    const started = state.started_at ? Date.parse(state.started_at) : NaN;
    const uptime_s = Number.isNaN(started)
      ? undefined
      : Math.max(0, Math.floor((Date.now() - started) / 1000));
    return { ...detail, status, pid, uptime_s };
  }
  if (!pid) return { ...detail, status: recorded === "stopping" ? "stopped" : recorded };
  // A PID on record without a live process of ours: a stale record.
  const foreign = await isAlive(pid);
  if (!state?.pid_start || state.pid !== pid || foreign) {
    return {
      ...detail,
      status: recorded === "running" || recorded === "starting"
        ? "failed"
        : recorded === "stopping"
        ? "stopped"
        : recorded,
      stale: true,
      message: foreign
        ? `PID ${pid} belongs to another process (stale PID file)`
        : `Process ${pid} is gone (stale PID file)`,
    };
  }
  if (recorded === "stopping") return { ...detail, status: "stopped", stale: true };
  const exit = exits.get(pid) ??
    (state.last_exit && state.started_at && state.last_exit.at >= state.started_at
      ? state.last_exit
      : undefined);
  const how = exit ? describeExit(exit) : "exited while no supervisor watched it";
  return {
    ...detail,
    status: "failed",
    stale: true,
    message: `Process ${pid} ${how}`,
    ...(exit ? { exit_code: exit.code, exit_signal: exit.signal } : {}),
  };
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
