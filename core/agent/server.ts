/**
 * The agent: one home over HTTP(S) — the JSON API under `/v1/`, server-sent events, Prometheus
 * `/metrics` and the dashboard at `/`. Routes come from one explicit table; every route but
 * `/healthz` and the dashboard's static files needs the token (bearer) or a dashboard session
 * (cookie, and then a matching `Origin` on a POST); a Host that is not ours is refused (DNS
 * rebinding); no CORS header is ever sent. Lifecycle work goes through the same library calls as
 * the CLI, so it stays DAG-ordered, health-gated and refused while dependents run. The agent
 * never owns a service process: stopping it leaves every service running.
 *
 * @module
 */
import { createServer as createHttp, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttps } from "node:https";
import type { AddressInfo } from "node:net";
import { readFileSync, statSync } from "node:fs";
import {
  ExitCode,
  PreflightError,
  ProvisioningError,
  RefusedError,
  UsageError,
} from "../errors.ts";
import { listEntry, type OpenOptions, Platform } from "../platform.ts";
import { VERSION } from "../runtime/version.ts";
import { restartServices, startServices } from "../lifecycle/start.ts";
import { stopServices } from "../lifecycle/stop.ts";
import type { LifecycleEvent, LifecycleResult } from "../lifecycle/events.ts";
import { supervisorStatus } from "../supervisor/client.ts";
import { ensureDirs, logFile } from "../state/files.ts";
import { type LogPosition, readLogEntries } from "../state/log_tail.ts";
import {
  appendEvent,
  type JournalEntry,
  type JournalRecord,
  parseSince,
  readJournal,
  type RequestedBy,
} from "../state/journal.ts";
import { SERVICE_NAME_RE as SERVICE_NAME } from "../names.ts";
import {
  allowedHosts,
  bearer,
  cookieValue,
  loadToken,
  SESSION_COOKIE,
  Sessions,
  tokenMatches,
} from "./auth.ts";
import { Feed, type StatusEvent } from "./feed.ts";
import { METRICS_CONTENT_TYPE, renderMetrics } from "./metrics.ts";
import { SseHub } from "./sse.ts";

/** The agent's version (the CLI's). */
export const AGENT_VERSION: string = VERSION;

/** Largest request body accepted (a lifecycle request is a few bytes). */
export const BODY_LIMIT = 64 * 1024;

/** How the agent is started. */
export interface AgentOptions extends OpenOptions {
  /** `host:port` (default `127.0.0.1:7070`; port 0 picks a free one). */
  listen?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** Serve plain HTTP on a non-loopback address anyway. */
  insecureHttp?: boolean;
  /** The token file (created 0600 when missing). */
  tokenFile: string;
  /** More Host names the agent answers to (besides its address and `localhost`). */
  allowHosts?: string[];
  /** Most event streams open at once. */
  maxStreams?: number;
  /** Where request and lifecycle lines go (never a token). */
  log?: (line: string) => void;
}

/** A running agent. */
export interface Agent {
  /** `http(s)://host:port` */
  url: string;
  port: number;
  /** The sign-in URL: the token in the fragment, which a browser never sends. */
  signInUrl: string;
  close(): Promise<void>;
}

/** Whether `host` is a loopback address (or `localhost`). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

/** `host:port` → its parts; a usage error (exit 2) when it is not one. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\[\]]+):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) {
    throw new UsageError(`Invalid --listen "${listen}": expected host:port (e.g. 127.0.0.1:7070)`);
  }
  return { host: m[1], port };
}

/**
 * Every API route, method and path (`{name}`: one path segment, a service of the registry). The
 * OpenAPI file (`docs/agent.openapi.json`) lists exactly these; the dashboard's static files come
 * on top.
 */
export const API_ROUTES = [
  ["GET", "/healthz"],
  ["POST", "/v1/session"],
  ["GET", "/v1/agent"],
  ["GET", "/v1/services"],
  ["GET", "/v1/services/{name}"],
  ["GET", "/v1/services/{name}/health"],
  ["GET", "/v1/services/{name}/logs"],
  ["POST", "/v1/services/{name}/start"],
  ["POST", "/v1/services/{name}/stop"],
  ["POST", "/v1/services/{name}/restart"],
  ["POST", "/v1/platform/start"],
  ["POST", "/v1/platform/stop"],
  ["POST", "/v1/platform/restart"],
  ["GET", "/v1/graph"],
  ["GET", "/v1/events"],
  ["GET", "/v1/journal"],
  ["GET", "/metrics"],
] as const;

type ApiRoute = (typeof API_ROUTES)[number];
type RouteKey = ApiRoute extends infer R
  ? R extends readonly [infer M extends string, infer P extends string] ? `${M} ${P}` : never
  : never;

/** Routes served without the token (besides the dashboard's static files). */
const OPEN_ROUTES = new Set<string>(["/healthz"]);

/** An answer of the API: status, JSON body, headers. */
interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** What a route handler gets. */
interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
  /** Authenticated by a session cookie (then a POST needs a matching Origin). */
  viaCookie: boolean;
  body: () => Promise<Record<string, unknown>>;
}

type Handler = (c: Ctx) => Promise<Reply | undefined>;

interface Route {
  method: "GET" | "POST";
  /** A path pattern: `{name}` matches one path segment. */
  path: string;
  /** Reachable without the token. */
  open?: boolean;
  handler: Handler;
}

const apiError = (status: number, code: string, message: string, hints: string[] = []): Reply => ({
  status,
  body: { error: { code, message, hints } },
});

/** Start an agent; it serves until `close()`. */
export async function startAgent(opts: AgentOptions): Promise<Agent> {
  const { host, port } = parseListen(opts.listen ?? "127.0.0.1:7070");
  const tls = opts.tlsCert || opts.tlsKey;
  if (tls && !(opts.tlsCert && opts.tlsKey)) {
    throw new UsageError("--tls-cert and --tls-key go together");
  }
  if (!tls && !isLoopback(host) && !opts.insecureHttp) {
    throw new UsageError(
      `Refusing to serve plain HTTP on ${host}: the token would cross the network in clear`,
      ["Give --tls-cert and --tls-key, or --insecure-http to do it anyway"],
    );
  }
  const token = loadToken(opts.tokenFile, { create: true });
  const log = opts.log ?? (() => {});
  let platform = await Platform.open(opts);
  await ensureDirs(platform.paths); // a home of ours (refused otherwise), its state dir watched
  let registryStamp = stamp(platform.registry.file);
  let checkedAt = Date.now();
  /** The platform, reloaded when its registry file changed (looked at once a second). */
  const current = (): Platform => {
    if (Date.now() - checkedAt < 1_000) return platform;
    checkedAt = Date.now();
    const now = stamp(platform.registry.file);
    if (now !== registryStamp) {
      registryStamp = now;
      Platform.open(opts).then((p) => {
        platform = p;
        const text = `registry reloaded: ${p.registry.file} (${p.services.length} services)`;
        void appendEvent(p.paths, { type: "reloaded", by: "agent", text });
      }, (e) => log(`registry: ${e.message}`));
    }
    return platform;
  };
  const feed = new Feed(current);
  await feed.start();
  const hub = new SseHub(opts.maxStreams ?? 64);
  const sessions = new Sessions();
  const { DASHBOARD_ASSETS, DASHBOARD_CSP } = await import("./dashboard.ts");

  const handlers: Record<RouteKey, Handler> = {
    "GET /healthz": () => ok({ ok: true }),
    "POST /v1/session": (c) => {
      // Only the bearer token buys a session (not a session itself).
      if (c.viaCookie) {
        return Promise.resolve(apiError(401, "unauthorized", "Sign in with the token"));
      }
      const id = sessions.create();
      return Promise.resolve({
        status: 204,
        headers: { "Set-Cookie": sessions.cookie(id, !!tls) },
      });
    },
    "GET /v1/agent": async () => {
      const p = current();
      const sup = await supervisorStatus(p.paths.home).catch(() => undefined);
      return ok({
        version: AGENT_VERSION,
        runtime: runtimeName(),
        pid: process.pid,
        home: p.paths.home,
        registry: p.registry.file,
        streams: { open: hub.clients.size, max: hub.max },
        supervisor: sup
          ? { running: true, pid: sup.pid, watching: sup.services.length }
          : { running: false },
      });
    },
    // Health from the agent's own checks (on each service's interval), not a check per request:
    // a busy dashboard must not multiply the probes (`/health` runs one now).
    "GET /v1/services": async () => {
      const rows = (await current().statusAll({ health: false })).map(listEntry);
      return ok(rows.map((r) => ({ ...r, health: healthOf(feed.current.get(r.name), r.status) })));
    },
    "GET /v1/services/{name}": async (c) => ok(await current().status(c.params.name)),
    "GET /v1/services/{name}/health": async (c) => ok(await current().health(c.params.name)),
    "GET /v1/services/{name}/logs": (c) => logs(c),
    "POST /v1/services/{name}/start": (c) => lifecycle(c, "start", [c.params.name], "service"),
    "POST /v1/services/{name}/stop": (c) => lifecycle(c, "stop", [c.params.name], "service"),
    "POST /v1/services/{name}/restart": (c) => lifecycle(c, "restart", [c.params.name], "service"),
    "POST /v1/platform/start": (c) => platformLifecycle(c, "start"),
    "POST /v1/platform/stop": (c) => platformLifecycle(c, "stop"),
    "POST /v1/platform/restart": (c) => platformLifecycle(c, "restart"),
    "GET /v1/graph": () => {
      const p = current();
      return ok({
        nodes: p.services.map((s) => ({
          name: s.name,
          category: s.category,
          status: feed.current.get(s.name)?.status ?? "stopped",
        })),
        edges: p.services.flatMap((s) => s.dependencies.map((d) => ({ from: s.name, to: d }))),
        waves: p.graph.waves(),
      });
    },
    "GET /v1/events": (c) => events(c),
    "GET /v1/journal": (c) => journal(c),
    "GET /metrics": () => metrics(),
  };
  const routes: Route[] = [
    ...API_ROUTES.map(([method, path]): Route => ({
      method,
      path,
      open: OPEN_ROUTES.has(path),
      handler: handlers[`${method} ${path}` as RouteKey],
    })),
    ...Object.keys(DASHBOARD_ASSETS).map((path): Route => ({
      method: "GET",
      path,
      open: true,
      handler: () => {
        const a = DASHBOARD_ASSETS[path];
        return Promise.resolve({
          status: 200,
          body: a.body,
          headers: {
            "Content-Type": a.type,
            "Content-Security-Policy": DASHBOARD_CSP,
            "Cache-Control": "no-cache",
          },
        });
      },
    })),
  ];

  async function platformLifecycle(
    c: Ctx,
    action: "start" | "stop" | "restart",
  ): Promise<Reply | undefined> {
    const body = await c.body();
    const names = body.services ?? [];
    if (!Array.isArray(names) || !names.every((n) => typeof n === "string")) {
      return apiError(400, "bad_request", '"services" must be a list of service names');
    }
    const p = current();
    for (const n of names) {
      if (!SERVICE_NAME.test(n) || !p.registry.byName.has(n)) {
        return apiError(404, "not_found", `Unknown service "${n}"`);
      }
    }
    return lifecycle(c, action, names, "platform");
  }

  function ok(body: unknown): Promise<Reply> {
    return Promise.resolve({ status: 200, body });
  }

  async function lifecycle(
    c: Ctx,
    action: "start" | "stop" | "restart",
    names: string[],
    scope: "service" | "platform",
  ): Promise<Reply | undefined> {
    const body = await c.body();
    if (body.force !== undefined && typeof body.force !== "boolean") {
      return apiError(400, "bad_request", '"force" must be true or false');
    }
    const force = body.force === true;
    const p = current();
    const stream = /\btext\/event-stream\b/.test(c.req.headers.accept ?? "");
    const client = stream ? hub.open(c.req, c.res) : undefined;
    if (stream && !client) return apiError(503, "busy", "Too many event streams open");
    const onEvent = (e: LifecycleEvent) => client?.send("lifecycle", JSON.stringify(e));
    const requestedBy: RequestedBy = { kind: "agent", client: clientAddress(c.req) };
    log(`${action} ${scope === "platform" && !names.length ? "platform" : names.join(" ")}`);
    let result: LifecycleResult | undefined;
    let failure: Reply | undefined;
    try {
      result = await (action === "start"
        ? startServices(
          p,
          names,
          scope === "service" ? { skipPreflight: force, onEvent, requestedBy } : {
            force,
            onEvent,
            requestedBy,
          },
        )
        : action === "stop"
        ? stopServices(p, names, { force, onEvent, requestedBy })
        : restartServices(p, names, { onEvent, requestedBy }));
    } catch (error) {
      failure = errorReply(error);
    }
    const reply = failure ?? {
      status: result!.ok ? 200 : result!.exit_code === ExitCode.preflight ? 422 : 409,
      body: result,
    };
    if (!client) return reply;
    client.send(reply.status < 300 ? "result" : "error", JSON.stringify(reply.body));
    client.res.end();
    return undefined;
  }

  async function logs(c: Ctx): Promise<Reply | undefined> {
    const lines = c.url.searchParams.get("lines") ?? "50";
    if (!/^\d{1,6}$/.test(lines) || Number(lines) < 1 || Number(lines) > 100_000) {
      return apiError(400, "bad_request", "lines must be a whole number from 1 to 100000");
    }
    const follow = c.url.searchParams.get("follow") === "1";
    const p = current();
    const file = logFile(p.paths, c.params.name);
    const hasFile = (() => {
      try {
        return statSync(file).isFile();
      } catch {
        return false;
      }
    })();
    if (!follow) {
      const out: string[] = [];
      for await (const line of p.logs(c.params.name, { lines: Number(lines) })) out.push(line);
      return ok({ service: c.params.name, lines: out });
    }
    const client = hub.open(c.req, c.res);
    if (!client) return apiError(503, "busy", "Too many event streams open");
    const ac = new AbortController();
    client.done.then(() => ac.abort());
    try {
      if (hasFile || p.service(c.params.name).deployment.mode === "binary") {
        const after = parsePosition(c.req.headers["last-event-id"]);
        for await (
          const e of readLogEntries(file, {
            lines: Number(lines),
            follow: true,
            signal: ac.signal,
            after,
          })
        ) {
          if (!(await client.paced("line", e.line, `${e.ino}:${e.offset}`))) break;
        }
      } else {
        let n = 0;
        for await (
          const line of p.logs(c.params.name, {
            lines: Number(lines),
            follow: true,
            signal: ac.signal,
          })
        ) {
          if (!(await client.paced("line", line, String(++n)))) break;
        }
      }
    } catch { /* the stream ended */ }
    client.close();
    return undefined;
  }

  async function events(c: Ctx): Promise<Reply | undefined> {
    const after = parsePosition(c.req.headers["last-event-id"]);
    const q = journalQuery(c.url, JOURNAL_STREAM_BACKLOG);
    const client = hub.open(c.req, c.res);
    if (!client) return apiError(503, "busy", "Too many event streams open");
    for (const e of feed.current.values()) client.send("status", JSON.stringify(e));
    const off = feed.listen((e: StatusEvent) => client.send("status", JSON.stringify(e)));
    // Journal records: the past asked for (after Last-Event-ID, or since=), then the new ones;
    // those appended meanwhile wait, and one sent with the past is not sent twice.
    const id = (e: JournalEntry) => `${e.position.ino}:${e.position.offset}`;
    const wanted = (e: JournalEntry) =>
      !q.services.length || e.record.service === undefined ||
      q.services.includes(e.record.service);
    let held: JournalEntry[] | undefined = [];
    const sent = new Set<string>();
    const send = (e: JournalEntry) =>
      !sent.has(id(e)) && wanted(e) && client.send("journal", JSON.stringify(e.record), id(e));
    const offJournal = feed.listenJournal((e) => held ? held.push(e) : send(e));
    if (after || q.since !== undefined) {
      const past = readJournal(current().paths, {
        after,
        since: after ? undefined : q.since,
        services: q.services,
        limit: q.limit,
      });
      for await (const e of past) {
        send(e);
        sent.add(id(e));
      }
    }
    for (const e of held) send(e);
    held = undefined;
    await client.done;
    off();
    offJournal();
    return undefined;
  }

  async function journal(c: Ctx): Promise<Reply> {
    const q = journalQuery(c.url, JOURNAL_LIMIT);
    const records: JournalRecord[] = [];
    const entries = readJournal(current().paths, {
      since: q.since,
      services: q.services,
      limit: q.limit,
    });
    for await (const e of entries) records.push(e.record);
    return { status: 200, body: { events: records } };
  }

  async function metrics(): Promise<Reply> {
    const p = current();
    const sup = await supervisorStatus(p.paths.home).catch(() => undefined);
    const text = renderMetrics({
      version: AGENT_VERSION,
      runtime: runtimeName(),
      supervisorUp: !!sup,
      health: feed.health,
      services: p.services.map((s) => {
        const e = feed.current.get(s.name);
        return {
          name: s.name,
          mode: s.deployment.mode,
          status: e?.status ?? "stopped",
          healthy: e?.healthy ?? null,
          restarts: e?.restarts ?? 0,
          ...(e?.started_at ? { started_at: e.started_at } : {}),
        };
      }),
    });
    return { status: 200, body: text, headers: { "Content-Type": METRICS_CONTENT_TYPE } };
  }

  const hosts = () => allowedHosts(host, boundPort, opts.allowHosts);
  let allowed = new Set<string>();
  let boundPort = port;
  const scheme = tls ? "https" : "http";

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("Referrer-Policy", "no-referrer");
    const hostHeader = (req.headers.host ?? "").toLowerCase();
    if (!allowed.has(hostHeader)) {
      return send(res, apiError(403, "forbidden_host", "This Host is not served here"));
    }
    let url: URL;
    try {
      url = new URL(req.url ?? "/", `${scheme}://${hostHeader}`);
    } catch {
      return send(res, apiError(400, "bad_request", "Invalid request URL"));
    }
    const found = match(url.pathname, req.method ?? "GET");
    if (!found) {
      const name = /^\/v1\/services\/([^/]+)/.exec(url.pathname)?.[1];
      return send(
        res,
        name
          ? apiError(404, "not_found", "No such service")
          : apiError(404, "not_found", "No such route"),
      );
    }
    if ("allow" in found) {
      return send(res, {
        ...apiError(405, "method_not_allowed", `Use ${found.allow}`),
        headers: { Allow: found.allow },
      });
    }
    const { route, params } = found;
    let viaCookie = false;
    if (!route.open) {
      if (url.searchParams.has("token") || url.searchParams.has("access_token")) {
        return send(res, {
          ...apiError(401, "unauthorized", "A token in the URL is not accepted", [
            "Send it as Authorization: Bearer <token>",
          ]),
          headers: { "WWW-Authenticate": 'Bearer realm="provisioning"' },
        });
      }
      const given = bearer(req.headers.authorization);
      if (given !== undefined) {
        if (!tokenMatches(given, token)) return send(res, unauthorized());
      } else if (sessions.valid(cookieValue(req.headers.cookie, SESSION_COOKIE))) {
        viaCookie = true;
        if (route.method === "POST" && req.headers.origin !== `${scheme}://${hostHeader}`) {
          return send(
            res,
            apiError(403, "forbidden_origin", "A cookie-signed POST must come from this origin"),
          );
        }
      } else {
        return send(res, unauthorized());
      }
    }
    let bodyRead: Promise<Record<string, unknown>> | undefined;
    const ctx: Ctx = {
      req,
      res,
      url,
      params,
      viaCookie,
      body: () => (bodyRead ??= readBody(req)),
    };
    try {
      const reply = await route.handler(ctx);
      if (reply) send(res, reply);
    } catch (error) {
      if (!res.headersSent) send(res, errorReply(error));
      else res.destroy();
    }
  }

  /** A name of the service-name rule that the registry has. */
  function known(name: string): boolean {
    return SERVICE_NAME.test(name) && current().registry.byName.has(name);
  }

  function match(
    path: string,
    method: string,
  ): { route: Route; params: Record<string, string> } | { allow: string } | undefined {
    const allow: string[] = [];
    for (const r of routes) {
      const params = matchPath(r.path, path);
      if (!params) continue;
      if (params.name !== undefined && !known(params.name)) continue; // an unknown name: 404
      if (r.method === method || (method === "HEAD" && r.method === "GET")) {
        return { route: r, params };
      }
      allow.push(r.method);
    }
    return allow.length ? { allow: [...new Set(allow)].join(", ") } : undefined;
  }

  const server = tls
    ? createHttps({ cert: readFileSync(opts.tlsCert!), key: readFileSync(opts.tlsKey!) })
    : createHttp();
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 100;
  server.on("request", (req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.on("clientError", (_e, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(
        new ProvisioningError(`Cannot listen on ${host}:${port}: ${e.code ?? e.message}`, {
          hints: e.code === "EADDRINUSE" ? ["Another process listens there: pick --listen"] : [],
        }),
      ));
    server.listen(port, host.replace(/^\[|\]$/g, ""), () => resolve());
  });
  boundPort = (server.address() as AddressInfo).port;
  allowed = hosts();
  const shownHost = host;
  const url = `${scheme}://${shownHost}:${boundPort}`;
  return {
    url,
    port: boundPort,
    signInUrl: `${url}/#token=${token}`,
    close: async () => {
      feed.close();
      hub.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
    },
  };
}

/** `healthy` / `unhealthy` from the agent's last check of a running service, else `unknown`. */
function healthOf(e: StatusEvent | undefined, status: string): "healthy" | "unhealthy" | "unknown" {
  if (status !== "running" || !e || e.status !== "running" || e.healthy === null) return "unknown";
  return e.healthy ? "healthy" : "unhealthy";
}

function unauthorized(): Reply {
  return {
    ...apiError(401, "unauthorized", "A valid token is required", [
      "Send Authorization: Bearer <token> (provisioning agent token prints it)",
    ]),
    headers: { "WWW-Authenticate": 'Bearer realm="provisioning"' },
  };
}

/** `{name}` segments of `pattern` matched against `path`, or undefined. */
function matchPath(pattern: string, path: string): Record<string, string> | undefined {
  const ps = pattern.split("/");
  const xs = path.split("/");
  if (ps.length !== xs.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < ps.length; i++) {
    if (ps[i] === "{name}") {
      let v: string;
      try {
        v = decodeURIComponent(xs[i]);
      } catch {
        return undefined;
      }
      params.name = v;
    } else if (ps[i] !== xs[i]) return undefined;
  }
  return params;
}

/** The error of a failed call as an API answer (never with a stack or an env value). */
function errorReply(error: unknown): Reply {
  if (error instanceof RefusedError) return apiError(409, "refused", error.message, error.hints);
  if (error instanceof PreflightError) {
    return apiError(422, "preflight_failed", error.message, error.hints);
  }
  if (error instanceof UsageError) return apiError(400, "bad_request", error.message, error.hints);
  if (error instanceof BodyError) return apiError(error.status, error.code, error.message);
  if (error instanceof ProvisioningError) {
    const status = error.exitCode === ExitCode.preflight ? 422 : 409;
    return apiError(
      status,
      status === 422 ? "preflight_failed" : "failed",
      error.message,
      error.hints,
    );
  }
  return apiError(500, "internal", "Internal error (see the agent's output)");
}

class BodyError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/** A JSON object body of at most `BODY_LIMIT` bytes (empty: `{}`). */
function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > BODY_LIMIT) {
      reject(new BodyError(413, "too_large", `The body is larger than ${BODY_LIMIT} bytes`));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > BODY_LIMIT) {
        reject(new BodyError(413, "too_large", `The body is larger than ${BODY_LIMIT} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("error", reject);
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8").trim();
      if (!text) return resolve({});
      try {
        const v = JSON.parse(text);
        if (v && typeof v === "object" && !Array.isArray(v)) return resolve(v);
      } catch { /* below */ }
      reject(new BodyError(400, "bad_request", "The body must be a JSON object"));
    });
  });
}

function send(res: ServerResponse, reply: Reply): void {
  if (res.headersSent) return void res.end();
  const text = typeof reply.body === "string"
    ? reply.body
    : reply.body === undefined
    ? ""
    : JSON.stringify(reply.body);
  const headers: Record<string, string | number> = {
    "Cache-Control": "no-store",
    ...(typeof reply.body === "string" || reply.body === undefined
      ? {}
      : { "Content-Type": "application/json; charset=utf-8" }),
    ...reply.headers,
    "Content-Length": Buffer.byteLength(text),
  };
  res.writeHead(reply.status, headers);
  res.end(res.req?.method === "HEAD" ? undefined : text);
}

/** Journal records `/v1/journal` answers at most by default, and `/v1/events` replays. */
const JOURNAL_LIMIT = 1_000;
const JOURNAL_STREAM_BACKLOG = 500;

/** `?since=1h&service=web&limit=N` of a journal route; a usage error (400) when malformed. */
function journalQuery(
  url: URL,
  limit: number,
): { since?: number; services: string[]; limit: number } {
  const since = url.searchParams.get("since");
  const services = url.searchParams.getAll("service");
  for (const s of services) {
    if (!SERVICE_NAME.test(s)) throw new UsageError(`Invalid service name ${JSON.stringify(s)}`);
  }
  const n = url.searchParams.get("limit");
  if (n !== null && (!/^\d{1,6}$/.test(n) || Number(n) < 1 || Number(n) > 100_000)) {
    throw new UsageError("limit must be a whole number from 1 to 100000");
  }
  return {
    ...(since !== null ? { since: parseSince(since) } : {}),
    services,
    limit: n !== null ? Number(n) : limit,
  };
}

/** The client of a request as `address:port` (`[v6]:port`; IPv4 without its `::ffff:`). */
function clientAddress(req: IncomingMessage): string {
  const a = (req.socket.remoteAddress ?? "unknown").replace(/^::ffff:(?=\d+\.)/, "");
  const port = req.socket.remotePort;
  return port === undefined ? a : a.includes(":") ? `[${a}]:${port}` : `${a}:${port}`;
}

/** `<ino>:<offset>` of a `Last-Event-ID`, or undefined. */
function parsePosition(id: string | string[] | undefined): LogPosition | undefined {
  const m = /^(\d+):(\d+)$/.exec(typeof id === "string" ? id : "");
  return m ? { ino: Number(m[1]), offset: Number(m[2]) } : undefined;
}

function stamp(file: string): string {
  try {
    const st = statSync(file);
    return `${st.ino}:${st.mtimeMs}:${st.size}`;
  } catch {
    return "";
  }
}

/** The runtime this agent runs on, from `process.versions`. */
function runtimeName(): string {
  const v = process.versions as Record<string, string | undefined>;
  return v.deno ? `deno ${v.deno}` : v.bun ? `bun ${v.bun}` : `node ${v.node}`;
}
