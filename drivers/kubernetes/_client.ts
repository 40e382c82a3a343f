/**
 * The kubernetes driver's connection to a cluster: `@kubernetes/client-node` imported lazily
 * (only when a kubernetes service is touched: ~400 ms, and never by `services list` of services
 * this home has not started), its `KubeConfig` for the kubeconfig, the context and every way of
 * authenticating (tokens, client certificates, exec plugins, OIDC, in-cluster accounts, proxies),
 * and the requests themselves.
 *
 * The requests are sent here, through `KubeConfig.applyToHTTPSOptions` and `node:http(s)`, not
 * through the client's typed API objects: those pass bodies through a serializer that drops
 * fields it does not know (a server-side apply of `spec.replica: 3` would silently lose it),
 * build a new TLS agent per call, and take a deadline only through a middleware. Here every
 * request has a deadline and the caller's `AbortSignal`, failures are {@linkcode KubeError}s
 * that say what went wrong in one line (connection refused, TLS, 401, 403, a `Status`
 * message), and no message carries a credential.
 *
 * @module
 */
import { statSync } from "node:fs";
import type { IncomingMessage, RequestOptions } from "node:http";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, type AgentOptions, request as httpsRequest } from "node:https";
import process from "node:process";
import { httpError, KubeError, networkError } from "./_errors.ts";
import {
  type Client,
  findKubeconfig,
  type LoadedConfig,
  loadKubeconfig,
  type LookupInput,
} from "./_kubeconfig.ts";

export { type FailureKind, KubeError } from "./_errors.ts";

let loading: Promise<Client> | undefined;

/**
 * The client module, imported once (its `punycode` deprecation warning silenced). With
 * `PROVISIONING_TRACE_PLUGINS=1` in `env` the import is reported on stderr, like plugin imports.
 */
export function loadClient(env: Record<string, string | undefined> = {}): Promise<Client> {
  if (!loading && env.PROVISIONING_TRACE_PLUGINS) {
    process.stderr.write(
      "provisioning: importing @kubernetes/client-node for the kubernetes driver\n",
    );
  }
  return loading ??= (async () => {
    const quiet = process.noDeprecation;
    process.noDeprecation = true;
    try {
      return await import("@kubernetes/client-node");
    } finally {
      process.noDeprecation = quiet;
    }
  })();
}

/** Options of one request. */
export interface Req {
  query?: Record<string, string | number | boolean | undefined>;
  /** Sent as JSON. */
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  /** Default 10 s; a stream's deadline applies to its headers only. */
  timeoutMs?: number;
}

/** A cluster, reached through one context of a kubeconfig. */
export class Kube {
  readonly server: string;
  readonly context: string;
  #base?: { at: number; opts: RequestOptions };
  #agent?: HttpAgent;

  constructor(readonly config: LoadedConfig) {
    this.server = config.cluster.server.replace(/\/+$/, "");
    this.context = config.context;
  }

  /** `text` without any credential of the kubeconfig (or of the last Authorization header). */
  redact(text: string): string {
    let out = text;
    for (const s of this.config.secrets) out = out.split(s).join("***");
    return out;
  }

  /** The parsed JSON answer of a request; throws {@linkcode KubeError}. */
  async json<T>(method: string, path: string, o: Req = {}): Promise<T> {
    const res = await this.open(method, path, o);
    const text = await readAll(res, o.signal);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new KubeError(
        `${method} ${path}: the API answered something that is not JSON`,
        "http",
        res.statusCode,
      );
    }
  }

  /** GET `path`, or undefined when it is not found (404). */
  async get<T>(path: string, o: Req = {}): Promise<T | undefined> {
    try {
      return await this.json<T>("GET", path, o);
    } catch (e) {
      if (e instanceof KubeError && e.status === 404) return undefined;
      throw e;
    }
  }

  /** A response with a 2xx status (its body unread); errors are thrown as {@linkcode KubeError}. */
  async open(method: string, path: string, o: Req = {}): Promise<IncomingMessage> {
    const base = await this.base();
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(o.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    const body = o.body === undefined ? undefined : JSON.stringify(o.body);
    const headers: Record<string, string> = {
      ...(base.headers as Record<string, string> | undefined),
      Accept: "application/json",
      "User-Agent": "provisioning",
      ...(body === undefined ? {} : {
        "Content-Type": o.contentType ?? "application/json",
        "Content-Length": String(Buffer.byteLength(body)),
      }),
    };
    const send = url.protocol === "http:" ? httpRequest : httpsRequest;
    const timeoutMs = o.timeoutMs ?? 10_000;
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      let settled = false;
      const fail = (e: KubeError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        o.signal?.removeEventListener("abort", onAbort);
        req.destroy();
        reject(e);
      };
      const req = send(url, { ...base, method, headers }, (r) => {
        settled = true;
        clearTimeout(timer);
        o.signal?.removeEventListener("abort", onAbort);
        resolve(r);
      });
      const timer = setTimeout(
        () =>
          fail(new KubeError(`${this.where()}: no answer within ${timeoutMs / 1000}s`, "timeout")),
        timeoutMs,
      );
      const onAbort = () => fail(new KubeError(`${method} ${url.pathname}: cancelled`, "network"));
      if (o.signal?.aborted) return onAbort();
      o.signal?.addEventListener("abort", onAbort, { once: true });
      req.on("error", (e) => fail(this.networkError(e)));
      req.end(body);
    });
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return res;
    const text = await readAll(res, o.signal).catch(() => "");
    throw this.httpError(status, text);
  }

  /** The lines of a streaming answer (a watch, a log `follow`) until it ends or `o.signal` aborts. */
  async *lines(path: string, o: Req = {}): AsyncGenerator<string> {
    const res = await this.open("GET", path, o);
    const onAbort = () => res.destroy();
    o.signal?.addEventListener("abort", onAbort, { once: true });
    let partial = "";
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res as AsyncIterable<Uint8Array>) {
        const parts = (partial + decoder.decode(chunk, { stream: true })).split("\n");
        partial = parts.pop() ?? "";
        yield* parts;
      }
      if (partial) yield partial;
    } catch (error) {
      if (!o.signal?.aborted) throw this.networkError(error as Error);
    } finally {
      o.signal?.removeEventListener("abort", onAbort);
      res.destroy();
    }
  }

  /** `the Kubernetes API at https://… (context "x")`. */
  where(): string {
    return `the Kubernetes API at ${this.server} (context "${this.context}")`;
  }

  /** Request options with the credentials applied; renewed every 30 s (exec tokens expire). */
  private async base(): Promise<RequestOptions> {
    if (this.#base && Date.now() - this.#base.at < 30_000) return this.#base.opts;
    const opts: RequestOptions = {};
    await this.config.kc.applyToHTTPSOptions(opts);
    const auth = (opts.headers as Record<string, string> | undefined)?.Authorization;
    const token = auth?.replace(/^\S+\s+/, "");
    if (token && token.length >= 4 && !this.config.secrets.includes(token)) {
      this.config.secrets.push(token);
    }
    // One keep-alive agent per cluster (the client makes a new one per call, so every request
    // would pay a TLS handshake); a proxy's agent is kept as the client made it.
    if (!this.config.cluster.proxyUrl) opts.agent = this.#agent ??= keepAlive(opts, this.server);
    this.#base = { at: Date.now(), opts };
    return opts;
  }

  private networkError(e: Error & { code?: string }): KubeError {
    return networkError(e, { where: this.where(), redact: (t) => this.redact(t) });
  }

  private httpError(status: number, text: string): KubeError {
    const user = this.config.user.name;
    return httpError(status, text, { where: this.where(), user, redact: (t) => this.redact(t) });
  }
}

async function readAll(res: IncomingMessage, signal?: AbortSignal): Promise<string> {
  const chunks: Buffer[] = [];
  const onAbort = () => res.destroy();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const c of res) chunks.push(c as Buffer);
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** A keep-alive agent with the TLS settings the client put in `opts` (idle sockets are unref'd). */
function keepAlive(opts: RequestOptions, server: string): HttpAgent {
  if (server.startsWith("http:")) return new HttpAgent({ keepAlive: true, maxSockets: 16 });
  const tls: AgentOptions = { keepAlive: true, maxSockets: 16 };
  for (
    const k of [
      "ca",
      "cert",
      "key",
      "pfx",
      "passphrase",
      "rejectUnauthorized",
      "servername",
    ] as const
  ) {
    const v = (opts as Record<string, unknown>)[k];
    if (v !== undefined) (tls as Record<string, unknown>)[k] = v;
  }
  return new HttpsAgent(tls);
}

/** Recently made clients, so a start's status check right after it reuses its connections. */
const recent = new Map<string, { kube: Kube; at: number }>();

/**
 * A {@linkcode Kube} for a service: its kubeconfig found and loaded with `context` (a client
 * made in the last 30 s for the same files, unchanged since, and context is reused). Throws `KubeconfigError` (a
 * missing or broken kubeconfig, an unknown context) before importing the client when nothing is
 * found.
 */
export async function connect(input: LookupInput & { context?: string }): Promise<Kube> {
  const source = findKubeconfig(input);
  const stamps = source.kind === "files"
    ? source.files.map((f) => statSync(f, { throwIfNoEntry: false })?.mtimeMs ?? 0)
    : [];
  const key = JSON.stringify([source, stamps, input.context ?? null]);
  const hit = recent.get(key);
  if (hit && Date.now() - hit.at < 30_000) return hit.kube;
  const client = await loadClient(input.env);
  const kube = new Kube(loadKubeconfig(client, { source, context: input.context }));
  recent.set(key, { kube, at: Date.now() });
  return kube;
}
