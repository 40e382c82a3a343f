/**
 * A remote service behind another host's provisioning agent (`agent = true`): the endpoint is
 * that agent, `service` names the service there (default: the same name).
 *
 * - `control = "observe"` (default): start waits until the agent reports it running and healthy
 *   (or running with no check of its own); stop leaves it alone (`not_managed`).
 * - `control = "forward"`: start, stop (and so restart) are sent to the agent, which applies its
 *   own graph, pre-flight and refusals; its lifecycle events stream back and show in our progress
 *   as `host/service`; a refusal there is a refusal here (exit 4), its pre-flight failure ours
 *   (exit 3). Logs and status come from the agent.
 *
 * @module
 */
import { ExitCode, ProvisioningError, RefusedError } from "../../core/errors.ts";
import type { LifecycleEvent } from "../../core/lifecycle/events.ts";
import { pause } from "../../core/sleep.ts";
import {
  type DriverContext,
  type Handle,
  type LogOptions,
  type RuntimeStatus,
  type Service,
  SERVICE_STATUSES,
  type ServiceStatus,
} from "../../core/types.ts";
import { type AgentAnswer, callAgent, RemoteError } from "./_client.ts";
import { type Target, type TargetConfig, targetOf } from "./_target.ts";

/** The agent keys of `[deployment.remote]`. */
export interface AgentConfig extends TargetConfig {
  agent?: boolean;
  service?: string;
  /** Default `observe`. */
  control?: "observe" | "forward";
}

/** The name of the service on the other host. */
const remoteName = (svc: Service, cfg: AgentConfig) => cfg.service ?? svc.name;

/** `host:port` of the agent, as progress lines and messages name it. */
const hostOf = (t: Target) => t.hostHeader;

const servicePath = (name: string, rest = "") => `/v1/services/${encodeURIComponent(name)}${rest}`;

/** A failed exchange as the error a user reads: one line, the exit code it deserves. */
function asError(e: unknown): never {
  if (e instanceof RemoteError) {
    throw new ProvisioningError(e.message, {
      exitCode: e.exitCode,
      hints: e.hint ? [e.hint] : [],
    });
  }
  throw e;
}

/** The agent's `{error}` answer as our error: refused → exit 4, pre-flight → 3, else 1. */
function fromAgentError(t: Target, name: string, a: AgentAnswer, what: string): never {
  const err = a.body?.error as { code?: string; message?: string; hints?: string[] } | undefined;
  const result = a.body as { outcomes?: { name: string; status: string; message?: string }[] };
  const message = err?.message ??
    result?.outcomes?.filter((o) => o.status === "failed" || o.status === "blocked")
      .map((o) => `${o.name}: ${o.message ?? o.status}`).join("; ") ??
    `answered ${a.status}`;
  const line = `${hostOf(t)}/${name}: ${what} there: ${message}`;
  if (a.status === 404) {
    throw new ProvisioningError(`${hostOf(t)}: no service "${name}" there (404)`, {
      exitCode: ExitCode.preflight,
      hints: ["Check service in [deployment.remote]"],
    });
  }
  if (err?.code === "refused") throw new RefusedError(line, err.hints ?? []);
  if (a.status === 422 || err?.code === "preflight_failed") {
    throw new ProvisioningError(line, { exitCode: ExitCode.preflight, hints: err?.hints ?? [] });
  }
  throw new ProvisioningError(line, { hints: err?.hints ?? [] });
}

/** One lifecycle event of the other host as our progress line (`host/service: started`). */
function progressLine(t: Target, e: LifecycleEvent): string | undefined {
  const who = `${hostOf(t)}/${e.service}`;
  switch (e.type) {
    case "starting":
      return `${who}: starting`;
    case "started":
      return `${who}: started${e.pid ? ` (pid ${e.pid} there)` : ""}`;
    case "healthy":
      return `${who}: healthy`;
    case "ready":
      return `${who}: started (no health check)`;
    case "running":
      return `${who}: already running`;
    case "failed":
      return `${who}: failed: ${e.message ?? ""}`;
    case "blocked":
      return `${who}: blocked by ${e.blocked_by ?? "a dependency"}`;
    case "stopping":
      return `${who}: stopping`;
    case "stopped":
      return `${who}: stopped${e.message ? ` (${e.message})` : ""}`;
    default:
      return undefined;
  }
}

/** Send `start` or `stop` of the remote service; its events become our progress. */
async function forward(
  t: Target,
  name: string,
  action: "start" | "stop",
  ctx: DriverContext,
  opts: { force?: boolean } = {},
): Promise<void> {
  let result: AgentAnswer | undefined;
  forget(t);
  const a = await callAgent(t, {
    method: "POST",
    path: servicePath(name, `/${action}`),
    body: opts.force ? { force: true } : {},
    signal: ctx.signal,
    // An event at least this often: a start there waits at most its start_timeout per service.
    timeoutMs: Math.max(t.timeoutMs, 120_000),
    onEvent: (event, data) => {
      let doc: unknown;
      try {
        doc = JSON.parse(data);
      } catch {
        return;
      }
      if (event === "lifecycle") {
        const line = progressLine(t, doc as LifecycleEvent);
        if (line) ctx.progress?.(line);
      } else if (event === "result" || event === "error") {
        result = { status: event === "result" ? 200 : 409, body: doc };
      }
    },
  }).finally(() => forget(t)).catch((e) => {
    if (e instanceof RemoteError && !e.permanent) {
      throw new ProvisioningError(
        `${hostOf(t)}/${name}: the agent went away during the ${action} (${e.message})`,
        { hints: [`See there: provisioning services status ${name} (on ${hostOf(t)})`] },
      );
    }
    return asError(e);
  });
  // A stream that ended without its result: the agent stopped mid-way.
  if (a.status === 200 && !result) {
    throw new ProvisioningError(
      `${hostOf(t)}/${name}: the agent ended the ${action} without a result`,
    );
  }
  const answer = result ?? a;
  const body = answer.body as { ok?: boolean; error?: unknown; exit_code?: number };
  if (body?.ok === false && body.exit_code === ExitCode.preflight) answer.status = 422;
  // An error event carries the agent's `{error}` or a failed LifecycleResult.
  if (answer.status >= 300 || body?.ok === false || body?.error) {
    fromAgentError(t, name, { status: answer.status === 200 ? 409 : answer.status, body }, action);
  }
}

/** One row of the other agent's `GET /v1/services`. */
interface RemoteRow {
  name: string;
  status: ServiceStatus;
  health?: string;
  pid?: number | null;
}

/**
 * The other agent's service list, shared by the status reads of this process for up to 1 s
 * (as plain endpoints share their probes): the status of 20 services there is one request, not
 * 20. A start or stop sent there forgets it.
 */
const lists = new Map<string, { at: number; rows: Promise<Map<string, RemoteRow>> }>();
const LIST_TTL_MS = 1_000;
const listKey = (t: Target) => JSON.stringify([t.host, t.port, t.path, t.tokenPath]);

function forget(t: Target): void {
  lists.delete(listKey(t));
}

function remoteList(t: Target, ctx: DriverContext): Promise<Map<string, RemoteRow>> {
  const key = listKey(t);
  const hit = lists.get(key);
  if (hit && performance.now() - hit.at < LIST_TTL_MS) return hit.rows;
  const rows = callAgent(t, { method: "GET", path: "/v1/services", signal: ctx.signal })
    .then((a) => {
      if (a.status !== 200) fromAgentError(t, "*", a, "list");
      return new Map((a.body as RemoteRow[]).map((r) => [r.name, r]));
    });
  lists.set(key, { at: performance.now(), rows });
  rows.catch(() => lists.get(key)?.rows === rows && lists.delete(key));
  return rows;
}

/** The remote service's status as the agent reports it. */
async function remoteStatus(t: Target, name: string, ctx: DriverContext): Promise<RemoteRow> {
  const rows = await remoteList(t, ctx).catch(asError);
  const row = rows.get(name);
  if (!row) {
    throw new ProvisioningError(`${hostOf(t)}: no service "${name}" there`, {
      exitCode: ExitCode.preflight,
      hints: ["Check service in [deployment.remote]"],
    });
  }
  return row;
}

/**
 * Start: forward it, or (observe) wait within `start_timeout` until the agent reports the
 * service running and healthy (or running, when it has no check there).
 */
export async function agentStart(
  svc: Service,
  cfg: AgentConfig,
  ctx: DriverContext,
): Promise<Handle> {
  const t = targetOf(svc, cfg, ctx);
  const name = remoteName(svc, cfg);
  const handle = { started_at: new Date().toISOString(), data: { endpoint: t.where, name } };
  if (cfg.control === "forward") {
    await forward(t, name, "start", ctx);
    return handle;
  }
  const deadline = Date.now() + svc.startup.start_timeout * 1000;
  let last = "";
  let delay = 50;
  while (true) {
    try {
      const a = await callAgent(t, {
        method: "GET",
        path: servicePath(name, "/health"),
        signal: ctx.signal,
      });
      if (a.status !== 200) fromAgentError(t, name, a, "health");
      const h = a.body as { state?: string; message?: string };
      if (h.state === "healthy" || h.state === "unknown") return handle;
      last = `${hostOf(t)}/${name}: ${h.state}${h.message ? ` (${h.message})` : ""}`;
    } catch (e) {
      if (!(e instanceof RemoteError) || e.permanent) return asError(e);
      last = e.message;
    }
    if (ctx.signal?.aborted) throw new ProvisioningError("Start cancelled");
    if (Date.now() + delay > deadline) {
      throw new ProvisioningError(
        `Not ready after ${svc.startup.start_timeout}s (start_timeout): ${last}`,
      );
    }
    await pause(delay, ctx.signal);
    delay = Math.min(delay * 2, 500);
  }
}

/** Stop (forward only; the lifecycle never calls it for an observed service). */
export async function agentStop(
  svc: Service,
  cfg: AgentConfig,
  ctx: DriverContext,
  opts: { force?: boolean } = {},
): Promise<void> {
  await forward(targetOf(svc, cfg, ctx), remoteName(svc, cfg), "stop", ctx, opts);
}

/** Status from the other host's agent, with where it runs; never a local pid. */
export async function agentStatus(
  svc: Service,
  cfg: AgentConfig,
  ctx: DriverContext,
): Promise<RuntimeStatus> {
  const t = targetOf(svc, cfg, ctx);
  const name = remoteName(svc, cfg);
  try {
    const s = await remoteStatus(t, name, ctx);
    const status = SERVICE_STATUSES.includes(s.status) ? s.status : "failed";
    const there = `on ${hostOf(t)} as ${name}${s.pid ? ` (pid ${s.pid} there)` : ""}`;
    return {
      status,
      message: s.health && s.health !== "unknown" ? `${there}: ${s.health}` : there,
    };
  } catch (e) {
    return { status: "failed", message: (e as Error).message };
  }
}

/** The remote service's log, from its agent: the last lines, then (follow) new ones. */
export async function* agentLogs(
  svc: Service,
  cfg: AgentConfig,
  ctx: DriverContext,
  opts: LogOptions = {},
): AsyncGenerator<string> {
  const t = targetOf(svc, cfg, ctx);
  const name = remoteName(svc, cfg);
  const lines = opts.lines ?? 50;
  if (!opts.follow) {
    const a = await callAgent(t, {
      method: "GET",
      path: servicePath(name, `/logs?lines=${lines}`),
      signal: opts.signal ?? ctx.signal,
    }).catch(asError);
    if (a.status !== 200) fromAgentError(t, name, a, "logs");
    yield* (a.body?.lines ?? []) as string[];
    return;
  }
  // Follow: the agent's SSE lines, handed on as they come.
  const queue: string[] = [];
  let wake: (() => void) | undefined;
  let done = false;
  let failure: unknown;
  callAgent(t, {
    method: "GET",
    path: servicePath(name, `/logs?lines=${lines}&follow=1`),
    signal: opts.signal ?? ctx.signal,
    timeoutMs: 24 * 3600_000, // a quiet log is not a dead agent (its heartbeats come every 15 s)
    onEvent: (event, data) => {
      if (event !== "line") return;
      queue.push(data);
      wake?.();
    },
  }).then(
    () => (done = true),
    (e) => {
      failure = e;
      done = true;
    },
  ).finally(() => wake?.());
  while (true) {
    while (queue.length) yield queue.shift()!;
    if (done) break;
    await new Promise<void>((r) => (wake = r));
    wake = undefined;
  }
  if (failure && !(failure instanceof RemoteError && failure.kind === "cancelled")) {
    asError(failure);
  }
}
