/**
 * Starting: a DAG scheduler, not a loop over waves. A service starts the moment all its
 * dependencies are ready (healthy, or alive when it has no check), so independent branches run
 * in parallel; a failure marks the service failed and its dependents "blocked by <name>", and the
 * other branches carry on. Every step emits a `LifecycleEvent`; every change of a service's
 * status goes through the state store.
 *
 * @module
 */
import { ExitCode, PreflightError, StartTimeoutError } from "../errors.ts";
import { probeTargetOf, waitHealthy } from "../health/prober.ts";
import type { Platform } from "../platform.ts";
import { withLock } from "../state/lock.ts";
import { readState } from "../state/store.ts";
import { sleep } from "../sleep.ts";
import {
  askSupervisor,
  needsSupervisor,
  reviveSupervisor,
  spawnedBySupervisor,
  superviseAdopt,
  superviseReady,
  superviseStart,
  unwatch,
} from "../supervisor/client.ts";
import type { RequestedBy } from "../state/journal.ts";
import type { ExitInfo, Handle, Service } from "../types.ts";
import type { LifecycleEvent, LifecycleResult, Outcome } from "./events.ts";
import { lastOutput, launch } from "./launch.ts";
import { planStart, type StartPlan } from "./plan.ts";
import { preflight } from "./preflight.ts";
import { reconcile } from "./reconcile.ts";
import { clock, type Emit, journaled, onPlatform, result, schedule } from "./_schedule.ts";
import { stopWithin } from "./stop.ts";

export interface StartOptions {
  /** Restart requested services that already run. */
  force?: boolean;
  /** Skip pre-flight checks (`services start --force`). */
  skipPreflight?: boolean;
  onEvent?: (event: LifecycleEvent) => void;
  signal?: AbortSignal;
  /** Who asked, for the event journal (default: this process, as a CLI with its PID and user). */
  requestedBy?: RequestedBy;
}

/**
 * Pause between readiness checks while a service starts, so readiness is seen within about
 * 10 ms of happening. Measured (`deno task bench bring-up`): 50 ms cost ~40 ms of detection per
 * service on the critical path, 10 ms ~9 ms; a check costs ~0.3 ms of CPU under Deno.
 */
export const STARTUP_POLL_MAX_MS = 10;

/** Start `names` (default: every auto-start service) with their dependencies. */
export function startServices(
  p: Platform,
  names: string[] = [],
  opts: StartOptions = {},
): Promise<LifecycleResult<StartPlan>> {
  // A start that restarts what runs (`force`) stops things: it holds the lock alone.
  const mode = opts.force ? "exclusive" : "shared";
  const run = () => journaled(p, "start", names, opts, (o) => startWithin(p, names, o));
  return onPlatform(p, run, opts.signal, mode);
}

/** {@linkcode startServices} for a caller that already holds the platform (a reload). */
export async function startWithin(
  p: Platform,
  names: string[],
  opts: StartOptions,
): Promise<LifecycleResult<StartPlan>> {
  const { elapsed, emit } = clock(opts.onEvent);
  await reviveSupervisor(p);
  const plan = await planStart(p, names, { force: opts.force });
  if (plan.restart.length) {
    await stopWithin(p, plan.restart, { ignoreDependents: true, onEvent: opts.onEvent });
  }
  const requested = new Set(plan.requested);
  const outcomes = new Map<string, Outcome>();
  const healthy = new Set<string>(plan.already_running);
  for (const name of plan.already_running) {
    outcomes.set(name, { name, status: "already_running", elapsed_ms: 0 });
    emit({ type: "running", service: name, dependency: !requested.has(name) });
  }
  // A running service that needs watching is watched, whoever started it (a home made anew
  // under a running service, a start before the supervisor existed). One ping says what the
  // supervisor already watches: only the others are adopted (one request each).
  if (plan.already_running.length) {
    const ping = await askSupervisor(p.paths, { op: "ping" }).catch(() => undefined);
    const watching = new Set(ping?.ok ? (ping as { watching: string[] }).watching : []);
    await Promise.all(
      plan.already_running.filter((n) => !watching.has(n)).map(async (name) => {
        const svc = p.service(name);
        const driver = await p.plugins.driver(svc.deployment.mode);
        if (needsSupervisor(svc, driver, p.env)) await superviseAdopt(p, svc);
      }),
    );
  }
  await schedule(
    plan.services,
    (n) => p.service(n).dependencies,
    async (name, ready) => {
      const o = await startOne(p, p.service(name), {
        emit,
        healthy,
        onReady: () => {
          healthy.add(name);
          ready();
        },
        dependency: !requested.has(name),
        restarting: plan.restart.includes(name),
        skipPreflight: opts.skipPreflight,
        signal: opts.signal,
      });
      outcomes.set(name, { ...o, elapsed_ms: elapsed() });
      return o.status === "started" || o.status === "already_running";
    },
    (name, by) => {
      const message = `blocked by ${by}`;
      outcomes.set(name, {
        name,
        status: "blocked",
        blocked_by: by,
        message,
        elapsed_ms: elapsed(),
      });
      emit({
        type: "blocked",
        service: name,
        blocked_by: by,
        message,
        dependency: !requested.has(name),
      });
    },
  );
  const ordered = [...plan.already_running, ...plan.services].map((n) =>
    [n, outcomes.get(n)!] as const
  );
  return result(plan, new Map(ordered), elapsed());
}

/** What one start attempt needs besides the service. */
interface StartOne {
  emit: Emit;
  /** Called the moment the service is ready, before its state is written. */
  onReady?: () => void;
  /** Services this operation has seen ready. */
  healthy?: ReadonlySet<string>;
  dependency: boolean;
  restarting: boolean;
  skipPreflight?: boolean;
  signal?: AbortSignal;
}

type Result = Omit<Outcome, "elapsed_ms">;

/** Start one service under its lock: pre-flight, spawn, wait until ready (or fail). */
async function startOne(p: Platform, svc: Service, o: StartOne): Promise<Result> {
  const name = svc.name;
  const fail = (message: string, extra: Partial<Outcome> = {}): Result => {
    o.emit({
      type: "failed",
      service: name,
      message,
      dependency: o.dependency,
      ...(extra.last_log_lines?.length ? { last_log_lines: extra.last_log_lines } : {}),
    });
    return { name, status: "failed", message, ...extra };
  };
  const waitMs = (svc.startup.start_timeout + svc.shutdown.timeout) * 1000 + 30_000;
  let touched = false;
  try {
    return await withLock(p.paths, name, async () => {
      const driver = await p.plugins.driver(svc.deployment.mode);
      const ctx = {
        ...p.context(o.signal),
        progress: (message: string) =>
          o.emit({ type: "progress", service: name, message, dependency: o.dependency }),
      };
      const supervised = needsSupervisor(svc, driver, p.env);
      const timeout_ms = svc.startup.start_timeout * 1000;
      const onCheck = (message: string) =>
        o.emit({ type: "check", service: name, message, dependency: o.dependency, timeout_ms });
      // Observed services (remote) are started here and only watched there once ready.
      const spawnsThere = supervised && spawnedBySupervisor(driver);
      if (!o.restarting) {
        const rt = await reconcile(p, svc, driver, await driver.status(svc, ctx));
        if (rt.status === "running") {
          if (supervised) await superviseAdopt(p, svc);
          o.emit({ type: "running", service: name, pid: rt.pid, dependency: o.dependency });
          return { name, status: "already_running" as const, pid: rt.pid };
        }
        if (rt.status === "starting" && rt.pid) {
          // A start whose CLI died before the service was ready left a live process: finish
          // that start instead of spawning a second one.
          o.emit({
            type: "waiting",
            service: name,
            pid: rt.pid,
            dependency: o.dependency,
            timeout_ms,
          });
          const ready = await waitReady(p, svc, { pid: rt.pid }, o.signal, onCheck);
          if (ready.ok) {
            await p.store.running(name);
            if (supervised) await superviseAdopt(p, svc);
            o.emit({ type: "healthy", service: name, pid: rt.pid, dependency: o.dependency });
            return { name, status: "already_running" as const, pid: rt.pid };
          }
          if (supervised) await unwatch(p, name);
          await driver.stop(svc, p.context()).catch(() => {});
        }
        // Its main process is gone but some of its processes still run (the worker of a
        // killed master holding the port): end them before pre-flight looks at the port.
        if (rt.leftovers?.length) await driver.stop(svc, ctx);
      }
      if (!o.skipPreflight) {
        const findings = await preflight(p, svc, { healthy: o.healthy });
        const failed = findings.filter((f) => !f.ok);
        o.emit({
          type: "preflight",
          service: name,
          findings,
          dependency: o.dependency,
          message: failed.length ? failed.map((f) => f.message).join("; ") : undefined,
        });
        if (failed.length) {
          const message = new PreflightError(name, findings).message;
          await p.store.failed(name, message, { mode: svc.deployment.mode });
          return fail(message, { preflight: true });
        }
      }
      o.emit({ type: "starting", service: name, dependency: o.dependency });
      if (driver.capabilities?.owns === "external" && !driver.forwards?.(svc)) {
        // Nothing is spawned: the start waits for it where it runs.
        const where = driver.location?.(svc);
        o.emit({
          type: "waiting",
          service: name,
          dependency: o.dependency,
          message: `Waiting for ${name}${where ? ` at ${where}` : ""}`,
          timeout_ms,
        });
      }
      touched = true;
      const handle = spawnsThere
        ? await superviseStart(p, svc)
        : await launch(p.store, driver, svc, ctx);
      o.emit({ type: "started", service: name, pid: handle.pid, dependency: o.dependency });
      o.emit({
        type: "waiting",
        service: name,
        pid: handle.pid,
        dependency: o.dependency,
        timeout_ms,
      });
      const ready = await waitReady(p, svc, handle, o.signal, onCheck);
      if (!ready.ok) {
        // Clean up what we started, whether or not the operation was cancelled.
        if (supervised) await unwatch(p, name);
        await driver.stop(svc, p.context()).catch(() => {});
        if (ready.cancelled) {
          await p.store.stopped(name, svc.deployment.mode, { message: ready.message });
          return fail(ready.message, { pid: handle.pid });
        }
        const last_log_lines = await lastOutput(driver, svc, p.context());
        await p.store.failed(name, ready.message, { exit: ready.exit, last_log_lines });
        return fail(ready.message, { pid: handle.pid, last_log_lines });
      }
      o.emit({
        type: ready.checked ? "healthy" : "ready",
        service: name,
        pid: handle.pid,
        message: ready.message,
        dependency: o.dependency,
      });
      o.onReady?.();
      await p.store.running(name);
      if (spawnsThere) await superviseReady(p, svc);
      else if (supervised) await superviseAdopt(p, svc);
      return {
        name,
        status: "started" as const,
        pid: handle.pid,
        health: ready.checked ? "healthy" as const : "unknown" as const,
      };
    }, { waitMs, signal: o.signal });
  } catch (e) {
    if (process.env.PROVISIONING_DEBUG) console.error(e);
    if (o.signal?.aborted && !touched) return fail(CANCELLED); // nothing of it was started
    const message = e instanceof Error ? e.message : String(e);
    const driver = await p.plugins.driver(svc.deployment.mode).catch(() => undefined);
    const last_log_lines = driver && touched ? await lastOutput(driver, svc, p.context()) : [];
    await p.store.failed(name, message, { mode: svc.deployment.mode, last_log_lines })
      .catch(() => {});
    // A driver's own pre-flight refusal (exit code 3) stays a pre-flight failure.
    const code = (e as { exitCode?: number })?.exitCode;
    const preflight = code === ExitCode.preflight;
    const refused = code === ExitCode.refused; // refused where it runs (a remote agent)
    return fail(message, {
      ...(preflight ? { preflight } : {}),
      ...(refused ? { refused } : {}),
      last_log_lines,
    });
  }
}

const CANCELLED = "Start cancelled";

/** How a wait for readiness ended. */
interface Readiness {
  ok: boolean;
  message: string;
  /** Its health check passed (false: it has none, and is alive). */
  checked?: boolean;
  cancelled?: boolean;
  exit?: ExitInfo;
}

/** Wait until the service's check passes, it exits, or `start_timeout` runs out. */
/** How often at most a failing readiness check is reported while its result stays the same. */
const CHECK_REPORT_MS = 1_000;

async function waitReady(
  p: Platform,
  svc: Service,
  handle: Handle,
  signal?: AbortSignal,
  onCheck?: (message: string) => void,
): Promise<Readiness> {
  const driver = await p.plugins.driver(svc.deployment.mode);
  const ac = new AbortController();
  const onAbort = () => ac.abort();
  signal?.addEventListener("abort", onAbort, { once: true });
  let exit: ExitInfo | undefined;
  let exited = false;
  handle.exited?.then((e) => {
    exit = e;
    exited = true;
    ac.abort();
  });
  // While it starts, the driver reports "starting" (binary) or already "running" (others).
  const isAlive = async () => {
    if (exited) return false;
    const { status } = await driver.status(svc, p.context());
    return status === "starting" || status === "running";
  };
  const died = async (): Promise<Readiness> => {
    const how = exit ?? await recordedExit(p, svc);
    // The driver may know better: "X forked into the background (pid N) and exited ...".
    const rt = await driver.status(svc, p.context()).catch(() => undefined);
    const explained = rt?.leftovers?.length ? rt.message : undefined;
    return {
      ok: false,
      exit: how,
      message: explained
        ? explained
        : !how
        ? "Exited during startup"
        : how.signal
        ? `Exited during startup: killed by ${how.signal}`
        : `Exited during startup with code ${how.code}`,
    };
  };
  try {
    if (svc.health_check.type === "none") {
      if (!(await isAlive())) return await died();
      if (driver.capabilities?.readiness === "driver") {
        return { ok: true, checked: true, message: "Ready (the engine's own readiness)" };
      }
      return { ok: true, message: "Started (no health check)" };
    }
    const check = await p.plugins.check(svc.health_check.type);
    let lastCheck = { message: "", at: 0 };
    const r = await waitHealthy(probeTargetOf(svc, check, p.env, driver, p.context()), {
      deadlineMs: svc.startup.start_timeout * 1000,
      initialDelayMs: STARTUP_POLL_MAX_MS,
      maxDelayMs: Math.min(STARTUP_POLL_MAX_MS, svc.health_check.interval * 1000),
      signal: ac.signal,
      isAlive: handle.exited ? undefined : isAlive,
      onAttempt: (r) => {
        if (r.healthy || !onCheck) return;
        const now = Date.now();
        if (r.message === lastCheck.message && now - lastCheck.at < CHECK_REPORT_MS) return;
        lastCheck = { message: r.message, at: now };
        onCheck(r.message);
      },
    });
    if (r.healthy) return { ok: true, checked: true, message: r.result.message };
    if (exited || !(await isAlive())) return await died();
    if (signal?.aborted) return { ok: false, cancelled: true, message: CANCELLED };
    return {
      ok: false,
      message: new StartTimeoutError(svc.name, svc.startup.start_timeout, r.result.message)
        .message,
    };
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * How a process that died while starting ended, when it was not our child: its parent (the
 * supervisor) records `last_exit` right after reaping it. Waits up to 1 s for a record newer
 * than the start; undefined when none comes.
 */
async function recordedExit(p: Platform, svc: Service): Promise<ExitInfo | undefined> {
  const deadline = Date.now() + 1_000;
  while (true) {
    const st = await readState(p.paths, svc.name);
    const last = st?.last_exit;
    if (last && st.started_at && Date.parse(last.at) >= Date.parse(st.started_at)) return last;
    if (Date.now() >= deadline) return undefined;
    await sleep(10);
  }
}

/** Restart `names` (default: every running service): stop them, then start them again. */
export function restartServices(
  p: Platform,
  names: string[] = [],
  opts: StartOptions = {},
): Promise<LifecycleResult<StartPlan>> {
  const run = () => journaled(p, "restart", names, opts, (o) => restartWithin(p, names, o));
  return onPlatform(p, run, opts.signal);
}

async function restartWithin(
  p: Platform,
  names: string[],
  opts: StartOptions,
): Promise<LifecycleResult<StartPlan>> {
  const stop = await stopWithin(p, names, {
    ignoreDependents: true,
    onEvent: opts.onEvent,
    signal: opts.signal,
  });
  const again = names.length ? names : stop.plan.services;
  if (!stop.ok || again.length === 0) {
    const plan: StartPlan = {
      action: "start",
      requested: again,
      services: [],
      restart: [],
      already_running: [],
      waves: [],
      critical_path: [],
    };
    return { ...result(plan, new Map(stop.outcomes.map((o) => [o.name, o])), stop.elapsed_ms) };
  }
  return startWithin(p, again, { ...opts, force: false });
}

/** Start whatever operation `op` requires (its `required_for` services and their dependencies). */
export async function ensureOperation(
  p: Platform,
  op: string,
  opts: StartOptions = {},
): Promise<LifecycleResult<StartPlan>> {
  await p.operation(op);
  return startServices(p, p.graph.requiredFor(op), opts);
}
