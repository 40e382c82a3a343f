/**
 * Stopping: the mirror image of a start. A service stops once none of its dependents are still
 * running; a stop is refused while dependents outside the request run, unless forced. A service
 * this program does not own (its driver owns nothing: a remote endpoint) is left running, with
 * the outcome `not_managed`.
 *
 * @module
 */
import { RefusedError } from "../errors.ts";
import type { Platform } from "../platform.ts";
import { withLock } from "../state/lock.ts";
import { settleSupervisor, unwatch } from "../supervisor/client.ts";
import type { RequestedBy } from "../state/journal.ts";
import type { LifecycleEvent, LifecycleResult, Outcome } from "./events.ts";
import { planStop, type StopPlan } from "./plan.ts";
import { reconcile } from "./reconcile.ts";
import { clock, journaled, onPlatform, result, schedule } from "./_schedule.ts";

export interface StopOptions {
  /** Ignore running dependents and kill at once (SIGKILL). */
  force?: boolean;
  /** Stop gracefully even though dependents run (used by restart). */
  ignoreDependents?: boolean;
  onEvent?: (event: LifecycleEvent) => void;
  signal?: AbortSignal;
  /** Who asked, for the event journal (default: this process, as a CLI with its PID and user). */
  requestedBy?: RequestedBy;
}

/** Stop `names` (default: everything running), dependents first; refused while dependents run. */
export function stopServices(
  p: Platform,
  names: string[] = [],
  opts: StopOptions = {},
): Promise<LifecycleResult<StopPlan>> {
  const run = () => journaled(p, "stop", names, opts, (o) => stopWithin(p, names, o));
  return onPlatform(p, run, opts.signal);
}

/** {@linkcode stopServices} for a caller that already holds the platform (a restart). */
export async function stopWithin(
  p: Platform,
  names: string[] = [],
  opts: StopOptions = {},
): Promise<LifecycleResult<StopPlan>> {
  const { elapsed, emit } = clock(opts.onEvent);
  await settleSupervisor(p);
  const plan = await planStop(p, names, { force: opts.force || opts.ignoreDependents });
  // A restart brings them back; a user's forced stop leaves their dependents without them.
  const orphaned = new Map(
    opts.force && !opts.ignoreDependents ? plan.orphaned.map((o) => [o.service, o.dependents]) : [],
  );
  if (plan.blocked.length) {
    const b = plan.blocked[0];
    throw new RefusedError(
      `Cannot stop ${b.service}: Dependent services running: ${b.dependents.join(", ")}`,
    );
  }
  const outcomes = new Map<string, Outcome>();
  await schedule(
    plan.services,
    (n) => p.graph.dependents(n),
    async (name) => {
      const svc = p.service(name);
      try {
        const done = await withLock(p.paths, name, async () => {
          const driver = await p.plugins.driver(svc.deployment.mode);
          if (driver.capabilities?.owns === "external" && !driver.forwards?.(svc)) {
            const where = driver.location?.(svc);
            const message = where
              ? `${name} runs at ${where}; left running`
              : `${name} is not run by this host; left running`;
            // No longer in use here: the supervisor stops watching it (it runs on there).
            await unwatch(p, name);
            emit({ type: "not_managed", service: name, message });
            return { name, status: "not_managed" as const, message };
          }
          emit({ type: "stopping", service: name });
          await unwatch(p, name);
          const ctx = {
            ...p.context(opts.signal),
            progress: (message: string) => emit({ type: "progress", service: name, message }),
          };
          const rt = await reconcile(p, svc, driver, await driver.status(svc, ctx));
          if (rt.status !== "stopped" && (await p.store.read(name))) await p.store.stopping(name);
          const r = await driver.stop(svc, ctx, { force: opts.force, signal: opts.signal }) ?? {};
          const message = r.killed
            ? `stopped with SIGKILL after ${svc.shutdown.timeout}s (${svc.shutdown.signal} was not enough)`
            : undefined;
          await p.store.stopped(name, svc.deployment.mode, { exit: r.exit });
          emit({ type: "stopped", service: name, ...(message ? { message } : {}) });
          const left = orphaned.get(name);
          if (left) {
            emit({
              type: "warning",
              service: name,
              message: `${left.join(", ")} ${left.length > 1 ? "run" : "runs"} on without ${name}`,
            });
          }
          return { name, status: "stopped" as const, ...(message ? { message } : {}) };
        }, { waitMs: (svc.shutdown.timeout + 30) * 1000 });
        outcomes.set(name, { ...done, elapsed_ms: elapsed() });
        return true;
      } catch (e) {
        const message = (e as Error).message;
        const refused = e instanceof RefusedError ? { refused: true } : {};
        emit({ type: "failed", service: name, message });
        outcomes.set(name, { name, status: "failed", message, ...refused, elapsed_ms: elapsed() });
        return false;
      }
    },
    (name, by) => {
      const message = `not stopped: dependency order blocked by ${by}`;
      outcomes.set(name, {
        name,
        status: "blocked",
        blocked_by: by,
        message,
        elapsed_ms: elapsed(),
      });
      emit({ type: "blocked", service: name, blocked_by: by, message });
    },
  );
  // Requested services that do not run may still have a stale record (a PID file naming a
  // process that is gone or not ours): a stop cleans it up, as the spec's stop "cleans up PID
  // files".
  await Promise.all(plan.not_running.map(async (name) => {
    const svc = p.service(name);
    await withLock(p.paths, name, async () => {
      const driver = await p.plugins.driver(svc.deployment.mode);
      await reconcile(p, svc, driver, await driver.status(svc, p.context()));
    }, { waitMs: 10_000 }).catch(() => {});
  }));
  return result(plan, outcomes, elapsed());
}
