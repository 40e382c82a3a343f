/**
 * A small Docker Engine API client over `node:http`: a unix socket (`DOCKER_HOST=unix:///path`,
 * default `/var/run/docker.sock`) or plain TCP (`tcp://host:port`). No docker CLI, no undici
 * (Bun ignores undici's `socketPath`). Requests carry no API version prefix, so the engine
 * answers in its own current version; the fields read here are stable since API 1.25.
 *
 * Every connection is closed after its response (`agent: false`): a CLI call makes a handful
 * of requests, and no idle socket outlives them.
 *
 * @module
 */
import { type ClientRequest, type IncomingMessage, request as httpRequest } from "node:http";
import { ExitCode, ProvisioningError } from "../../core/errors.ts";
import type { Finding } from "../../core/types.ts";

/** The spec's words for an engine that does not answer. */
export const ENGINE_DOWN = "Docker is not installed or not running";

/** The default request timeout in milliseconds (stop and wait pass their own). */
const REQUEST_TIMEOUT_MS = 30_000;

/** Where the engine listens, parsed from `DOCKER_HOST`. */
export interface EngineEndpoint {
  /** `DOCKER_HOST` as given, or the default `unix:///var/run/docker.sock`. */
  url: string;
  socketPath?: string;
  host?: string;
  port?: number;
  /** Set when `DOCKER_HOST` cannot be used; every request then fails with it. */
  problem?: string;
}

/** Parse `DOCKER_HOST` (`unix:///path`, `tcp://host:port`, `http://host:port`). */
export function engineEndpoint(env: Record<string, string | undefined>): EngineEndpoint {
  const url = env.DOCKER_HOST || "unix:///var/run/docker.sock";
  if (url.startsWith("unix://")) return { url, socketPath: url.slice("unix://".length) };
  const m = /^(?:tcp|http):\/\/(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(url);
  if (m) {
    if (env.DOCKER_TLS_VERIFY && env.DOCKER_TLS_VERIFY !== "0") {
      return { url, problem: `DOCKER_TLS_VERIFY is set: TLS to the engine is not supported yet` };
    }
    return { url, host: m[1].replace(/^\[|\]$/g, ""), port: Number(m[2] ?? 2375) };
  }
  return { url, problem: `unsupported DOCKER_HOST "${url}" (use unix:///path or tcp://host:port)` };
}

/** An error answer of the engine (`{"message": ...}` with a 4xx/5xx status). */
export class EngineError extends Error {
  override name = "EngineError";
  status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** The engine cannot be reached at all; `exitCode` 3 (a missing prerequisite). */
export class EngineUnavailableError extends ProvisioningError {
  override name = "EngineUnavailableError";
  constructor(endpoint: EngineEndpoint, cause?: unknown) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    const detail = endpoint.problem ?? (code ? `${code}` : (cause as Error)?.message ?? "");
    super(
      code === "EACCES" ? `${ENGINE_DOWN} (permission denied on ${endpoint.url})` : ENGINE_DOWN,
      {
        exitCode: ExitCode.preflight,
        cause,
        hints: [
          endpoint.problem
            ? `Fix DOCKER_HOST: ${endpoint.problem}`
            : code === "EACCES"
            ? `Run as root or as a member of the "docker" group`
            : `Nothing answers at ${endpoint.url}${
              detail ? ` (${detail})` : ""
            }: start the Docker daemon, or point DOCKER_HOST at it`,
        ],
      },
    );
  }
}

const CONNECT_ERRORS = new Set([
  "ENOENT",
  "ECONNREFUSED",
  "EACCES",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "ENOTSOCK",
]);

/** Options of one request. */
export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** A Docker Engine API client for one `DOCKER_HOST`. */
export class DockerEngine {
  readonly endpoint: EngineEndpoint;

  constructor(env: Record<string, string | undefined>) {
    this.endpoint = engineEndpoint(env);
  }

  /** JSON (or text) answer of `method path`; 404 gives undefined, other errors throw EngineError. */
  async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T | undefined> {
    const res = await this.open(method, path, { timeoutMs: REQUEST_TIMEOUT_MS, ...opts });
    const text = await readAll(res);
    if (res.statusCode === 404) return undefined;
    if ((res.statusCode ?? 500) >= 400) {
      throw new EngineError(res.statusCode ?? 500, errorText(text));
    }
    if (!text) return undefined;
    return (res.headers["content-type"] ?? "").includes("json") ? JSON.parse(text) : text as T;
  }

  /** Like {@linkcode json}, but a 404 is an EngineError too. */
  async must<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.open(method, path, { timeoutMs: REQUEST_TIMEOUT_MS, ...opts });
    const text = await readAll(res);
    if ((res.statusCode ?? 500) >= 400) {
      throw new EngineError(res.statusCode ?? 500, errorText(text));
    }
    return (text && (res.headers["content-type"] ?? "").includes("json")
      ? JSON.parse(text)
      : text) as T;
  }

  /**
   * The raw response of `method path` (for streams: logs). The caller reads or destroys it; the
   * signal destroys it. Connection failures throw EngineUnavailableError.
   */
  open(method: string, path: string, opts: RequestOptions = {}): Promise<IncomingMessage> {
    const ep = this.endpoint;
    if (ep.problem) return Promise.reject(new EngineUnavailableError(ep));
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let res: IncomingMessage | undefined;
      const onAbort = () => {
        const reason = opts.signal?.reason ?? new Error("aborted");
        res ? res.destroy() : req.destroy(reason);
      };
      const done = () => {
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
      };
      if (opts.signal?.aborted) return reject(opts.signal.reason ?? new Error("aborted"));
      const req: ClientRequest = httpRequest({
        socketPath: ep.socketPath,
        host: ep.host,
        port: ep.port,
        method,
        path: path + queryString(opts.query),
        agent: false,
        headers: {
          Host: "docker",
          Connection: "close",
          ...(body === undefined
            ? {}
            : { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) }),
        },
      }, (r) => {
        res = r;
        r.once("close", done);
        if (opts.timeoutMs === undefined) clearTimeout(timer);
        resolve(r);
      });
      req.once("error", (error: NodeJS.ErrnoException) => {
        done();
        reject(
          error.code && CONNECT_ERRORS.has(error.code)
            ? new EngineUnavailableError(ep, error)
            : error,
        );
      });
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      if (opts.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          const error = new Error(
            `Docker engine did not answer ${method} ${path} within ${opts.timeoutMs} ms`,
          );
          res ? res.destroy(error) : req.destroy(error);
        }, opts.timeoutMs);
      } else {
        // Streams have no overall timeout, but connecting must not hang forever.
        timer = setTimeout(
          () => req.destroy(new Error(`Docker engine did not answer ${path}`)),
          REQUEST_TIMEOUT_MS,
        );
      }
      req.end(body);
    });
  }

  /** `GET /_ping`: true when the engine answers OK; throws EngineUnavailableError otherwise. */
  async ping(signal?: AbortSignal): Promise<void> {
    try {
      await this.must("GET", "/_ping", { signal, timeoutMs: 5_000 });
    } catch (error) {
      if (error instanceof EngineUnavailableError) throw error;
      throw new EngineUnavailableError(this.endpoint, error);
    }
  }

  /** The pre-flight finding "engine reachable", with its version when it answers. */
  async engineFinding(signal?: AbortSignal): Promise<Finding> {
    try {
      await this.ping(signal);
      const v = await this.json<{ Version?: string; ApiVersion?: string }>("GET", "/version", {
        signal,
      });
      return {
        ok: true,
        kind: "prerequisite",
        message: `Docker running: engine ${v?.Version ?? "?"} (API ${
          v?.ApiVersion ?? "?"
        }) at ${this.endpoint.url}`,
      };
    } catch (error) {
      const e = error instanceof EngineUnavailableError
        ? error
        : new EngineUnavailableError(this.endpoint, error);
      return { ok: false, kind: "prerequisite", message: e.message, hint: e.hints[0] };
    }
  }

  /** `GET /containers/{id}/json`, or undefined when there is no such container. */
  inspectContainer(idOrName: string, signal?: AbortSignal): Promise<ContainerInspect | undefined> {
    return this.json<ContainerInspect>("GET", `/containers/${encodeURIComponent(idOrName)}/json`, {
      signal,
    });
  }

  /** `GET /images/{name}/json`, or undefined when the image is not present locally. */
  inspectImage(name: string, signal?: AbortSignal): Promise<{ Id: string } | undefined> {
    return this.json<{ Id: string }>("GET", `/images/${encodeURIComponent(name)}/json`, { signal });
  }

  /** Every container (running or not) carrying all of `labels` (`key=value` or `key`). */
  async listContainers(labels: string[], signal?: AbortSignal): Promise<ContainerSummary[]> {
    return await this.json<ContainerSummary[]>("GET", "/containers/json", {
      query: { all: 1, filters: JSON.stringify({ label: labels }) },
      signal,
    }) ?? [];
  }
}

/** The part of `GET /containers/{id}/json` the drivers read. */
export interface ContainerInspect {
  Id: string;
  Name: string;
  RestartCount: number;
  State: {
    Status: string;
    Running: boolean;
    Paused: boolean;
    Restarting: boolean;
    OOMKilled: boolean;
    Dead: boolean;
    Pid: number;
    ExitCode: number;
    Error: string;
    StartedAt: string;
    FinishedAt: string;
    Health?: {
      Status: string;
      FailingStreak: number;
      Log?: { ExitCode: number; Output: string }[];
    };
  };
  Config: { Image: string; Tty: boolean; Labels: Record<string, string> | null };
  HostConfig?: { RestartPolicy?: { Name: string; MaximumRetryCount: number } };
}

/** One entry of `GET /containers/json`. */
export interface ContainerSummary {
  Id: string;
  Names: string[];
  State: string;
  Labels: Record<string, string>;
}

function queryString(query: RequestOptions["query"]): string {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : "";
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    res.setEncoding("utf8");
    res.on("data", (d: string) => (text += d));
    res.once("end", () => resolve(text));
    res.once("error", reject);
  });
}

function errorText(text: string): string {
  try {
    const m = JSON.parse(text)?.message;
    if (typeof m === "string") return m;
  } catch { /* not JSON */ }
  return text.trim() || "no message";
}
