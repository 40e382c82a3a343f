/**
 * The DAG scheduler shared by start and stop, the operation clock, the journal of an operation
 * (`journaled`), and the result of an operation from its outcomes.
 *
 * @module
 */
import { setMaxListeners } from "node:events";
import { ExitCode, RefusedError } from "../errors.ts";
import type { Platform } from "../platform.ts";
import { ensureDirs } from "../state/files.ts";
import {
  appendEvent,
  describeRequester,
  type JournalEvent,
  processRequester,
  type RequestedBy,
} from "../state/journal.ts";
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

/** What {@linkcode journaled} needs of an operation's options. */
interface Journaled {
  onEvent?: (e: LifecycleEvent) => void;
  /** Who asked (default: this process, as a CLI). */
  requestedBy?: RequestedBy;
  force?: boolean;
}

/**
 * Run operation `op` of `names` with its events also appended to the home's journal: first who
 * requested it, then every step `run` emits through the options' `onEvent` (so the stop inside a
 * restart is journaled too), and a refusal. The journal never fails the operation.
 */
export async function journaled<O extends Journaled, T>(
  p: Platform,
  op: NonNullable<JournalEvent["operation"]>,
  names: string[],
  opts: O,
  run: (opts: O) => Promise<T>,
): Promise<T> {
  const requested_by = opts.requestedBy ?? processRequester();
  const by = requested_by.kind;
  const append = (e: Omit<JournalEvent, "by">) => void appendEvent(p.paths, { ...e, by });
  const what = !opts.force ? op : op === "stop" ? "stop --force" : `${op} --recreate`;
  const text = `${what} requested by ${describeRequester(requested_by)}`;
  for (const service of names.length ? names : [undefined]) {
    append({
      type: "requested",
      ...(service ? { service } : {}),
      operation: op,
      requested_by,
      text: service
        ? text
        : `${what} of the platform requested by ${describeRequester(requested_by)}`,
    });
  }
  const killAtOnce = op === "stop" && !!opts.force;
  const onEvent = (e: LifecycleEvent) => {
    const r = journalRecord(e, killAtOnce);
    if (r) append(r);
    opts.onEvent?.(e);
  };
  try {
    return await run({ ...opts, onEvent });
  } catch (error) {
    if (error instanceof RefusedError) {
      append({
        type: "refused",
        ...(names.length === 1 ? { service: names[0] } : {}),
        operation: op,
        text: `${op} refused: ${error.message}`,
      });
    }
    throw error;
  }
}

/** The journal's record of a lifecycle event; undefined for one it does not keep (progress). */
function journalRecord(
  e: LifecycleEvent,
  killAtOnce: boolean,
): Omit<JournalEvent, "by"> | undefined {
  const pid = e.pid ? ` (pid ${e.pid})` : "";
  const base = {
    service: e.service,
    ...(e.pid ? { pid: e.pid } : {}),
    ...(e.dependency ? { dependency: true } : {}),
  };
  switch (e.type) {
    case "preflight": { // its findings, when there are problems (a pass is no event)
      const failed = (e.findings ?? []).filter((f) => !f.ok);
      if (!failed.length) return undefined;
      const text = `pre-flight failed: ${failed.map((f) => f.message).join("; ")}`;
      return { ...base, type: "preflight", text };
    }
    case "starting":
      return {
        ...base,
        type: "starting",
        text: e.dependency ? "starting (a dependency)" : "starting",
      };
    case "started":
      return { ...base, type: "started", text: `started${pid}` };
    case "healthy":
      return { ...base, type: "healthy", text: `healthy${pid}` };
    case "ready":
      return { ...base, type: "ready", text: `ready, no health check${pid}` };
    case "running":
      return { ...base, type: "running", text: `already running${pid}` };
    case "failed":
      return { ...base, type: "failed", text: `failed: ${e.message ?? "unknown error"}` };
    case "blocked":
      return { ...base, type: "blocked", text: `not started: blocked by ${e.blocked_by}` };
    case "stopping":
      return { ...base, type: "stopping", text: "stopping" };
    case "stopped": {
      const sigkill = killAtOnce || /SIGKILL/.test(e.message ?? "");
      const text = e.message ?? (killAtOnce ? "stopped with SIGKILL (--force)" : "stopped");
      return { ...base, type: "stopped", how: sigkill ? "sigkill" : "graceful", text };
    }
    case "not_managed":
      return { ...base, type: "not_managed", text: e.message ?? "not managed here; left running" };
    case "warning":
      return { ...base, type: "warning", text: e.message ?? "warning" };
    default: // waiting, check, progress: steps of a step, not events
      return undefined;
  }
}

/**
 * Run `work` for every node once the nodes it waits for (`waitFor`, within `names`) are done, as
 * many at once as are ready, in the order of `names`. `work` never throws; its result says
 * whether the nodes waiting for it may follow (a failure blocks them, and theirs, with its name
 * as the root cause). Each node's waits are looked at once and each completion touches only the
 * nodes waiting for it, so a start of a thousand services costs no more per service than of ten.
 */
export async function schedule(
  names: string[],
  waitFor: (name: string) => string[],
  work: (name: string, ready: () => void) => Promise<boolean>,
  onBlocked: (name: string, by: string) => void,
): Promise<void> {
  const order = new Map(names.map((n, i) => [n, i]));
  const waiters = new Map<string, string[]>(names.map((n) => [n, []]));
  const unmet = new Map<string, number>();
  for (const name of names) {
    const waits = [...new Set(waitFor(name))].filter((d) => order.has(d) && d !== name);
    unmet.set(name, waits.length);
    for (const d of waits) waiters.get(d)!.push(name);
  }
  const good = new Set<string>();
  const settled = new Set<string>(); // launched or blocked
  await new Promise<void>((resolve) => {
    let active = 0;
    const launch = (name: string) => {
      settled.add(name);
      active++;
      // `ready` lets the nodes waiting for it go as soon as it is healthy, while its own
      // bookkeeping (state file, supervisor) finishes.
      const ready = () => {
        if (good.has(name)) return;
        good.add(name);
        release(name);
      };
      work(name, ready).then((ok) => {
        active--;
        if (ok) ready();
        else if (!good.has(name)) block(name, name);
        if (active === 0) resolve();
      });
    };
    /** `name` is done: launch each waiter whose last wait it was, in the order of `names`. */
    const release = (name: string) => {
      const now: string[] = [];
      for (const w of waiters.get(name)!) {
        const left = unmet.get(w)! - 1;
        unmet.set(w, left);
        if (left === 0 && !settled.has(w)) now.push(w);
      }
      now.sort((a, b) => order.get(a)! - order.get(b)!).forEach(launch);
    };
    /** `name` failed: every node waiting for it, transitively, is blocked, in `names` order. */
    const block = (name: string, root: string) => {
      const hit: string[] = [];
      const walk = (n: string) => {
        for (const w of waiters.get(n)!) {
          if (settled.has(w)) continue;
          settled.add(w);
          hit.push(w);
          walk(w);
        }
      };
      walk(name);
      hit.sort((a, b) => order.get(a)! - order.get(b)!).forEach((w) => onBlocked(w, root));
    };
    for (const name of names) if (unmet.get(name) === 0 && !settled.has(name)) launch(name);
    if (active === 0) resolve();
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
  // One operation's signal is listened to by each of the services it starts at once (their
  // lock waits, readiness waits, sleeps): a thousand listeners are expected, not a leak
  // (Node warned "MaxListenersExceededWarning" from the eleventh).
  if (signal) setMaxListeners(0, signal);
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
