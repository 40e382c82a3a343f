/**
 * The remote driver's working parts: pre-flight, a start that waits for the endpoint, and a
 * status that probes it.
 *
 * What "the endpoint is there" means depends on the service: without a health check, a `GET
 * endpoint` answering below 500 (and not 401/403) — the driver's readiness is its health; with
 * one, the TCP connection and the verified TLS handshake — the lifecycle's prober runs the
 * service's own check right after the start returns.
 *
 * Status is a pure read that probes the endpoint (each probe bounded by `timeout`). Reads of one
 * process share a probe for {@linkcode PROBE_TTL_MS} (a start polls status while it waits for a
 * health check; `services status` asks status and health): "running while the last probe
 * passed". A service never started from this home is not probed: it reads as stopped.
 *
 * @module
 */
import process from "node:process";
import { ProvisioningError } from "../../core/errors.ts";
import { pause } from "../../core/sleep.ts";
import { readState } from "../../core/state/store.ts";
import type {
  DriverContext,
  Finding,
  Handle,
  HttpRequester,
  RuntimeStatus,
  Service,
} from "../../core/types.ts";
import { get, handshake, RemoteError, request } from "./_client.ts";
import { remotePreflight } from "./_preflight.ts";
import { type Target, type TargetConfig, targetOf } from "./_target.ts";

/** How long a status probe's result is reused by the reads of one process. */
export const PROBE_TTL_MS = 1_000;
/** The longest pause between two attempts while a start waits for the endpoint. */
const MAX_POLL_MS = 500;
/** Time left below which a start stops trying (an attempt that short would only time out). */
const MIN_ATTEMPT_MS = 20;

/** How the endpoint is probed: a request, or only the connection (the check does the rest). */
type Depth = "request" | "connection";

const depthOf = (svc: Service): Depth =>
  svc.health_check.type === "none" ? "request" : "connection";

/** What a probe found: what answered, or why nothing did (a {@linkcode RemoteError}). */
type Probe = { ok: true; message: string } | { ok: false; error: RemoteError };

/** One probe of `t`; never throws. */
async function probe(
  t: Target,
  depth: Depth,
  opts: { signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<Probe> {
  try {
    if (depth === "connection") {
      const ms = await handshake(t, opts);
      const what = t.https ? (t.insecure ? "TLS (not verified)" : "TLS verified") : "TCP connected";
      return { ok: true, message: `${t.where}: ${what} in ${ms} ms` };
    }
    const a = await get(t, opts);
    return {
      ok: true,
      message: `${t.where} answered ${a.status}${
        a.statusText ? ` ${a.statusText}` : ""
      } in ${a.ms} ms${t.insecure ? " (TLS not verified: insecure = true)" : ""}`,
    };
  } catch (e) {
    if (e instanceof RemoteError) return { ok: false, error: e };
    throw e;
  }
}

/** Services of this process already warned about `insecure` (one warning per process each). */
const warned = new Set<string>();

/** `insecure = true` is said at every use: once per command (process) and service. */
function warnInsecure(t: Target, ctx: DriverContext): void {
  if (!t.insecure) return;
  const key = `${ctx.paths.home}\0${t.service}`;
  if (warned.has(key)) return;
  warned.add(key);
  process.emitWarning(
    `${t.service}: insecure = true: the TLS certificate of ${t.where} is not verified`,
  );
}

/** Pre-flight findings of `svc`. */
export function preflight(svc: Service, cfg: TargetConfig, ctx: DriverContext): Promise<Finding[]> {
  return remotePreflight(targetOf(svc, cfg, ctx));
}

/**
 * Wait until the endpoint is there (see the module doc), within `startup.start_timeout`.
 * Failures waiting cannot cure (TLS verification, a rejected token, an unusable token file)
 * end it at once; the others are retried (20 ms, doubling to 500 ms) until the deadline.
 */
export async function start(svc: Service, cfg: TargetConfig, ctx: DriverContext): Promise<Handle> {
  const t = targetOf(svc, cfg, ctx);
  warnInsecure(t, ctx);
  const depth = depthOf(svc);
  const deadline = performance.now() + svc.startup.start_timeout * 1000;
  let delay = 20;
  let last: RemoteError | undefined;
  while (true) {
    const budget = Math.max(1, Math.min(t.timeoutMs, deadline - performance.now()));
    const r = await probe(t, depth, { signal: ctx.signal, timeoutMs: budget });
    if (r.ok) {
      return { started_at: new Date().toISOString(), data: { endpoint: t.where } };
    }
    if (ctx.signal?.aborted) throw new ProvisioningError("Start cancelled");
    if (r.error.permanent) {
      throw new ProvisioningError(r.error.message, {
        exitCode: r.error.exitCode,
        hints: r.error.hint ? [r.error.hint] : [],
      });
    }
    // An attempt the deadline cut short says less than the one before it.
    if (!(last && r.error.kind === "timeout" && budget < t.timeoutMs)) last = r.error;
    const wait = Math.min(delay, deadline - performance.now());
    if (wait < MIN_ATTEMPT_MS) {
      throw new ProvisioningError(
        `Not ready after ${svc.startup.start_timeout}s (start_timeout): ${last.message}`,
      );
    }
    await pause(wait, ctx.signal);
    delay = Math.min(delay * 2, MAX_POLL_MS);
  }
}

/** Probes of this process, by home, service and target, while fresh. */
const probes = new Map<string, { at: number; probe: Promise<Probe> }>();

/** A probe of `t` shared with the reads of the last {@linkcode PROBE_TTL_MS}. */
function sharedProbe(t: Target, depth: Depth, ctx: DriverContext): Promise<Probe> {
  const key = JSON.stringify([ctx.paths.home, t, depth]);
  const now = performance.now();
  const hit = probes.get(key);
  if (hit && now - hit.at < PROBE_TTL_MS) return hit.probe;
  for (const [k, v] of probes) if (now - v.at >= PROBE_TTL_MS) probes.delete(k);
  const p = probe(t, depth);
  probes.set(key, { at: now, probe: p });
  // Fresh from when it settles, not from when it began (a slow probe is not reused stale).
  p.then(() =>
    probes.get(key)?.probe === p && probes.set(key, { at: performance.now(), probe: p })
  );
  return p;
}

/**
 * A pure read. Not started from this home (no record, or stopped): stopped, without asking the
 * endpoint. Otherwise the endpoint is probed: running (starting, while a start is under way)
 * when it answers, failed with the reason when it does not. Never a pid.
 */
export async function status(
  svc: Service,
  cfg: TargetConfig,
  ctx: DriverContext,
): Promise<RuntimeStatus> {
  const rec = await readState(ctx.paths, svc.name);
  const t = targetOf(svc, cfg, ctx);
  if (!rec) {
    return {
      status: "stopped",
      message: `Not in use (${t.where} is probed once provisioning starts ${svc.name})`,
    };
  }
  if (rec.status === "stopped") {
    return { status: "stopped", message: `Not in use since ${rec.since ?? "its last stop"}` };
  }
  warnInsecure(t, ctx);
  const r = await sharedProbe(t, depthOf(svc), ctx);
  const started = rec.started_at ? Date.parse(rec.started_at) : NaN;
  const uptime = Number.isNaN(started)
    ? {}
    : { uptime_s: Math.max(0, (Date.now() - started) / 1000) };
  if (!r.ok) return { status: "failed", message: r.error.message };
  return {
    status: rec.status === "starting" ? "starting" : "running",
    message: r.message,
    ...(rec.status === "running" ? uptime : {}),
  };
}

/**
 * A request of the service's HTTP check to the endpoint's own origin, through our client: its
 * CA, server name, client certificate and token, as every request to the endpoint.
 */
export async function checkRequest(
  svc: Service,
  cfg: TargetConfig,
  ctx: DriverContext,
  url: URL,
  init: Parameters<HttpRequester>[1],
): Promise<number> {
  const t = targetOf(svc, cfg, ctx);
  warnInsecure(t, ctx);
  const path = `${url.pathname}${url.search}`;
  const r = await request(t, { ...init, path }, { signal: init.signal });
  return r.status;
}
