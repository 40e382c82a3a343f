/**
 * Stop and status of binary services, from the recorded state and the service's processes.
 * Neither writes state: the caller records what they report in the state store.
 *
 * A PID is ours only while the state names it together with its start time and a process with
 * that PID and start time is alive. Anything else is a stale record, reported as such (`stale`)
 * for an explicit reconcile; a PID of a record is never signalled on its own, so a reused PID can
 * never cost a foreign process its life.
 *
 * The rest of a service — what its main process forked — is found by its cgroup or its
 * environment marker (`_track.ts`), with or without a record: `status` reports such processes
 * (`leftovers` beside a dead leader; `running` when there is no usable record at all) and `stop`
 * kills them.
 *
 * @module
 */
import { ProvisioningError } from "../../core/errors.ts";
import { isAlive, procStat } from "../../core/process/identity.ts";
import { endLogWriter, type LogWriter } from "../../core/process/log_writer.ts";
import { logFile } from "../../core/state/files.ts";
import { readPid, readState } from "../../core/state/store.ts";
import {
  describeExit,
  type DriverContext,
  type ExitInfo,
  type RuntimeStatus,
  type Service,
  type ServiceState,
  type StopOptions,
  type StopResult,
} from "../../core/types.ts";
import { killTracked, trackedProcesses, trackingOf } from "./_track.ts";

/** Exits of children started by this process, by PID (a status in the same process reports them). */
const exits = new Map<number, ExitInfo>();

/** Children started by this process that have not exited yet: their coming exit. */
const running = new Map<number, Promise<ExitInfo>>();

/** Remember the exit of a child of this process; returns the exit. */
export function recordExit(pid: number, code: number | null, signal: string | null): ExitInfo {
  exits.set(pid, { code, signal });
  running.delete(pid);
  return { code, signal };
}

/** Remember a child of this process, so that a stop can report how it ended. */
export function recordChild(pid: number, exited: Promise<ExitInfo>): void {
  if (!exits.has(pid)) running.set(pid, exited);
}

/**
 * How the child `pid` of this process ended: it may be dead (a zombie counts as gone) a moment
 * before we reap it, so wait up to `ms` for its exit. Undefined for a process not our child.
 */
async function childExit(pid: number, ms = 1_000): Promise<ExitInfo | undefined> {
  const known = exits.get(pid);
  const coming = running.get(pid);
  if (known || !coming) return known;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([coming, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Stop the service: its shutdown signal to every process of it — the leader's process group, its
 * cgroup, every process carrying its marker (see `_track.ts`) — up to `shutdown.timeout` seconds
 * for all of them to go (a zombie counts as gone), then SIGKILL (`force`: at once). This holds
 * when the leader is gone and only its children are left, and when there is no usable record.
 * A record whose PID is not ours is never signalled. Throws when a process survives SIGKILL.
 */
export async function binaryStop(
  svc: Service,
  ctx: DriverContext,
  opts: StopOptions = {},
): Promise<StopResult> {
  const name = svc.name;
  const state = await readState(ctx.paths, name);
  const pid = state?.pid;
  const leader = pid && state?.pid_start && (await isAlive(pid, state.pid_start))
    ? { pid, start: state.pid_start }
    : undefined;
  const r = await killTracked(trackingOf(ctx.paths, ctx.env, name, state, leader), {
    signal: normalizeSignal(svc.shutdown?.signal ?? "SIGTERM"),
    timeoutMs: (svc.shutdown?.timeout ?? 10) * 1000,
    force: opts.force,
    abort: opts.signal ?? ctx.signal,
  });
  if (r.survivors.length) {
    throw new ProvisioningError(
      `Cannot stop "${name}": pid ${r.survivors.join(", ")} survived SIGKILL`,
      { hints: ["A process in uninterruptible sleep (D state) dies once its I/O returns"] },
    );
  }
  // Its writer has the last lines it wrote: in the log before stop returns (then it ends).
  await endLogWriter(
    state?.handle?.log_writer as LogWriter | undefined,
    logFile(ctx.paths, name),
    1_000,
  );
  if (r.found.length === 0) return {};
  // How its main process ended: the leader's, or without a record the one child of ours found.
  const main = leader?.pid ?? r.found.find((p) => running.has(p) || exits.has(p)) ?? pid;
  const exit = main ? await childExit(main) : undefined;
  return { ...(r.sigkill && !opts.force ? { killed: true } : {}), ...(exit ? { exit } : {}) };
}

/** How long a status read may reuse a marker scan (a `platform status` reads many services). */
const SCAN_REUSE_MS = 50;

/** Status from the recorded state and the process table. A pure read. */
export async function binaryStatus(svc: Service, ctx: DriverContext): Promise<RuntimeStatus> {
  const base = await recordedStatus(svc, ctx);
  if (base.live) return base.status;
  // Its main process is not running (or there is no record): look for the rest of it.
  const { state, status } = base;
  const t = trackingOf(ctx.paths, ctx.env, svc.name, state);
  const found = await trackedProcesses(t, { maxAgeMs: SCAN_REUSE_MS });
  if (found.length === 0) return status;
  const pids = found.map((f) => f.pid);
  if (!state) {
    // No usable record (none, or a corrupt file) while processes of the service run: it runs.
    const ours = found.filter((f) => f.trusted).map((f) => f.pid);
    if (ours.length) {
      const recordedPid = await readPid(ctx.paths, svc.name);
      const main = recordedPid && ours.includes(recordedPid) ? recordedPid : await leaderOf(ours);
      return {
        status: "running",
        pid: main,
        restarts: 0,
        message: `Found pid ${main} of this service without a record`,
      };
    }
  }
  const leftovers = { leftovers: pids };
  const still = stillRunning(pids);
  if (state?.status === "stopping") {
    // A stop is under way and has not finished: the rest of it is still there.
    const { stale: _, ...rest } = status;
    return { ...rest, ...leftovers, status: "stopping", message: still };
  }
  if (status.stale && state?.pid && (state.status === "running" || state.status === "starting")) {
    const exit = status.exit_code !== undefined || status.exit_signal
      ? { code: status.exit_code ?? null, signal: status.exit_signal ?? null }
      : undefined;
    const message = exit?.code === 0 && !exit.signal
      ? forkedMessage(svc.name, pids[0])
      : `${status.message ?? `Process ${state.pid} is gone`}; ${still}`;
    return { ...status, ...leftovers, message };
  }
  return {
    ...status,
    ...leftovers,
    message: status.message ? `${status.message}; ${still}` : still,
  };
}

/** The error of a start command that forked into the background and exited. */
export function forkedMessage(name: string, pid: number): string {
  return `${name} forked into the background (pid ${pid}) and exited: set pid_file, or run it in the foreground`;
}

/** `pid 12 of this service still runs`, `pids 12, 13 of this service still run`. */
function stillRunning(pids: number[]): string {
  return pids.length === 1
    ? `pid ${pids[0]} of this service still runs`
    : `pids ${pids.join(", ")} of this service still run`;
}

/**
 * The leader among processes of one service: the one whose parent is not among them (the
 * first spawned), preferring a process-group leader; else the oldest.
 */
async function leaderOf(pids: number[]): Promise<number> {
  const stats = await Promise.all(pids.map(async (pid) => ({ pid, stat: await procStat(pid) })));
  const set = new Set(pids);
  const roots = stats.filter((s) => s.stat && !set.has(s.stat.ppid));
  const pick = roots.find((s) => s.stat!.pgid === s.pid) ?? roots[0];
  if (pick) return pick.pid;
  return stats.sort((a, b) => Number(a.stat?.startTime ?? 0) - Number(b.stat?.startTime ?? 0))[0]
    .pid;
}

/** What the record and its PID say, before any look for the service's other processes. */
async function recordedStatus(
  svc: Service,
  ctx: DriverContext,
): Promise<{ live: boolean; status: RuntimeStatus; state?: ServiceState }> {
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
  const result = (live: boolean, status: RuntimeStatus) => ({ live, status, state });
  if (pid && state?.pid === pid && state.pid_start && (await isAlive(pid, state.pid_start))) {
    const status = recorded === "starting" || recorded === "stopping" ? recorded : "running";
    const started = state.started_at ? Date.parse(state.started_at) : NaN;
    const uptime_s = Number.isNaN(started)
      ? undefined
      : Math.max(0, Math.floor((Date.now() - started) / 1000));
    return result(true, { ...detail, status, pid, uptime_s });
  }
  if (!pid) {
    return result(false, { ...detail, status: recorded === "stopping" ? "stopped" : recorded });
  }
  // A PID on record without a live process of ours: a stale record.
  const foreign = await isAlive(pid);
  if (!state?.pid_start || state.pid !== pid || foreign) {
    return result(false, {
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
    });
  }
  if (recorded === "stopping") return result(false, { ...detail, status: "stopped", stale: true });
  const exit = exits.get(pid) ??
    (state.last_exit && state.started_at && state.last_exit.at >= state.started_at
      ? state.last_exit
      : undefined);
  const how = exit ? describeExit(exit) : "exited while no supervisor watched it";
  return result(false, {
    ...detail,
    status: "failed",
    stale: true,
    message: `Process ${pid} ${how}`,
    ...(exit ? { exit_code: exit.code, exit_signal: exit.signal } : {}),
  });
}

/** `TERM`, `sigterm` and `SIGTERM` all name SIGTERM. */
export function normalizeSignal(name: string): NodeJS.Signals {
  const upper = name.toUpperCase();
  return (upper.startsWith("SIG") ? upper : `SIG${upper}`) as NodeJS.Signals;
}
