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
