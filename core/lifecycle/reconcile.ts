/**
 * Reconcile: the explicit step that makes a service's record agree with the facts, run by the
 * commands that change state (start, stop) under the service's lock — never by a read. A record
 * whose process is gone (the driver says `stale`, or says failed/stopped while the record still
 * says running, starting or stopping) becomes `failed` (it died) or `stopped` (we were stopping
 * it), with the reason the driver found.
 *
 * @module
 */
import type { Platform } from "../platform.ts";
import type { Driver, RuntimeStatus, Service } from "../types.ts";

/** Record what a stale `rt` says, and return the status as it now stands. */
export async function reconcile(
  p: Platform,
  svc: Service,
  driver: Driver,
  rt: RuntimeStatus,
): Promise<RuntimeStatus> {
  const rec = await p.store.read(svc.name);
  const live = rec?.status === "running" || rec?.status === "starting" ||
    rec?.status === "stopping";
  const gone = rt.status === "failed" || rt.status === "stopped";
  if (!rt.stale && !(live && gone)) return rt;
  const exit = rt.exit_code !== undefined || rt.exit_signal
    ? { code: rt.exit_code ?? null, signal: rt.exit_signal ?? null }
    : undefined;
  if (rt.status === "failed") {
    await p.store.failed(svc.name, rt.message ?? "Its process is gone", {
      exit,
      mode: svc.deployment.mode,
    });
  } else {
    await p.store.stopped(svc.name, svc.deployment.mode, { exit });
  }
  return await driver.status(svc, p.context());
}
