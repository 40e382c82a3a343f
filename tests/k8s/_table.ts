/**
 * `meta.k8s.io/v1` Table responses of the API double, the server-side printing that `kubectl get`
 * asks for (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`): column definitions and rows
 * for deployments, replicasets, pods and namespaces, each row carrying its object's metadata
 * (`PartialObjectMetadata`, or the whole object with `includeObject=Object`).
 */

import type { Obj } from "./_schema.ts";
import type { Resource } from "./_store.ts";

type Column = {
  name: string;
  type: string;
  format?: string;
  priority?: number;
  description?: string;
};

const col = (name: string, type = "string", priority = 0, format = ""): Column => ({
  name,
  type,
  format,
  description: name === "Name" ? "Name must be unique within a namespace." : `${name} column`,
  priority,
});

const COLUMNS: Record<Resource, Column[]> = {
  deployments: [
    col("Name", "string", 0, "name"),
    col("Ready"),
    col("Up-to-date", "integer"),
    col("Available", "integer"),
    col("Age"),
    col("Containers", "string", 1),
    col("Images", "string", 1),
    col("Selector", "string", 1),
  ],
  replicasets: [
    col("Name", "string", 0, "name"),
    col("Desired", "integer"),
    col("Current", "integer"),
    col("Ready", "integer"),
    col("Age"),
    col("Containers", "string", 1),
    col("Images", "string", 1),
    col("Selector", "string", 1),
  ],
  pods: [
    col("Name", "string", 0, "name"),
    col("Ready"),
    col("Status"),
    col("Restarts"),
    col("Age"),
    col("IP", "string", 1),
    col("Node", "string", 1),
    col("Nominated Node", "string", 1),
    col("Readiness Gates", "string", 1),
  ],
  namespaces: [col("Name", "string", 0, "name"), col("Status"), col("Age")],
};

/** `5s`, `3m20s`, `2h`, `4d` as kubectl prints ages. */
export function age(since: unknown, now = Date.now()): string {
  const s = Math.max(0, Math.floor((now - Date.parse(String(since))) / 1000));
  if (!Number.isFinite(s)) return "<unknown>";
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 ? `${m}m${s % 60}s` : `${m}m`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h}h` : `${Math.floor(h / 24)}d`;
}

const n = (v: unknown) => Number(v ?? 0);

function template(o: Obj): { containers: string; images: string; selector: string } {
  const spec = (o.spec ?? {}) as Obj;
  const cs = ((((spec.template ?? {}) as Obj).spec ?? {}) as Obj).containers as Obj[] ?? [];
  const labels = ((spec.selector ?? {}) as Obj).matchLabels as Record<string, string> ?? {};
  return {
    containers: cs.map((c) => c.name).join(","),
    images: cs.map((c) => c.image).join(","),
    selector: Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(","),
  };
}

/** The Status column of `kubectl get pods`. */
export function podStatus(pod: Obj): string {
  const meta = (pod.metadata ?? {}) as Obj;
  const st = (pod.status ?? {}) as Obj;
  if (meta.deletionTimestamp) return "Terminating";
  let reason = String(st.phase ?? "Pending");
  for (const cs of (st.containerStatuses ?? []) as Obj[]) {
    const state = (cs.state ?? {}) as Obj;
    const w = state.waiting as Obj | undefined, t = state.terminated as Obj | undefined;
    if (w?.reason) reason = String(w.reason);
    else if (t) reason = String(t.reason ?? `ExitCode:${t.exitCode}`);
  }
  return reason;
}

function cells(resource: Resource, o: Obj, now: number): unknown[] {
  const meta = (o.metadata ?? {}) as Obj,
    spec = (o.spec ?? {}) as Obj,
    st = (o.status ?? {}) as Obj;
  const ageOf = age(meta.creationTimestamp, now);
  switch (resource) {
    case "deployments": {
      const t = template(o);
      return [
        meta.name,
        `${n(st.readyReplicas)}/${n(spec.replicas)}`,
        n(st.updatedReplicas),
        n(st.availableReplicas),
        ageOf,
        t.containers,
        t.images,
        t.selector,
      ];
    }
    case "replicasets": {
      const t = template(o);
      return [
        meta.name,
        n(spec.replicas),
        n(st.replicas),
        n(st.readyReplicas),
        ageOf,
        t.containers,
        t.images,
        t.selector,
      ];
    }
    case "pods": {
      const cs = (st.containerStatuses ?? []) as Obj[];
      const total = ((spec.containers ?? []) as Obj[]).length;
      const restarts = cs.reduce((a, c) => a + n(c.restartCount), 0);
      return [
        meta.name,
        `${cs.filter((c) => c.ready).length}/${total}`,
        podStatus(o),
        String(restarts),
        ageOf,
        st.podIP ?? "<none>",
        spec.nodeName ?? "<none>",
        "<none>",
        "<none>",
      ];
    }
    case "namespaces":
      return [meta.name, st.phase ?? "Active", ageOf];
  }
}

/** A Table of `objects`; `includeObject` is the query parameter (`None`, `Metadata`, `Object`). */
export function table(
  resource: Resource,
  objects: Obj[],
  resourceVersion: string,
  includeObject = "Metadata",
): Obj {
  const now = Date.now();
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: { resourceVersion },
    columnDefinitions: COLUMNS[resource],
    rows: objects.map((o) => ({
      cells: cells(resource, o, now),
      ...(includeObject === "None" ? {} : {
        object: includeObject === "Object"
          ? o
          : { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata },
      }),
    })),
  };
}

/** Whether an Accept header asks for a Table. */
export function wantsTable(accept: string | undefined): boolean {
  return /as=Table/.test(accept ?? "") && /g=meta\.k8s\.io/.test(accept ?? "");
}
