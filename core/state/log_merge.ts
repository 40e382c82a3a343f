/**
 * The logs of several services as one, with `docker compose logs` habits: the tails merged in
 * time order ({@linkcode mergeLogs}) or followed line by line as they come
 * ({@linkcode mergeLive}), each service's own order always kept.
 *
 * @example Every service's last 20 lines of the last ten minutes, in time order
 * ```ts
 * import { mergeLogs, parseSince, Platform } from "../../mod.ts";
 *
 * const p = await Platform.open();
 * const since = parseSince("10m");
 * const groups = await Promise.all(p.services.map(async (s) => {
 *   const lines = [];
 *   for await (const l of p.logLines(s.name, { lines: 20, since })) lines.push(l);
 *   return { service: s.name, lines };
 * }));
 * for (const l of mergeLogs(groups)) console.log(l.service, l.line);
 * ```
 *
 * @module
 */
import type { LogLine } from "../types.ts";

/** A line of one service's log, named. */
export interface ServiceLogLine extends LogLine {
  service: string;
}

/** The lines of one service. */
export interface ServiceLog {
  service: string;
  lines: LogLine[];
}

/**
 * One list of the lines of `logs` (given in registry order): the services whose lines have
 * times merged in time order — a line without a time goes right after the line before it, ties
 * in registry order — then the services without any time, one after the other.
 */
export function mergeLogs(logs: ServiceLog[]): ServiceLogLine[] {
  const timed = logs.filter((g) => g.lines.some((l) => l.time !== undefined));
  const keys = timed.map((g) => {
    let t = g.lines.find((l) => l.time !== undefined)!.time!;
    return g.lines.map((l) => (t = l.time ?? t));
  });
  const next = timed.map(() => 0);
  const out: ServiceLogLine[] = [];
  for (;;) {
    let best = -1;
    for (let i = 0; i < timed.length; i++) {
      if (next[i] === timed[i].lines.length) continue;
      if (best === -1 || keys[i][next[i]] < keys[best][next[best]]) best = i;
    }
    if (best === -1) break;
    out.push({ service: timed[best].service, ...timed[best].lines[next[best]++] });
  }
  for (const g of logs) {
    if (!timed.includes(g)) out.push(...g.lines.map((l) => ({ service: g.service, ...l })));
  }
  return out;
}

/** Options of {@linkcode mergeLive}. */
export interface MergeLiveOptions {
  /** Ends the merge at once (each source should take the same signal and end too). */
  signal?: AbortSignal;
  /**
   * A source that fails: told here and the others go on. Without it the merge throws the first
   * failure (the other sources go on until their signal aborts).
   */
  onError?: (service: string, error: unknown) => void;
}

/** The lines of every source as they come, until all have ended or the signal aborts. */
export async function* mergeLive(
  sources: { service: string; lines: AsyncIterable<LogLine> }[],
  opts: MergeLiveOptions = {},
): AsyncGenerator<ServiceLogLine> {
  const queue: ServiceLogLine[] = [];
  let wake: (() => void) | undefined;
  let running = sources.length;
  let failure: { error: unknown } | undefined;
  const poke = () => wake?.();
  opts.signal?.addEventListener("abort", poke);
  const pumps = sources.map(async ({ service, lines }) => {
    try {
      for await (const l of lines) {
        queue.push({ service, ...l });
        poke();
      }
    } catch (error) {
      if (opts.onError) opts.onError(service, error);
      else failure ??= { error };
    } finally {
      running--;
      poke();
    }
  });
  try {
    for (;;) {
      if (failure) throw failure.error;
      if (queue.length) {
        yield queue.shift()!;
        continue;
      }
      if (running === 0 || opts.signal?.aborted) return;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    opts.signal?.removeEventListener("abort", poke);
    // Sources end with the signal; one that fails (or a consumer that stops early) leaves the
    // others to it.
    if (running === 0 || opts.signal?.aborted) await Promise.all(pumps);
  }
}
