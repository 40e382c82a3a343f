/**
 * Waiting on a cluster: re-read what matters each time a watch reports a change (and at least
 * once a second), until a check says done, a deadline passes, or the caller aborts. Watches are
 * only wake-ups — the check reads the objects afresh, so a missed or replayed event changes
 * nothing — and a watch that ends (servers close them every few minutes) is opened again.
 *
 * When the API stops answering, the wait goes on re-trying for `graceMs` (an API server restart
 * or a load balancer blip is survived), then throws a {@linkcode KubeError} saying the API went
 * away — instead of hanging to the deadline as `helm --wait` does.
 *
 * @module
 */
import { type Kube, KubeError } from "./_client.ts";

/** Options of {@linkcode waitFor}. */
export interface WaitOptions<T> {
  /** Collection paths with their query (labelSelector, fieldSelector) to watch for changes. */
  watch: { path: string; query: Record<string, string> }[];
  /** Reads the objects; returns the result when done, undefined while not. May throw to stop. */
  check: () => Promise<T | undefined>;
  /** Absolute time (ms since the epoch) to give up at. */
  deadline: number;
  signal?: AbortSignal;
  /** How long the API may be unreachable before the wait fails (default 5 s). */
  graceMs?: number;
}

/** How a wait ended: done (with the check's result), or out of time. */
export type WaitResult<T> = { done: true; value: T } | { done: false };

/** Longest pause between two checks when no watch event comes. */
const POLL_MS = 1_000;
/** Shortest time between two openings of one watch. */
const REOPEN_MS = 500;

/** Wait until `o.check` returns a result; see the module doc. Throws when `o.signal` aborts. */
export async function waitFor<T>(kube: Kube, o: WaitOptions<T>): Promise<WaitResult<T>> {
  const graceMs = o.graceMs ?? 5_000;
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  o.signal?.addEventListener("abort", onAbort, { once: true });
  let dirty = true;
  let wake: (() => void) | undefined;
  const poke = () => {
    dirty = true;
    wake?.();
  };
  const open = new Set<number>();
  const openedAt = new Map<number, number>();
  const watchOne = async (i: number) => {
    open.add(i);
    openedAt.set(i, Date.now());
    const w = o.watch[i];
    try {
      const q = { ...w.query, watch: "true", allowWatchBookmarks: "false" };
      for await (const _ of kube.lines(w.path, { query: q, signal: stop.signal })) poke();
    } catch {
      /* a lost watch is opened again by the loop */
    } finally {
      open.delete(i);
      poke();
    }
  };
  let lostSince: number | undefined;
  let retryMs = 50;
  try {
    while (true) {
      if (o.signal?.aborted) throw new KubeError("Cancelled", "network");
      let value: T | undefined;
      dirty = false;
      try {
        value = await o.check();
        lostSince = undefined;
        retryMs = 50;
      } catch (e) {
        if (!(e instanceof KubeError && e.unreachable) || o.signal?.aborted) throw e;
        lostSince ??= Date.now();
        if (Date.now() - lostSince >= graceMs) {
          throw new KubeError(
            `${e.message.replace(/^Cannot reach /, "Lost ")} (for ${Math.round(graceMs / 1000)}s)`,
            e.kind,
          );
        }
      }
      if (value !== undefined) return { done: true, value };
      if (Date.now() >= o.deadline) return { done: false };
      let pause = POLL_MS;
      if (lostSince === undefined) {
        for (let i = 0; i < o.watch.length; i++) {
          if (open.has(i)) continue;
          // A watch that keeps ending at once (refused, forbidden) is opened at most twice a second.
          const wait = (openedAt.get(i) ?? 0) + REOPEN_MS - Date.now();
          if (wait <= 0) void watchOne(i);
          else pause = Math.min(pause, wait);
        }
      } else pause = retryMs = Math.min(retryMs * 2, 500);
      if (!dirty || lostSince !== undefined) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, Math.max(0, Math.min(pause, o.deadline - Date.now())));
          function done() {
            clearTimeout(timer);
            wake = undefined;
            stop.signal.removeEventListener("abort", done);
            resolve();
          }
          wake = lostSince === undefined ? done : undefined;
          stop.signal.addEventListener("abort", done, { once: true });
        });
      }
    }
  } finally {
    o.signal?.removeEventListener("abort", onAbort);
    stop.abort();
  }
}
