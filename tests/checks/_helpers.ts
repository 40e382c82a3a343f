/**
 * Test helpers for the checks: a check context, servers on 127.0.0.1, polling with a deadline,
 * and "is this process gone" (a zombie counts as gone: PID 1 may reap it late).
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import type { Server } from "node:net";
import type { CheckContext } from "../../core/types.ts";
import { until } from "../_until.ts";

/** Polls `condition` until it holds; throws naming `message` after `deadlineMs`. */
export const waitFor = until;

/** A context for calling a check directly. */
export function checkContext(
  timeoutMs = 5_000,
  opts: { signal?: AbortSignal; env?: Record<string, string | undefined> } = {},
): CheckContext {
  return {
    signal: opts.signal ?? new AbortController().signal,
    timeoutMs,
    service: "test-service",
    env: opts.env ?? {},
  };
}

/** Starts `server` on 127.0.0.1, a free port; returns the port. */
export function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address && typeof address === "object") resolve(address.port);
      else reject(new Error("Cannot listen: no address"));
    });
  });
}

/** Closes `server`, dropping open connections first when it has them (node:http). */
export function close(server: Server): Promise<void> {
  (server as { closeAllConnections?: () => void }).closeAllConnections?.();
  return new Promise((resolve) => server.close(() => resolve()));
}

import { freePort } from "../_ports.ts";
export { freePort };

/** Whether `pid` no longer runs: no /proc entry, or a zombie awaiting its reaper. */
export async function pidGone(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}
