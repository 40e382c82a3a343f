/** A timer that `signal` cancels, rejecting with the signal's reason. Keeps no handle once done. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Resolves after `ms`, or at once when `signal` aborts; never rejects, never leaks the timer. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return sleep(Math.max(0, ms), signal).catch(() => {});
}

/** Waiters of one period's beat and the one timer that wakes them all. */
interface Beat {
  waiters: Set<() => void>;
  timer?: ReturnType<typeof setTimeout>;
}

const beats = new Map<number, Beat>();
/** Per period, the last beat that fired (a timer may fire a hair early: never beat twice). */
const lastBeat = new Map<number, number>();

/**
 * Resolves at the next beat of a shared clock that ticks every `periodMs` (at the multiples of
 * `periodMs` on the monotonic clock), or at once when `signal` aborts; never rejects.
 *
 * Every caller with the same period wakes on the same timer, in the same turn of the event
 * loop: fifty liveness checks every 10 s cost one wake-up per 10 s instead of fifty, which is
 * most of an idle supervisor's CPU (systemd coalesces its timers for the same reason). The
 * timer exists only while somebody waits.
 */
export function beat(periodMs: number, signal?: AbortSignal): Promise<void> {
  const period = Math.max(1, Math.round(periodMs));
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    let b = beats.get(period);
    if (!b) beats.set(period, b = { waiters: new Set() });
    const beat = b;
    const wake = () => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    };
    const onAbort = () => {
      beat.waiters.delete(wake);
      if (beat.waiters.size === 0 && beats.get(period) === beat) {
        clearTimeout(beat.timer);
        beats.delete(period);
      }
      resolve();
    };
    beat.waiters.add(wake);
    signal?.addEventListener("abort", onAbort, { once: true });
    if (!beat.timer) {
      const now = performance.now();
      let due = (Math.floor(now / period) + 1) * period;
      if (due <= (lastBeat.get(period) ?? -1)) due += period;
      beat.timer = setTimeout(() => {
        beats.delete(period);
        lastBeat.set(period, due);
        for (const w of beat.waiters) w();
      }, due - now);
    }
  });
}
