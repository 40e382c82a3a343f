/**
 * The patch flavours of the API double: JSON merge patch (RFC 7386), strategic merge patch (the
 * Kubernetes list-merge-by-key rules for the lists a Deployment has), JSON patch (RFC 6902), and a
 * simplified server-side apply that tracks which field manager owns which leaf field, reports
 * conflicts (409) unless forced, removes fields a manager stops applying, and renders
 * `metadata.managedFields` (lists are atomic here, unlike the real merge-by-key of containers).
 */

import type { Obj } from "./_schema.ts";
export type { Obj };

export const isObj = (v: unknown): v is Obj =>
  typeof v === "object" && v !== null && !Array.isArray(v);
export const clone = <T>(v: T): T => structuredClone(v);
export const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** An error a patch or apply raises; the server turns it into a Status with this code/reason. */
export class PatchError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly causes: object[] = [],
  ) {
    super(message);
  }
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return clone(patch);
  const out: Obj = isObj(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

const MERGE_KEYS: Record<string, string> = {
  containers: "name",
  initContainers: "name",
  ephemeralContainers: "name",
  volumes: "name",
  env: "name",
  imagePullSecrets: "name",
  ports: "containerPort",
  volumeMounts: "mountPath",
  conditions: "type",
};

/** Strategic merge patch: maps merge, lists with a known merge key merge by it, `$patch` directives. */
export function strategicMerge(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return clone(patch);
  if (patch.$patch === "replace") {
    const { $patch: _, ...rest } = patch;
    return clone(rest);
  }
  if (patch.$patch === "delete") return undefined;
  const out: Obj = isObj(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith("$setElementOrder/") || k === "$retainKeys" || k === "$patch") continue;
    if (k.startsWith("$deleteFromPrimitiveList/")) {
      const field = k.slice("$deleteFromPrimitiveList/".length);
      const drop = new Set((v as unknown[]).map((x) => JSON.stringify(x)));
      if (Array.isArray(out[field])) {
        out[field] = (out[field] as unknown[]).filter((x) => !drop.has(JSON.stringify(x)));
      }
      continue;
    }
    if (v === null) delete out[k];
    else if (Array.isArray(v) && MERGE_KEYS[k] && Array.isArray(out[k])) {
      out[k] = mergeList(out[k] as unknown[], v, MERGE_KEYS[k]);
    } else {
      const merged = strategicMerge(out[k], v);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    }
  }
  return out;
}

function mergeList(current: unknown[], patch: unknown[], key: string): unknown[] {
  const out = clone(current);
  for (const item of patch) {
    if (!isObj(item) || !(key in item)) {
      out.push(clone(item));
      continue;
    }
    const at = out.findIndex((c) => isObj(c) && same(c[key], item[key]));
    if (item.$patch === "delete") {
      if (at >= 0) out.splice(at, 1);
    } else if (at >= 0) out[at] = strategicMerge(out[at], item);
    else out.push(strategicMerge({}, item));
  }
  return out;
}

/** RFC 6902 JSON patch. */
export function jsonPatch(doc: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) {
    throw new PatchError(400, "BadRequest", "json patch must be a list of operations");
  }
  let out = clone(doc);
  for (const op of ops as Obj[]) {
    const path = pointer(String(op.path ?? ""));
    switch (op.op) {
      case "add":
        out = put(out, path, clone(op.value), true);
        break;
      case "replace":
        get(out, path, op);
        out = put(out, path, clone(op.value), false);
        break;
      case "remove":
        get(out, path, op);
        out = put(out, path, undefined, false);
        break;
      case "test":
        if (!same(get(out, path, op), op.value)) {
          throw new PatchError(
            422,
            "Invalid",
            `the server rejected our request due to an error in our request: testing value ${op.path} failed`,
          );
        }
        break;
      case "move":
      case "copy": {
        const from = pointer(String(op.from ?? ""));
        const value = clone(get(out, from, op));
        if (op.op === "move") out = put(out, from, undefined, false);
        out = put(out, path, value, true);
        break;
      }
      default:
        throw new PatchError(
          400,
          "BadRequest",
          `unknown json patch operation ${JSON.stringify(op.op)}`,
        );
    }
  }
  return out;
}

function pointer(p: string): string[] {
  if (p === "") return [];
  if (!p.startsWith("/")) {
    throw new PatchError(400, "BadRequest", `invalid JSON pointer ${JSON.stringify(p)}`);
  }
  return p.slice(1).split("/").map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"));
}

function get(doc: unknown, path: string[], op: Obj): unknown {
  let cur = doc;
  for (const seg of path) {
    if (Array.isArray(cur) && /^\d+$/.test(seg) && Number(seg) < cur.length) cur = cur[Number(seg)];
    else if (isObj(cur) && seg in cur) cur = cur[seg];
    else {throw new PatchError(
        422,
        "Invalid",
        `the server rejected our request due to an error in our request: missing path ${
          op.path ?? op.from
        }`,
      );}
  }
  return cur;
}

function put(doc: unknown, path: string[], value: unknown, insert: boolean): unknown {
  if (path.length === 0) return value;
  const parent = path.length === 1
    ? doc
    : get(doc, path.slice(0, -1), { path: "/" + path.join("/") });
  const last = path[path.length - 1];
  if (Array.isArray(parent)) {
    const i = last === "-" ? parent.length : Number(last);
    if (!Number.isInteger(i) || i > parent.length) {
      throw new PatchError(422, "Invalid", `index ${last} out of range`);
    }
    if (value === undefined) parent.splice(i, 1);
    else parent.splice(i, insert ? 0 : 1, value);
  } else if (isObj(parent)) {
    if (value === undefined) delete parent[last];
    else parent[last] = value;
  } else throw new PatchError(422, "Invalid", `cannot set ${last} on a non-object`);
  return doc;
}

/** Who owns a leaf field: a manager and whether it applied (`Apply`) or wrote (`Update`) it. */
export type Owner = { manager: string; operation: "Apply" | "Update"; time: string };
/** Leaf path (JSON array of keys) to its owner. */
export type Owners = Map<string, Owner>;

const UNOWNED = new Set(["apiVersion", "kind", "status"]);
const UNOWNED_META = new Set([
  "name",
  "namespace",
  "uid",
  "resourceVersion",
  "generation",
  "creationTimestamp",
  "managedFields",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
]);

/** Leaf fields of an object (lists and empty maps are leaves), without the server-owned ones. */
export function leaves(
  obj: unknown,
  prefix: string[] = [],
  out = new Map<string, unknown>(),
): Map<string, unknown> {
  if (isObj(obj) && Object.keys(obj).length > 0) {
    for (const [k, v] of Object.entries(obj)) {
      if (prefix.length === 0 && UNOWNED.has(k)) continue;
      if (prefix.length === 1 && prefix[0] === "metadata" && UNOWNED_META.has(k)) continue;
      leaves(v, [...prefix, k], out);
    }
  } else if (prefix.length > 0) out.set(JSON.stringify(prefix), obj);
  return out;
}

function setPath(obj: Obj, path: string[], value: unknown): void {
  let cur = obj;
  for (const seg of path.slice(0, -1)) {
    if (!isObj(cur[seg])) cur[seg] = {};
    cur = cur[seg] as Obj;
  }
  cur[path[path.length - 1]] = clone(value);
}

function deletePath(obj: Obj, path: string[]): void {
  const parents: Obj[] = [];
  let cur: unknown = obj;
  for (const seg of path.slice(0, -1)) {
    if (!isObj(cur)) return;
    parents.push(cur);
    cur = cur[seg];
  }
  if (!isObj(cur)) return;
  delete cur[path[path.length - 1]];
  // Drop maps left empty by the removal (not the top-level sections).
  for (let i = path.length - 2; i >= 1; i--) {
    const holder = parents[i];
    const child = holder[path[i]];
    if (isObj(child) && Object.keys(child).length === 0) delete holder[path[i]];
    else break;
  }
}

/**
 * Server-side apply of `config` by `manager` onto `current` (undefined when creating). Returns the
 * merged object; updates `owners`. Throws a 409 Conflict PatchError when another manager owns a
 * field with a different value and `force` is false.
 */
export function serverSideApply(
  current: Obj | undefined,
  config: Obj,
  manager: string,
  force: boolean,
  owners: Owners,
): Obj {
  const now = timestamp();
  const applied = leaves(config);
  const result: Obj = current ? clone(current) : {};
  const have = leaves(result);
  const conflicts: string[] = [];
  for (const [p, v] of applied) {
    const owner = owners.get(p);
    const mine = owner && owner.manager === manager && owner.operation === "Apply";
    if (owner && !mine && have.has(p) && !same(have.get(p), v)) {
      conflicts.push(
        `conflict with "${owner.manager}"${
          owner.operation === "Update" ? ` using apps/v1` : ""
        }: .${JSON.parse(p).join(".")}`,
      );
    }
  }
  if (conflicts.length && !force) {
    throw new PatchError(
      409,
      "Conflict",
      `Apply failed with ${conflicts.length} conflict${conflicts.length > 1 ? "s" : ""}: ${
        conflicts.join("\n")
      }`,
      conflicts.map((c) => ({
        type: "FieldManagerConflict",
        message: c.split(": ")[0],
        field: c.split(": ")[1],
      })),
    );
  }
  for (const [p, owner] of [...owners]) {
    if (owner.manager === manager && owner.operation === "Apply" && !applied.has(p)) {
      owners.delete(p);
      if ([...owners.keys()].every((q) => !q.startsWith(p.slice(0, -1)))) {
        deletePath(result, JSON.parse(p));
      }
    }
  }
  for (const [p, v] of applied) {
    setPath(result, JSON.parse(p), v);
    owners.set(p, { manager, operation: "Apply", time: now });
  }
  for (const k of ["apiVersion", "kind"]) if (config[k] !== undefined) result[k] = config[k];
  return result;
}

/** Records `manager` (operation Update) as owner of the leaf fields that changed from `before`. */
export function recordUpdate(
  before: Obj | undefined,
  after: Obj,
  manager: string,
  owners: Owners,
): void {
  const now = timestamp();
  const was = before ? leaves(before) : new Map<string, unknown>();
  const is = leaves(after);
  for (const [p, v] of is) {
    if (!was.has(p) || !same(was.get(p), v)) {
      owners.set(p, { manager, operation: "Update", time: now });
    }
  }
  for (const p of was.keys()) if (!is.has(p)) owners.delete(p);
}

/** `metadata.managedFields` in the FieldsV1 format (`{"f:spec":{"f:replicas":{}}}`). */
export function managedFields(owners: Owners, apiVersion: string): Obj[] {
  const groups = new Map<string, { owner: Owner; fields: Obj }>();
  for (const [p, owner] of owners) {
    const key = `${owner.manager}\0${owner.operation}`;
    const g = groups.get(key) ?? { owner, fields: {} };
    if (owner.time > g.owner.time) g.owner = owner;
    groups.set(key, g);
    let cur = g.fields;
    for (const seg of JSON.parse(p) as string[]) cur = (cur[`f:${seg}`] ??= {}) as Obj;
  }
  return [...groups.values()].map(({ owner, fields }) => ({
    manager: owner.manager,
    operation: owner.operation,
    apiVersion,
    time: owner.time,
    fieldsType: "FieldsV1",
    fieldsV1: fields,
  }));
}

/** Kubernetes time: RFC 3339 with second precision. */
export function timestamp(ms = Date.now()): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}
