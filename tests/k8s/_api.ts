/**
 * Resource requests of the API double: routing of get/list/watch/create/update/patch/apply/
 * delete for namespaces, deployments (with `/scale` and `/status`), replicasets and pods (with
 * `/log`) to the writers (`_write.ts`) and streams (`_streams.ts`); deletion (pods terminate
 * gracefully, namespaces go through Terminating); Table output for lists and gets.
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import type { Controller } from "./_controller.ts";
import { ApiError, qualified, type Route, sendJson } from "./_http.ts";
import { timestamp } from "./_patch.ts";
import type { Obj } from "./_schema.ts";
import { KINDS, metaOf, type Resource, type Store } from "./_store.ts";
import { serveLogs, serveWatch } from "./_streams.ts";
import { table, wantsTable } from "./_table.ts";
import {
  invalid,
  notFound,
  parseBody,
  patchWith,
  scaleOf,
  type WriteCtx,
  Writer,
} from "./_write.ts";

export { unsupported } from "./_write.ts";

export class ResourceApi {
  /** Open streaming responses (watches, log follows), ended when the double closes. */
  readonly streams = new Set<ServerResponse>();

  private readonly writer: Writer;

  constructor(private readonly store: Store, private readonly controller: Controller) {
    this.writer = new Writer(store);
  }

  handle(
    req: IncomingMessage,
    res: ServerResponse,
    route: Route,
    q: URLSearchParams,
    body: string,
  ): void {
    const { resource, namespace: ns, name, subresource: sub } = route;
    const method = req.method ?? "GET";
    const ctx: WriteCtx = {
      manager: q.get("fieldManager") ??
        String(req.headers["user-agent"] ?? "unknown").split("/")[0],
      dryRun: this.dryRun(q),
      validation: q.get("fieldValidation") ?? "Warn",
      warnings: [],
    };
    if (ns !== undefined && method !== "GET" && method !== "DELETE") {
      this.namespaceWritable(ns, method === "POST" || method === "PATCH");
    }
    const reply = (code: number, obj: unknown) => {
      const headers: Record<string, string> = ctx.warnings.length
        ? { Warning: ctx.warnings.map((w) => `299 - ${JSON.stringify(w)}`).join(", ") }
        : {};
      sendJson(res, code, obj, headers);
    };
    if (sub === "log" && resource === "pods" && method === "GET") {
      return serveLogs(this.store, this.controller, this.streams, res, ns!, name!, q);
    }
    if (sub && !(sub === "scale" && resource === "deployments") && !(sub === "status")) {
      throw new ApiError(404, "NotFound", "the server could not find the requested resource");
    }
    if (method === "GET" && !name) {
      if (q.get("watch") === "true" || q.get("watch") === "1") {
        return serveWatch(this.store, this.streams, req, res, resource, ns, q);
      }
      const items = this.store.list(
        resource,
        ns,
        q.get("labelSelector") ?? undefined,
        q.get("fieldSelector") ?? undefined,
      );
      const rv = String(this.store.rv);
      if (wantsTable(String(req.headers.accept))) {
        return reply(200, table(resource, items, rv, q.get("includeObject") ?? undefined));
      }
      const { kind, apiVersion } = KINDS[resource];
      return reply(200, {
        kind: `${kind}List`,
        apiVersion,
        metadata: { resourceVersion: rv },
        items: items.map(({ kind: _k, apiVersion: _a, ...o }) => o),
      });
    }
    if (method === "POST" && !name) {
      return this.writer.create(
        resource,
        ns,
        body,
        String(req.headers["content-type"]),
        ctx,
        reply,
      );
    }
    if (!name) {
      throw new ApiError(
        405,
        "MethodNotAllowed",
        `the server does not allow this method on the requested resource`,
      );
    }
    const existing = this.store.get(resource, ns, name);
    if (method === "GET") {
      if (!existing) throw notFound(resource, name);
      if (sub === "scale") return reply(200, scaleOf(existing));
      if (wantsTable(String(req.headers.accept))) {
        return reply(
          200,
          table(
            resource,
            [existing],
            String(metaOf(existing).resourceVersion),
            q.get("includeObject") ?? undefined,
          ),
        );
      }
      return reply(200, existing);
    }
    if (method === "DELETE") {
      return reply(200, this.remove(resource, ns, name, existing, q, body, ctx));
    }
    if (resource !== "deployments" && resource !== "namespaces") {
      throw new ApiError(
        405,
        "MethodNotAllowed",
        `the double does not support ${method} on ${resource}`,
      );
    }
    const contentType = String(req.headers["content-type"] ?? "").split(";")[0].trim();
    if (method === "PATCH" && contentType === "application/apply-patch+yaml") {
      const config = parseBody(body, true);
      if (!q.get("fieldManager")) {
        throw new ApiError(
          400,
          "BadRequest",
          "PATCH requests with apply content type must specify fieldManager",
        );
      }
      const force = q.get("force") === "true";
      const result = this.writer.apply(resource, ns, name, existing, config, force, ctx);
      return reply(existing ? 200 : 201, result);
    }
    if (!existing) throw notFound(resource, name);
    let candidate: Obj;
    const base = sub === "scale" ? scaleOf(existing) : existing;
    if (method === "PUT") candidate = parseBody(body, false);
    else if (method === "PATCH") {
      candidate = patchWith(contentType, base, parseBody(body, false, true));
    } else throw new ApiError(405, "MethodNotAllowed", `method ${method} is not allowed`);
    if (method === "PUT" && !metaOf(candidate).resourceVersion) {
      throw invalid(resource, name, [{
        reason: "FieldValueInvalid",
        field: "metadata.resourceVersion",
        message: "Invalid value: 0x0: must be specified for an update",
      }]);
    }
    if (sub === "scale") {
      const replicas = (candidate.spec as Obj | undefined)?.replicas;
      candidate = {
        ...existing,
        metadata: { ...metaOf(existing), resourceVersion: metaOf(candidate).resourceVersion },
        spec: { ...(existing.spec as Obj), replicas },
      };
      return reply(
        200,
        scaleOf(this.writer.write(resource, ns, name, existing, candidate, ctx, "Update")),
      );
    }
    if (sub === "status") {
      const next = {
        ...existing,
        status: candidate.status,
        metadata: {
          ...metaOf(existing),
          resourceVersion: metaOf(candidate).resourceVersion ?? metaOf(existing).resourceVersion,
        },
      };
      this.writer.checkVersion(resource, name, existing, next);
      return reply(200, ctx.dryRun ? next : this.store.put(resource, next));
    }
    return reply(200, this.writer.write(resource, ns, name, existing, candidate, ctx, "Update"));
  }

  private dryRun(q: URLSearchParams): boolean {
    const v = q.getAll("dryRun");
    if (v.some((x) => x !== "All")) {
      throw new ApiError(400, "BadRequest", `Invalid dry run value: ${v.join(",")}`);
    }
    return v.length > 0;
  }

  private namespaceWritable(ns: string, creating: boolean): void {
    const n = this.store.get("namespaces", undefined, ns);
    if (!n) {
      throw new ApiError(404, "NotFound", `namespaces "${ns}" not found`, {
        name: ns,
        kind: "namespaces",
      });
    }
    if (creating && (n.status as Obj | undefined)?.phase === "Terminating") {
      throw new ApiError(
        403,
        "Forbidden",
        `unable to create new content in namespace ${ns} because it is being terminated`,
        { name: ns, kind: "namespaces" },
      );
    }
  }

  private remove(
    resource: Resource,
    ns: string | undefined,
    name: string,
    existing: Obj | undefined,
    q: URLSearchParams,
    body: string,
    ctx: WriteCtx,
  ): Obj {
    if (!existing) throw notFound(resource, name);
    const opts = body.trim() ? parseBody(body, false) : {};
    const pre = (opts.preconditions ?? {}) as Obj;
    const meta = metaOf(existing);
    if (
      (pre.uid && pre.uid !== meta.uid) ||
      (pre.resourceVersion && pre.resourceVersion !== meta.resourceVersion)
    ) {
      throw new ApiError(
        409,
        "Conflict",
        `Operation cannot be fulfilled on ${
          qualified(resource, name)
        }: Precondition failed: UID in precondition: ${
          pre.uid ?? ""
        }, UID in object meta: ${meta.uid}`,
      );
    }
    const success = {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Success",
      details: { name, group: KINDS[resource].group, kind: resource, uid: meta.uid },
    };
    if (ctx.dryRun) return resource === "pods" || resource === "namespaces" ? existing : success;
    if (resource === "pods") {
      const grace = q.get("gracePeriodSeconds") ??
        (opts.gracePeriodSeconds !== undefined ? String(opts.gracePeriodSeconds) : undefined);
      const seconds = grace === undefined
        ? Number(((existing.spec ?? {}) as Obj).terminationGracePeriodSeconds ?? 30)
        : Number(grace);
      return this.controller.terminate(existing, seconds === 0 ? 0 : undefined, seconds) ??
        existing;
    }
    if (resource === "namespaces") {
      if (["default", "kube-system", "kube-public"].includes(name)) {
        throw new ApiError(
          403,
          "Forbidden",
          `namespaces "${name}" is forbidden: this namespace may not be deleted`,
          { name, kind: "namespaces" },
        );
      }
      return this.store.put("namespaces", {
        ...existing,
        metadata: { ...meta, deletionTimestamp: meta.deletionTimestamp ?? timestamp() },
        status: { phase: "Terminating" },
      });
    }
    this.store.remove(resource, ns, name);
    return success;
  }
}
