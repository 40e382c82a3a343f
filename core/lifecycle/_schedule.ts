/**
 * The DAG scheduler shared by start and stop, the operation clock, and the result of an
 * operation from its outcomes.
 *
 * @module
 */
import { ExitCode } from "../errors.ts";
import type { Platform } from "../platform.ts";
import { ensureDirs } from "../state/files.ts";
import { withHomeLock } from "../state/lock.ts";
import type { LifecycleEvent, LifecycleResult, Outcome } from "./events.ts";

/** Milliseconds since the operation began, and an emitter that stamps events with them. */
export function clock(onEvent?: (e: LifecycleEvent) => void) {
  const t0 = performance.now();
  const elapsed = () => Math.round(performance.now() - t0);
  const emit = (e: Omit<LifecycleEvent, "elapsed_ms">) =>
    onEvent?.({ ...e, elapsed_ms: elapsed() });
  return { elapsed, emit };
}

/** An emitter of events without their time stamp. */
export type Emit = ReturnType<typeof clock>["emit"];

/**
 * Run `work` for every node once its `ready(name, done)` predicate holds, as many at once as
 * are ready, in the order of `names`. `work` never throws; its result says whether dependents
 * may follow.
 */
export async function schedule(
  names: string[],
  waitFor: (name: string) => string[],
  work: (name: string, ready: () => void) => Promise<boolean>,
  onBlocked: (name: string, by: string) => void,
): Promise<void> {
  const pending = new Set(names);
  const good = new Set<string>();
  const bad = new Map<string, string>(); // name -> root cause
  await new Promise<void>((resolve) => {
    let active = 0;
    const pump = () => {
      for (const name of [...pending]) {
        const waits = waitFor(name).filter((d) => names.includes(d));
        const failed = waits.find((d) => bad.has(d));
        if (failed) {
          pending.delete(name);
          const root = bad.get(failed)!;
          bad.set(name, root);
          onBlocked(name, root);
          continue;
        }
        if (!waits.every((d) => good.has(d))) continue;
        pending.delete(name);
        active++;
        // `ready` lets dependents go as soon as the service is healthy, while its own
        // bookkeeping (state file, supervisor) finishes.
        const ready = () => {
          if (good.has(name)) return;
          good.add(name);
          pump();
        };
        work(name, ready).then((ok) => {
          active--;
          if (ok) good.add(name);
          else if (!good.has(name)) bad.set(name, name);
          pump();
        });
      }
      if (active === 0) resolve();
    };
    pump();
  });
}

export function result<P>(
  plan: P,
  outcomes: Map<string, Outcome>,
  elapsed: number,
): LifecycleResult<P> {
  const list = [...outcomes.values()];
  const failed = list.filter((o) => o.status === "failed" || o.status === "blocked");
  const onlyPreflight = failed.length > 0 &&
    failed.every((o) => o.preflight || o.status === "blocked") && failed.some((o) => o.preflight);
  // Refused where it runs (a remote agent's refusal): refused here too.
  const onlyRefused = failed.length > 0 &&
    failed.every((o) => o.refused || o.status === "blocked") && failed.some((o) => o.refused);
  return {
    ok: failed.length === 0,
    exit_code: failed.length === 0
      ? ExitCode.ok
      : onlyPreflight
      ? ExitCode.preflight
      : onlyRefused
      ? ExitCode.refused
      : ExitCode.failed,
    plan,
    outcomes: list,
    elapsed_ms: elapsed,
  };
}

/** How long a start, stop or restart waits for the one in flight on the same home. */
const PLATFORM_WAIT_MS = 15 * 60_000;

/**
 * Run `fn` as the only start, stop or restart of the platform's home at a time: a stop asked
 * for while a start is in flight waits for it, then stops in reverse order, so no service ever
 * runs while a dependency it needs is stopped by us. (Each service also has its own lock.)
 */
export async function onPlatform<T>(
  p: Platform,
  fn: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  await ensureDirs(p.paths); // a home that is not ours is refused before anything is written
  return await withHomeLock(p.paths, "platform", fn, { waitMs: PLATFORM_WAIT_MS, signal });
}
