/**
 * The object store of the API double: objects by resource/namespace/name, one global
 * resourceVersion counter, field ownership for server-side apply, a history of watch events
 * (kept whole, so a watch from any resourceVersion can be replayed), watch subscribers, and
 * label/field selectors as the API server parses them.
 */

import { clone, type Owners, same } from "./_patch.ts";
import type { Obj } from "./_schema.ts";

export type Resource = "namespaces" | "deployments" | "replicasets" | "pods";
export type EventType = "ADDED" | "MODIFIED" | "DELETED";
/** One change of an object, as a watch streams it. */
export type WatchEvent = {
  type: EventType;
  resource: Resource;
  object: Obj;
  resourceVersion: number;
};

export const KINDS: Record<Resource, { kind: string; apiVersion: string; group: string }> = {
  namespaces: { kind: "Namespace", apiVersion: "v1", group: "" },
  deployments: { kind: "Deployment", apiVersion: "apps/v1", group: "apps" },
  replicasets: { kind: "ReplicaSet", apiVersion: "apps/v1", group: "apps" },
  pods: { kind: "Pod", apiVersion: "v1", group: "" },
};

type Rec = { obj: Obj; owners: Owners };
type Listener = (e: WatchEvent) => void;

export const metaOf = (o: Obj): Obj => (o.metadata ??= {}) as Obj;

export class Store {
  rv = 1;
  readonly history: WatchEvent[] = [];
  private readonly recs = new Map<string, Rec>();
  private readonly listeners = new Set<Listener>();

  private key(resource: Resource, ns: string | undefined, name: string): string {
    return `${resource}/${ns ?? ""}/${name}`;
  }

  /** A copy of the stored object, or undefined. */
  get(resource: Resource, ns: string | undefined, name: string): Obj | undefined {
    const rec = this.recs.get(this.key(resource, ns, name));
    return rec ? clone(rec.obj) : undefined;
  }

  /** The live ownership map of an object (empty map for a new one). */
  owners(resource: Resource, ns: string | undefined, name: string): Owners {
    return this.recs.get(this.key(resource, ns, name))?.owners ?? new Map();
  }

  /** Copies of the objects of a resource, optionally in one namespace and matching selectors. */
  list(resource: Resource, ns?: string, labelSelector?: string, fieldSelector?: string): Obj[] {
    const labels = parseLabelSelector(labelSelector);
    const fields = parseFieldSelector(fieldSelector);
    const out: Obj[] = [];
    for (const [k, rec] of this.recs) {
      if (!k.startsWith(`${resource}/`)) continue;
      const meta = metaOf(rec.obj);
      if (ns !== undefined && meta.namespace !== ns) continue;
      if (!labels(rec.obj) || !fields(rec.obj)) continue;
      out.push(clone(rec.obj));
    }
    return out.sort((a, b) => String(metaOf(a).name).localeCompare(String(metaOf(b).name)));
  }

  /**
   * Stores `obj` (kind/apiVersion set, a new resourceVersion) unless it equals what is stored.
   * Returns the stored copy. `owners` replaces the ownership map when given.
   */
  put(resource: Resource, obj: Obj, owners?: Owners): Obj {
    const meta = metaOf(obj);
    const k = this.key(resource, meta.namespace as string | undefined, String(meta.name));
    const rec = this.recs.get(k);
    const { kind, apiVersion } = KINDS[resource];
    const next = { apiVersion, kind, ...obj };
    if (rec) {
      const stripped = {
        ...next,
        metadata: { ...metaOf(next), resourceVersion: metaOf(rec.obj).resourceVersion },
      };
      if (same(stripped, rec.obj)) {
        if (owners) rec.owners = owners;
        return clone(rec.obj);
      }
    }
    const rv = ++this.rv;
    metaOf(next).resourceVersion = String(rv);
    this.recs.set(k, { obj: clone(next), owners: owners ?? rec?.owners ?? new Map() });
    this.emit({
      type: rec ? "MODIFIED" : "ADDED",
      resource,
      object: clone(next),
      resourceVersion: rv,
    });
    return clone(next);
  }

  /** Removes an object; returns its last state (with the resourceVersion of the deletion). */
  remove(resource: Resource, ns: string | undefined, name: string): Obj | undefined {
    const k = this.key(resource, ns, name);
    const rec = this.recs.get(k);
    if (!rec) return undefined;
    this.recs.delete(k);
    const rv = ++this.rv;
    metaOf(rec.obj).resourceVersion = String(rv);
    this.emit({ type: "DELETED", resource, object: clone(rec.obj), resourceVersion: rv });
    return clone(rec.obj);
  }

  /** Calls `fn` with every later event; returns the unsubscribe function. */
  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(e: WatchEvent): void {
    this.history.push(e);
    for (const fn of [...this.listeners]) fn(e);
  }
}

type Pred = (o: Obj) => boolean;

/** `a=b,c!=d,e in (x,y),f notin (z),g,!h` as the API server accepts them. */
export function parseLabelSelector(sel?: string): Pred {
  if (!sel) return () => true;
  const parts = sel.match(/([^,(]+(\([^)]*\))?)/g)?.map((p) => p.trim()).filter(Boolean) ?? [];
  const preds: Pred[] = parts.map((p) => {
    const labels = (o: Obj) => (metaOf(o).labels ?? {}) as Record<string, string>;
    let m = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(p);
    if (m) {
      const [, key, op, list] = m;
      const values = new Set(list.split(",").map((v) => v.trim()));
      return op === "in" ? (o) => values.has(labels(o)[key]) : (o) => !values.has(labels(o)[key]);
    }
    m = /^([^\s!=]+)\s*(==|=|!=)\s*(\S*)$/.exec(p);
    if (m) {
      const [, key, op, value] = m;
      return op === "!=" ? (o) => labels(o)[key] !== value : (o) => labels(o)[key] === value;
    }
    if (p.startsWith("!")) return (o) => !(p.slice(1) in labels(o));
    return (o) => p in labels(o);
  });
  return (o) => preds.every((f) => f(o));
}

/** `metadata.name=x,status.phase!=Running` (dotted paths, `=`, `==`, `!=`). */
export function parseFieldSelector(sel?: string): Pred {
  if (!sel) return () => true;
  const preds: Pred[] = sel.split(",").filter(Boolean).map((p) => {
    const m = /^([^!=]+)(==|=|!=)(.*)$/.exec(p.trim());
    if (!m) throw new Error(`invalid field selector: ${p}`);
    const [, path, op, value] = m;
    const read = (o: Obj) =>
      String(path.split(".").reduce<unknown>((v, k) => (v as Obj | undefined)?.[k], o) ?? "");
    return op === "!=" ? (o) => read(o) !== value : (o) => read(o) === value;
  });
  return (o) => preds.every((f) => f(o));
}
