/**
 * The streaming answers of the API double: watches (newline-delimited watch events, headers
 * flushed at once, replay from a resourceVersion, `sendInitialEvents` with the initial-events-end
 * bookmark, `timeoutSeconds`, Table objects when asked) and pod logs (`tailLines`, `timestamps`,
 * `previous`, `container`, `sinceSeconds`, `limitBytes`, and `follow` until the run ends, the pod
 * goes or the client leaves).
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import type { Controller } from "./_controller.ts";
import { ApiError } from "./_http.ts";
import { formatLine, formatLines, type LogOptions } from "./_pods.ts";
import type { Obj } from "./_schema.ts";
import {
  KINDS,
  metaOf,
  parseFieldSelector,
  parseLabelSelector,
  type Resource,
  type Store,
  type WatchEvent,
} from "./_store.ts";
import { table, wantsTable } from "./_table.ts";
import { notFound } from "./_write.ts";

export function serveWatch(
  store: Store,
  open: Set<ServerResponse>,
  req: IncomingMessage,
  res: ServerResponse,
  resource: Resource,
  ns: string | undefined,
  q: URLSearchParams,
): void {
  const labels = parseLabelSelector(q.get("labelSelector") ?? undefined);
  const fields = parseFieldSelector(q.get("fieldSelector") ?? undefined);
  const asTable = wantsTable(String(req.headers.accept));
  const matches = (e: WatchEvent) =>
    e.resource === resource && (ns === undefined || metaOf(e.object).namespace === ns) &&
    labels(e.object) && fields(e.object);
  res.writeHead(200, {
    "Content-Type": "application/json",
    "Transfer-Encoding": "chunked",
    "Cache-Control": "no-cache, private",
  });
  res.flushHeaders();
  open.add(res);
  const send = (type: string, object: Obj) => {
    const o = asTable && type !== "BOOKMARK"
      ? table(
        resource,
        [object],
        String(metaOf(object).resourceVersion),
        q.get("includeObject") ?? undefined,
      )
      : object;
    res.write(JSON.stringify({ type, object: o }) + "\n");
  };
  const from = q.get("resourceVersion");
  if (q.get("sendInitialEvents") === "true" || !from || from === "0") {
    for (const o of store.list(resource, ns)) if (labels(o) && fields(o)) send("ADDED", o);
    if (q.get("sendInitialEvents") === "true") {
      const { kind, apiVersion } = KINDS[resource];
      send("BOOKMARK", {
        kind,
        apiVersion,
        metadata: {
          resourceVersion: String(store.rv),
          annotations: { "k8s.io/initial-events-end": "true" },
        },
      });
    }
  } else {
    for (const e of store.history) {
      if (e.resourceVersion > Number(from) && matches(e)) send(e.type, e.object);
    }
  }
  const unsubscribe = store.subscribe((e) => matches(e) && send(e.type, e.object));
  const seconds = Number(q.get("timeoutSeconds") ?? 0);
  const timer = seconds > 0 ? setTimeout(() => res.end(), seconds * 1000) : undefined;
  res.on("close", () => {
    unsubscribe();
    clearTimeout(timer);
    open.delete(res);
  });
}

export function serveLogs(
  store: Store,
  controller: Controller,
  open: Set<ServerResponse>,
  res: ServerResponse,
  ns: string,
  name: string,
  q: URLSearchParams,
): void {
  const pod = store.get("pods", ns, name);
  const sim = controller.pods.get(`${ns}/${name}`);
  if (!pod || !sim) throw notFound("pods", name);
  const names = sim.containers.map((c) => c.name);
  const wanted = q.get("container") ?? (names.length === 1 ? names[0] : undefined);
  if (!wanted) {
    throw new ApiError(
      400,
      "BadRequest",
      `a container name must be specified for pod ${name}, choose one of: [${names.join(" ")}]`,
    );
  }
  const c = sim.containers.find((x) => x.name === wanted);
  if (!c) {
    throw new ApiError(400, "BadRequest", `container ${wanted} is not valid for pod ${name}`);
  }
  const num = (k: string) => (q.get(k) === null ? undefined : Number(q.get(k)));
  const o: LogOptions = {
    previous: q.get("previous") === "true",
    timestamps: q.get("timestamps") === "true",
    tailLines: num("tailLines"),
    sinceSeconds: num("sinceSeconds"),
    limitBytes: num("limitBytes"),
  };
  const run = o.previous ? c.runs.at(-2) : c.runs.at(-1);
  if (!run) {
    if (o.previous) {
      throw new ApiError(
        400,
        "BadRequest",
        `previous terminated container "${wanted}" in pod "${name}" not found`,
      );
    }
    const waiting =
      ((c.status(controller.behaviourOf(ns, sim.deployment), name).state as Obj).waiting ??
        {}) as Obj;
    const why: Record<string, string> = {
      ImagePullBackOff: "trying and failing to pull image",
      ErrImagePull: "image can't be pulled",
    };
    throw new ApiError(
      400,
      "BadRequest",
      `container "${wanted}" in pod "${name}" is waiting to start: ${
        why[String(waiting.reason)] ?? waiting.reason ?? "ContainerCreating"
      }`,
    );
  }
  res.writeHead(200, { "Content-Type": "text/plain", "Transfer-Encoding": "chunked" });
  res.write(formatLines(run.lines, o));
  if (q.get("follow") !== "true" || run.finishedAt !== undefined) return void res.end();
  res.flushHeaders();
  open.add(res);
  let sent = run.lines.length;
  const onChange = () => {
    for (; sent < run.lines.length; sent++) res.write(formatLine(run.lines[sent], o.timestamps));
    if (run.finishedAt !== undefined) res.end();
  };
  run.listeners.add(onChange);
  res.on("close", () => {
    run.listeners.delete(onChange);
    open.delete(res);
  });
}
