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

/** Starts of one home that hold its platform lock together, in this process. */
interface Group {
  count: number;
  /** Later starts may still join (false once a stop or restart waits behind it). */
  open: boolean;
  ready: Promise<void>;
  finish: () => void;
}

/** Per home: the tail of this process's queue for its platform lock, and the group of starts. */
const homes = new Map<string, { tail: Promise<unknown>; group?: Group }>();

/**
 * Run `fn` as the only start, stop or restart of the platform's home at a time: a stop asked
 * for while a start is in flight waits for it, then stops in reverse order, so no service ever
 * runs while a dependency it needs is stopped by us. (Each service also has its own lock.)
 *
 * `shared` (a start that stops nothing): starts in this process share one hold of the lock and
 * run together — the agent serving two forwarded starts at once, a library user starting two
 * services — as two CLIs' starts could not. They are safe together: each service has its own
 * lock, and a service another start is starting is waited for, not started twice. A stop or
 * restart asked for meanwhile waits for them, and starts after it wait for it (no starvation).
 * Across processes the lock stays exclusive.
 */
export async function onPlatform<T>(
  p: Platform,
  fn: () => Promise<T>,
  signal?: AbortSignal,
  mode: "exclusive" | "shared" = "exclusive",
): Promise<T> {
  let home = homes.get(p.paths.home);
  if (!home) homes.set(p.paths.home, home = { tail: Promise.resolve() });
  const h = home;
  // Queued at once (the order of the calls is the order of the operations), then:
  const lock = async <R>(body: () => Promise<R>, sig?: AbortSignal) => {
    await ensureDirs(p.paths); // a home that is not ours is refused before anything is written
    return await withHomeLock(p.paths, "platform", body, { waitMs: PLATFORM_WAIT_MS, signal: sig });
  };
  const queued = <R>(run: () => Promise<R>): Promise<R> => {
    const mine = h.tail.then(run);
    h.tail = mine.catch(() => {});
    const tail = h.tail;
    tail.then(() => h.tail === tail && !h.group && homes.delete(p.paths.home));
    return mine;
  };
  if (mode === "exclusive") {
    if (h.group) h.group.open = false;
    const mine = queued(() => lock(fn, signal));
    return await (signal ? raceAbort(mine, signal) : mine);
  }
  let group = h.group?.open ? h.group : undefined;
  if (!group) {
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    let held!: () => void;
    const ready = new Promise<void>((r) => (held = r));
    const g: Group = { count: 0, open: true, ready, finish };
    group = h.group = g;
    // The hold is the group's, not one start's: a cancelled start leaves the others waiting.
    const hold = queued(() => lock(() => (held(), done)));
    g.ready = new Promise<void>((resolve, reject) => {
      ready.then(resolve);
      hold.catch(reject);
    });
  }
  const g = group;
  g.count++;
  try {
    await (signal ? raceAbort(g.ready, signal) : g.ready);
    return await fn();
  } finally {
    if (--g.count === 0) {
      g.open = false;
      if (h.group === g) h.group = undefined;
      g.finish();
    }
  }
}

/** `promise`, or the abort of `signal`, whichever comes first. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
