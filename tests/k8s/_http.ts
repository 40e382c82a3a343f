/**
 * HTTP plumbing of the API double: `Status` error objects, JSON replies (`Content-Type:
 * application/json` everywhere but logs), body reading, the API discovery documents kubectl
 * needs (`/api`, `/apis`, `/api/v1`, `/apis/apps/v1` with subresources and verbs), and parsing of
 * resource paths (`/apis/apps/v1/namespaces/NS/deployments/NAME/scale`).
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import type { Obj } from "./_schema.ts";
import type { Resource } from "./_store.ts";

/** An error answered as a `Status` object. */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Obj,
  ) {
    super(message);
  }
}

export function statusObject(code: number, reason: string, message: string, details?: Obj): Obj {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

export function sendJson(
  res: ServerResponse,
  code: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(code, {
    "Content-Type": "application/json",
    "Content-Length": String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

export function sendError(res: ServerResponse, e: ApiError): void {
  sendJson(res, e.code, statusObject(e.code, e.reason, e.message, e.details));
}

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

const verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
const res = (
  name: string,
  kind: string,
  namespaced: boolean,
  v: string[],
  extra: Obj = {},
): Obj => ({
  name,
  singularName: name.includes("/") ? "" : kind.toLowerCase(),
  namespaced,
  kind,
  verbs: v,
  ...extra,
});

export const DISCOVERY: Record<string, Obj> = {
  "/api": {
    kind: "APIVersions",
    versions: ["v1"],
    serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: "127.0.0.1:6443" }],
  },
  "/apis": {
    kind: "APIGroupList",
    apiVersion: "v1",
    groups: [{
      name: "apps",
      versions: [{ groupVersion: "apps/v1", version: "v1" }],
      preferredVersion: { groupVersion: "apps/v1", version: "v1" },
    }],
  },
  "/api/v1": {
    kind: "APIResourceList",
    groupVersion: "v1",
    resources: [
      res("namespaces", "Namespace", false, [
        "create",
        "delete",
        "get",
        "list",
        "patch",
        "update",
        "watch",
      ], { shortNames: ["ns"] }),
      res("namespaces/status", "Namespace", false, ["get", "patch", "update"]),
      res("pods", "Pod", true, verbs, { shortNames: ["po"], categories: ["all"] }),
      res("pods/log", "Pod", true, ["get"]),
      res("pods/status", "Pod", true, ["get", "patch", "update"]),
    ],
  },
  "/apis/apps/v1": {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: "apps/v1",
    resources: [
      res("deployments", "Deployment", true, verbs, {
        shortNames: ["deploy"],
        categories: ["all"],
      }),
      res("deployments/scale", "Scale", true, ["get", "patch", "update"], {
        group: "autoscaling",
        version: "v1",
      }),
      res("deployments/status", "Deployment", true, ["get", "patch", "update"]),
      res("replicasets", "ReplicaSet", true, verbs, { shortNames: ["rs"], categories: ["all"] }),
      res("replicasets/scale", "Scale", true, ["get", "patch", "update"], {
        group: "autoscaling",
        version: "v1",
      }),
      res("replicasets/status", "ReplicaSet", true, ["get", "patch", "update"]),
    ],
  },
};

/** A parsed resource path. */
export type Route = { resource: Resource; namespace?: string; name?: string; subresource?: string };

const GROUPS: Record<string, Resource[]> = {
  "/api/v1": ["namespaces", "pods"],
  "/apis/apps/v1": ["deployments", "replicasets"],
};

/** The resource a path names, or undefined when it names none the double serves. */
export function parseRoute(path: string): Route | undefined {
  const prefix = Object.keys(GROUPS).find((p) => path.startsWith(p + "/"));
  if (!prefix) return undefined;
  const segs = path.slice(prefix.length + 1).split("/").map(decodeURIComponent);
  const served = GROUPS[prefix];
  let route: Route | undefined;
  if (
    segs[0] === "namespaces" && segs.length <= 3 && (segs.length < 3 || segs[2] === "status") &&
    served.includes("namespaces")
  ) {
    route = { resource: "namespaces", name: segs[1], subresource: segs[2] };
  } else if (segs[0] === "namespaces" && segs.length >= 3) {
    route = {
      resource: segs[2] as Resource,
      namespace: segs[1],
      name: segs[3],
      subresource: segs[4],
    };
    if (segs.length > 5) return undefined;
  } else if (segs.length === 1) route = { resource: segs[0] as Resource };
  if (
    !route || !served.includes(route.resource) || route.resource === "namespaces" && route.namespace
  ) return undefined;
  if (route.name === "") return undefined;
  return route;
}

/** `deployments.apps "web"` / `pods "web-x"`, as API messages name objects. */
export function qualified(resource: Resource, name: string): string {
  return `${resource}${
    resource === "deployments" || resource === "replicasets" ? ".apps" : ""
  } "${name}"`;
}
