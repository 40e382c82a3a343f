/**
 * A Kubernetes API test double (not a real API server) for testing deployment drivers against.
 *
 * No Kubernetes API server can run on the test machines (nothing in apt or npm, no image registry
 * for k3s/kind), yet a kubernetes driver has to be tested against the API it talks to: the real
 * `kubectl` and `@kubernetes/client-node`. This double serves the part of the API such a driver
 * uses, with wire formats checked against the real kubectl (see `kubectl_test.ts`): discovery,
 * namespaces, deployments (server-side apply, patches, `/scale`, `/status`, watch), replicasets
 * and pods made by a simulated controller, pod logs (with `follow`), Table output for `kubectl
 * get`, `Status` errors, bearer-token auth, and plain HTTP or HTTPS with a test CA. Per-test
 * behaviours make pods crash-loop, fail to pull, stay unschedulable, exceed the progress
 * deadline, and so on; the API can also "go away" (refuse connections) and come back.
 *
 * ```ts
 * await using api = await startApiDouble({ tls: true, token: "t0ken" });
 * api.setBehaviour({ deployment: "web" }, { failure: "CrashLoopBackOff" });
 * await api.writeKubeconfig(`${dir}/kubeconfig`, { namespace: "demo" });
 * // run kubectl --kubeconfig ..., or talk to api.url with api.request(...)
 * ```
 *
 * Simplifications: lists are atomic in server-side apply (no merge by key), no admission, no
 * pagination (`limit` is ignored), one node, `minReadySeconds` is not simulated, delete ignores
 * `propagationPolicy` (dependents are always collected in the background), JSON only (protobuf
 * bodies get 415). It listens on 127.0.0.1 only.
 */

import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Socket } from "node:net";
import { writeFile } from "node:fs/promises";
import { ResourceApi, unsupported } from "./_api.ts";
import { type Behaviour, Behaviours, type Match } from "./_behaviour.ts";
import { type LineStream, type Reply, request, type RequestOptions, stream } from "./_client.ts";
import { Controller } from "./_controller.ts";
import { ApiError, DISCOVERY, parseRoute, readBody, sendError, sendJson } from "./_http.ts";
import { timestamp } from "./_patch.ts";
import type { Obj } from "./_schema.ts";
import { type Resource, Store, type WatchEvent } from "./_store.ts";
import { makeTestCerts, type TestCerts } from "./_tls.ts";

export type { Behaviour, Failure, Match } from "./_behaviour.ts";
export type { LineStream, Reply, RequestOptions } from "./_client.ts";
export type { Resource, WatchEvent } from "./_store.ts";
export type { Obj } from "./_schema.ts";
export { makeTestCerts, type TestCerts } from "./_tls.ts";

export interface ApiDoubleOptions {
  /** HTTPS with test certificates: `true` makes (and on close removes) them; or pass your own. */
  tls?: boolean | TestCerts;
  /** When set, every request needs `Authorization: Bearer <token>` (else 401). */
  token?: string;
  /** `gitVersion` served at /version (default v1.30.4). */
  version?: string;
  /** Behaviour rules to start with (see {@linkcode ApiDouble.setBehaviour}). */
  behaviours?: [Match, Behaviour][];
  /** Namespaces that exist at start (default: default, kube-system, kube-public). */
  namespaces?: string[];
  /** Controller loop period in ms (default 10). */
  tickMs?: number;
}

/** One request the double received. */
export type RequestRecord = {
  method: string;
  path: string;
  query: string;
  contentType?: string;
  accept?: string;
  userAgent?: string;
  body: string;
  status: number;
};

export interface KubeconfigOptions {
  namespace?: string;
  /**
   * Token written into the user; defaults to the double's token (over HTTPS without one, a dummy
   * token: kubectl prompts for a username over HTTPS when the user has no credentials). `null`
   * writes none. kubectl does not send a token over plain HTTP.
   */
  token?: string | null;
  context?: string;
}

/** A running API double. */
export interface ApiDouble extends AsyncDisposable {
  /** `http(s)://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  /** The CA file and PEM to trust (HTTPS only). */
  readonly caFile?: string;
  readonly ca?: string;
  readonly token?: string;
  /** Every request received, in order. */
  readonly requests: RequestRecord[];
  /** A kubeconfig (YAML) for this double. */
  kubeconfigYaml(o?: KubeconfigOptions): string;
  /** Writes {@linkcode kubeconfigYaml} to `path`; returns `path`. */
  writeKubeconfig(path: string, o?: KubeconfigOptions): Promise<string>;
  /** Adds a behaviour rule; later rules win; running pods follow changes at their next step. */
  setBehaviour(match: Match, behaviour: Behaviour): void;
  clearBehaviours(): void;
  /** While on, resource requests get 403 Forbidden (discovery still works). */
  forbid(on?: boolean): void;
  /** While paused nothing progresses: no ReplicaSets, pods, or status updates. */
  pauseController(on?: boolean): void;
  /** Closes the listener and cuts every connection: clients get ECONNREFUSED until comeBack. */
  goAway(): Promise<void>;
  /** Listens again on the same port. */
  comeBack(): Promise<void>;
  get(resource: Resource, namespace: string | undefined, name: string): Obj | undefined;
  deployment(namespace: string, name: string): Obj | undefined;
  deployments(namespace?: string): Obj[];
  replicaSets(namespace?: string): Obj[];
  pods(namespace?: string, labelSelector?: string): Obj[];
  namespaces(): Obj[];
  /** Every watch event so far (optionally of one resource). */
  events(resource?: Resource): WatchEvent[];
  /** Makes a container of a running pod write a log line (first container by default). */
  writeLog(namespace: string, pod: string, line: string, container?: string): void;
  /** A request to the double (CA and token filled in). */
  request(path: string, o?: RequestOptions): Promise<Reply>;
  /** A streaming request (watch, follow) read line by line. */
  stream(path: string, o?: RequestOptions): Promise<LineStream>;
  close(): Promise<void>;
}

/** Starts an API double on 127.0.0.1 (a free port). */
export async function startApiDouble(opts: ApiDoubleOptions = {}): Promise<ApiDouble> {
  const certs = opts.tls === true ? await makeTestCerts() : opts.tls || undefined;
  const store = new Store();
  const behaviours = new Behaviours();
  for (const [m, b] of opts.behaviours ?? []) behaviours.set(m, b);
  const controller = new Controller(store, behaviours);
  const api = new ResourceApi(store, controller);
  const requests: RequestRecord[] = [];
  let forbidden = false;
  for (const name of opts.namespaces ?? ["default", "kube-system", "kube-public"]) {
    store.put("namespaces", {
      metadata: {
        name,
        uid: crypto.randomUUID(),
        creationTimestamp: timestamp(),
        labels: { "kubernetes.io/metadata.name": name },
      },
      spec: { finalizers: ["kubernetes"] },
      status: { phase: "Active" },
    });
  }
  const version = opts.version ?? "v1.30.4";
  const [, major, minor] = /^v(\d+)\.(\d+)/.exec(version) ?? ["", "1", "30"];

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://double");
    const record: RequestRecord = {
      method: req.method ?? "GET",
      path: url.pathname,
      query: url.search,
      contentType: req.headers["content-type"],
      accept: req.headers.accept,
      userAgent: req.headers["user-agent"],
      body: "",
      status: 0,
    };
    requests.push(record);
    res.on("finish", () => (record.status = res.statusCode));
    try {
      record.body = await readBody(req);
      if (opts.token && req.headers.authorization !== `Bearer ${opts.token}`) {
        throw new ApiError(401, "Unauthorized", "Unauthorized");
      }
      const contentType = String(req.headers["content-type"] ?? "");
      if (record.body && /protobuf|cbor/.test(contentType)) throw unsupported(contentType);
      const path = url.pathname.replace(/\/+$/, "") || "/";
      if (path === "/version") {
        return sendJson(res, 200, {
          major,
          minor,
          gitVersion: version,
          gitCommit: "double",
          gitTreeState: "clean",
          buildDate: "2024-01-01T00:00:00Z",
          goVersion: "go1.22.0",
          compiler: "gc",
          platform: "linux/amd64",
        });
      }
      if (DISCOVERY[path]) return sendJson(res, 200, DISCOVERY[path]);
      if (["/healthz", "/readyz", "/livez"].includes(path)) {
        res.writeHead(200, { "Content-Type": "text/plain" });
        return void res.end("ok");
      }
      const route = parseRoute(path);
      if (!route) {
        throw new ApiError(404, "NotFound", "the server could not find the requested resource");
      }
      if (forbidden) {
        const verb = req.method === "GET"
          ? (route.name ? "get" : url.searchParams.get("watch") ? "watch" : "list")
          : String(req.method).toLowerCase();
        const group = route.resource === "deployments" || route.resource === "replicasets"
          ? "apps"
          : "";
        throw new ApiError(
          403,
          "Forbidden",
          `${route.resource}${group ? "." + group : ""}${
            route.name ? ` "${route.name}"` : ""
          } is forbidden: User "system:serviceaccount:default:driver" cannot ${verb} resource "${route.resource}" in API group "${group}"${
            route.namespace ? ` in the namespace "${route.namespace}"` : ""
          }`,
          { name: route.name, group, kind: route.resource },
        );
      }
      await api.handle(req, res, route, url.searchParams, record.body);
    } catch (e) {
      if (res.headersSent) return void res.end();
      sendError(
        res,
        e instanceof ApiError ? e : new ApiError(
          500,
          "InternalError",
          `Internal error occurred: ${(e as Error).stack ?? e}`,
        ),
      );
    }
  };

  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const onRequest = (req: IncomingMessage, res: ServerResponse) => void handle(req, res);
      const s: Server = certs
        ? createHttpsServer({ key: certs.key, cert: certs.cert }, onRequest)
        : createHttpServer(onRequest);
      s.keepAliveTimeout = 5000;
      s.on("connection", (sock: Socket) => {
        sockets.add(sock);
        sock.on("close", () => sockets.delete(sock));
      });
      s.once("error", reject);
      s.listen(port, "127.0.0.1", () => {
        server = s;
        resolve((s.address() as { port: number }).port);
      });
    });
  const shutdown = async () => {
    const s = server;
    server = undefined;
    if (!s) return;
    for (const r of api.streams) r.destroy();
    const closed = new Promise<void>((r) => s.close(() => r()));
    for (const sock of sockets) sock.destroy();
    await closed;
  };

  const port = await listen(0);
  controller.start(opts.tickMs ?? 10);
  const scheme = certs ? "https" : "http";
  const url = `${scheme}://127.0.0.1:${port}`;
  const target = { url, ca: certs?.ca, token: opts.token };
  let closed = false;

  const kubeconfigYaml = (o: KubeconfigOptions = {}) => {
    // Over HTTPS kubectl prompts for a username when the user has no credentials, so write a token.
    const token = o.token === null
      ? undefined
      : o.token ?? opts.token ?? (certs ? "no-auth-needed" : undefined);
    const ctx = o.context ?? "double";
    return [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      `- name: ${ctx}`,
      "  cluster:",
      `    server: ${url}`,
      ...(certs ? [`    certificate-authority: ${certs.caFile}`] : []),
      "users:",
      `- name: ${ctx}`,
      `  user:${token ? "" : " {}"}`,
      ...(token ? [`    token: ${JSON.stringify(token)}`] : []),
      "contexts:",
      `- name: ${ctx}`,
      "  context:",
      `    cluster: ${ctx}`,
      `    user: ${ctx}`,
      ...(o.namespace ? [`    namespace: ${o.namespace}`] : []),
      `current-context: ${ctx}`,
      "",
    ].join("\n");
  };

  const double: ApiDouble = {
    url,
    port,
    caFile: certs?.caFile,
    ca: certs?.ca,
    token: opts.token,
    requests,
    kubeconfigYaml,
    async writeKubeconfig(path, o) {
      await writeFile(path, kubeconfigYaml(o), { mode: 0o600 });
      return path;
    },
    setBehaviour: (m, b) => behaviours.set(m, b),
    clearBehaviours: () => behaviours.clear(),
    forbid: (on = true) => void (forbidden = on),
    pauseController: (on = true) => void (controller.paused = on),
    goAway: shutdown,
    async comeBack() {
      if (!server && !closed) await listen(port);
    },
    get: (r, ns, name) => store.get(r, ns, name),
    deployment: (ns, name) => store.get("deployments", ns, name),
    deployments: (ns) => store.list("deployments", ns),
    replicaSets: (ns) => store.list("replicasets", ns),
    pods: (ns, sel) => store.list("pods", ns, sel),
    namespaces: () => store.list("namespaces"),
    events: (r) => store.history.filter((e) => !r || e.resource === r),
    writeLog(ns, pod, line, container) {
      const sim = controller.pods.get(`${ns}/${pod}`);
      const c = sim?.containers.find((x) => container === undefined || x.name === container);
      if (!c?.current) {
        throw new Error(`no running container ${container ?? ""} in pod ${ns}/${pod}`);
      }
      c.write(line);
    },
    request: (path, o) => request(target, path, o),
    stream: (path, o) => stream(target, path, o),
    async close() {
      if (closed) return;
      closed = true;
      controller.stop();
      await shutdown();
      if (opts.tls === true) await certs?.remove();
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
  return double;
}
