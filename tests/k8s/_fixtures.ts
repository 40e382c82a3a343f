/** Manifests and request shortcuts shared by the API double's own tests. */

import type { ApiDouble, Reply } from "./api_double.ts";

// deno-lint-ignore no-explicit-any
export type Any = any;

/** A Deployment manifest (apps/v1) with one container. */
export function deployment(
  name: string,
  o: { namespace?: string; image?: string; replicas?: number; extraSpec?: object } = {},
): Any {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace: o.namespace ?? "default", labels: { app: name } },
    spec: {
      replicas: o.replicas ?? 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: "main", image: o.image ?? "busybox:1.36" }] },
      },
      ...o.extraSpec,
    },
  };
}

/** Server-side apply of `obj` (query defaults: fieldManager=test). */
export function apply(
  api: ApiDouble,
  obj: Any,
  query = "fieldManager=test",
  o: { token?: string | null } = {},
): Promise<Reply> {
  const ns = obj.metadata.namespace ?? "default";
  const path = obj.kind === "Namespace"
    ? `/api/v1/namespaces/${obj.metadata.name}`
    : `/apis/apps/v1/namespaces/${ns}/deployments/${obj.metadata.name}`;
  return api.request(`${path}?${query}`, {
    method: "PATCH",
    body: obj,
    contentType: "application/apply-patch+yaml",
    ...o,
  });
}

/** The path of deployment `name` in `ns`. */
export const deployPath = (name: string, ns = "default") =>
  `/apis/apps/v1/namespaces/${ns}/deployments/${name}`;

/** The deployment's condition of `type`. */
export function condition(d: Any, type: string): Any {
  return (d?.status?.conditions ?? []).find((c: Any) => c.type === type);
}

/** The first container status of the first pod of `app`. */
export function firstContainer(api: ApiDouble, app: string, ns = "default"): Any {
  return (api.pods(ns, `app=${app}`)[0] as Any)?.status?.containerStatuses?.[0];
}
