/**
 * Launching one service: the driver starts it and reports facts, the state store records the
 * `starting` transition. Shared by the lifecycle (unsupervised starts) and the supervisor (its
 * children and their restarts), so a start is recorded the same way whoever makes it.
 *
 * @module
 */
import { serviceHashes } from "../registry/config_hash.ts";
import type { StateStore } from "../state/store.ts";
import type { Driver, DriverContext, Handle, Service } from "../types.ts";

/**
 * Start `svc` through `driver` and record it as starting, with the configuration it starts with
 * (its `config_hash` and `deployment_hash`); the handle's facts are returned.
 */
export async function launch(
  store: StateStore,
  driver: Driver,
  svc: Service,
  ctx: DriverContext,
  opts: { restart?: boolean } = {},
): Promise<Handle> {
  // Read as the start reads them (an env file), just before it does.
  const config = await serviceHashes(svc, driver, ctx);
  const handle = await driver.start(svc, ctx);
  await store.starting(svc.name, svc.deployment.mode, {
    pid: handle.pid,
    pid_start: handle.pid_start,
    handle: handle.data,
    started_at: handle.started_at,
    restart: opts.restart,
    config,
  });
  return handle;
}

/** How many lines of a failed service's own output its state keeps (`last_log_lines`). */
export const FAILURE_LOG_LINES = 5;

/**
 * The last lines of the service's own output (our `--- ` banner lines left out), for the reason
 * of a failure, as `systemctl status` shows the journal's tail. Bounded: at most 2 s; empty when
 * the driver has no logs.
 */
export async function lastOutput(
  driver: Driver,
  svc: Service,
  ctx: DriverContext,
): Promise<string[]> {
  const lines: string[] = [];
  try {
    const signal = AbortSignal.timeout(2_000);
    for await (const line of driver.logs(svc, { ...ctx, signal }, { lines: 40, signal })) {
      if (!line.startsWith("--- ")) lines.push(line);
    }
  } catch { /* no logs to show */ }
  return lines.slice(-FAILURE_LOG_LINES);
}
