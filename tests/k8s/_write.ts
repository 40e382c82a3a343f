/**
 * Writes of the API double: create, update, the patch flavours and server-side apply of
 * deployments and namespaces, with field validation (`Strict`/`Warn`/`Ignore`), pruning of unknown
 * fields, defaulting, validation (422), optimistic concurrency (409), generation bumps on spec
 * changes, field ownership (`metadata.managedFields`) and `dryRun=All`.
 */

import { ApiError, qualified } from "./_http.ts";
import {
  clone,
  isObj,
  jsonPatch,
  managedFields,
  mergePatch,
  type Owners,
  PatchError,
  recordUpdate,
  same,
  serverSideApply,
  strategicMerge,
  timestamp,
} from "./_patch.ts";
import {
  defaultDeployment,
  deploymentSchema,
  namespaceSchema,
  type Obj,
  prune,
  type Schema,
  unknownFields,
  validateDeployment,
  validateNamespace,
} from "./_schema.ts";
import { KINDS, metaOf, type Resource, type Store } from "./_store.ts";
import { parseYaml } from "./_yaml.ts";

/** What a write needs to know about its request. */
export type WriteCtx = { manager: string; dryRun: boolean; validation: string; warnings: string[] };

const SCHEMAS: Partial<Record<Resource, Schema>> = {
  deployments: deploymentSchema,
  namespaces: namespaceSchema,
};
export const PATCH_TYPES = [
  "application/merge-patch+json",
  "application/strategic-merge-patch+json",
  "application/json-patch+json",
  "application/apply-patch+yaml",
];

export class Writer {
  constructor(private readonly store: Store) {}

  create(
    resource: Resource,
    ns: string | undefined,
    body: string,
    contentType: string,
    ctx: WriteCtx,
    reply: (c: number, o: unknown) => void,
  ): void {
    if (resource !== "deployments" && resource !== "namespaces") {
      throw new ApiError(
        405,
        "MethodNotAllowed",
        `the double does not support creating ${resource}`,
      );
    }
    if (!/json|yaml/.test(contentType)) throw unsupported(contentType);
    const obj = parseBody(body, contentType.includes("yaml"));
    const meta = metaOf(obj);
    if (!meta.name && meta.generateName) {
      meta.name = `${meta.generateName}${crypto.randomUUID().slice(0, 5)}`;
    }
    const name = String(meta.name ?? "");
    if (this.store.get(resource, ns, name)) {
      throw new ApiError(409, "AlreadyExists", `${qualified(resource, name)} already exists`, {
        name,
        group: KINDS[resource].group,
        kind: resource,
      });
    }
    reply(201, this.write(resource, ns, name, undefined, obj, ctx, "Update"));
  }

  apply(
    resource: Resource,
    ns: string | undefined,
    name: string,
    existing: Obj | undefined,
    config: Obj,
    force: boolean,
    ctx: WriteCtx,
  ): Obj {
    const schema = SCHEMAS[resource]!;
    const kind = KINDS[resource];
    if (config.kind !== kind.kind || config.apiVersion !== kind.apiVersion) {
      throw new ApiError(
        400,
        "BadRequest",
        config.kind !== kind.kind
          ? `the kind in the data (${config.kind}) does not match the expected kind (${kind.kind})`
          : `the API version in the data (${config.apiVersion}) does not match the expected API version (${kind.apiVersion})`,
      );
    }
    const unknown = unknownFields(config, schema);
    if (unknown.length && ctx.validation === "Strict") {
      throw new ApiError(
        400,
        "BadRequest",
        `failed to create typed patch object (${
          ns ? ns + "/" : ""
        }${name}; ${kind.apiVersion}, Kind=${kind.kind}): ${
          unknown.map((f) => `.${f}: field not declared in schema`).join(", ")
        }`,
      );
    }
    if (ctx.validation === "Warn") ctx.warnings.push(...unknown.map((f) => `unknown field "${f}"`));
    const pruned = prune(config, schema) as Obj;
    const owners: Owners = new Map(this.store.owners(resource, ns, name));
    this.checkVersion(resource, name, existing, pruned);
    let merged: Obj;
    try {
      merged = serverSideApply(existing, pruned, ctx.manager, force, owners);
    } catch (e) {
      if (e instanceof PatchError) {
        throw new ApiError(e.code, e.reason, e.message, {
          name,
          group: kind.group,
          kind: resource,
          causes: e.causes,
        });
      }
      throw e;
    }
    return this.write(
      resource,
      ns,
      name,
      existing,
      merged,
      { ...ctx, validation: "Ignore" },
      "Apply",
      owners,
    );
  }

  checkVersion(
    resource: Resource,
    name: string,
    existing: Obj | undefined,
    candidate: Obj,
  ): void {
    const rv = metaOf(candidate).resourceVersion;
    if (rv !== undefined && rv !== "" && existing && rv !== metaOf(existing).resourceVersion) {
      throw new ApiError(
        409,
        "Conflict",
        `Operation cannot be fulfilled on ${
          qualified(resource, name)
        }: the object has been modified; please apply your changes to the latest version and try again`,
        { name, group: KINDS[resource].group, kind: resource },
      );
    }
  }

  /** Validates, defaults and stores a new state of a deployment or namespace (not in dry run). */
  write(
    resource: Resource,
    ns: string | undefined,
    name: string,
    existing: Obj | undefined,
    candidate: Obj,
    ctx: WriteCtx,
    op: "Apply" | "Update",
    owners?: Owners,
  ): Obj {
    const schema = SCHEMAS[resource]!;
    const unknown = unknownFields(candidate, schema);
    if (unknown.length && ctx.validation === "Strict") {
      throw new ApiError(
        400,
        "BadRequest",
        `${KINDS[resource].kind} in version "v1" cannot be handled as a ${
          KINDS[resource].kind
        }: strict decoding error: ${unknown.map((f) => `unknown field "${f}"`).join(", ")}`,
      );
    }
    if (ctx.validation === "Warn") ctx.warnings.push(...unknown.map((f) => `unknown field "${f}"`));
    const obj = prune(clone(candidate), schema) as Obj;
    const meta = metaOf(obj);
    if (meta.name !== undefined && meta.name !== name) {
      throw new ApiError(
        400,
        "BadRequest",
        `the name of the object (${meta.name}) does not match the name on the URL (${name})`,
      );
    }
    if (ns !== undefined && meta.namespace !== undefined && meta.namespace !== ns) {
      throw new ApiError(
        400,
        "BadRequest",
        "the namespace of the provided object does not match the namespace sent on the request",
      );
    }
    this.checkVersion(resource, name, existing, obj);
    const old = existing ? metaOf(existing) : undefined;
    Object.assign(meta, {
      name,
      ...(ns !== undefined ? { namespace: ns } : {}),
      uid: old?.uid ?? crypto.randomUUID(),
      creationTimestamp: old?.creationTimestamp ?? timestamp(),
      resourceVersion: old?.resourceVersion,
    });
    if (old?.deletionTimestamp) meta.deletionTimestamp = old.deletionTimestamp;
    obj.status = existing?.status ?? {};
    let causes;
    if (resource === "deployments") {
      defaultDeployment(obj);
      causes = validateDeployment(obj, existing);
      meta.generation = !existing
        ? 1
        : Number(old!.generation ?? 1) + (same(obj.spec, existing.spec) ? 0 : 1);
      if (old?.annotations && (old.annotations as Obj)["deployment.kubernetes.io/revision"]) {
        meta.annotations = {
          ...(meta.annotations as Obj ?? {}),
          "deployment.kubernetes.io/revision":
            (old.annotations as Obj)["deployment.kubernetes.io/revision"],
        };
      }
    } else {
      meta.labels = { ...(meta.labels as Obj ?? {}), "kubernetes.io/metadata.name": name };
      obj.spec = { finalizers: ["kubernetes"] };
      obj.status = existing?.status ?? { phase: "Active" };
      causes = validateNamespace(obj);
    }
    if (causes.length) throw invalid(resource, name, causes);
    const own: Owners = owners ?? new Map(this.store.owners(resource, ns, name));
    if (op === "Update") recordUpdate(existing, obj, ctx.manager, own);
    meta.managedFields = managedFields(own, KINDS[resource].apiVersion);
    const ordered: Obj = {
      apiVersion: KINDS[resource].apiVersion,
      kind: KINDS[resource].kind,
      metadata: meta,
      spec: obj.spec,
      status: obj.status,
    };
    if (ctx.dryRun) return ordered;
    return this.store.put(resource, ordered, own);
  }
}

export function parseBody(body: string, yaml: boolean, allowList = false): Obj {
  let v: unknown;
  try {
    v = yaml ? parseYaml(body) : JSON.parse(body);
  } catch (e) {
    throw new ApiError(
      400,
      "BadRequest",
      `error decoding ${yaml ? "YAML" : "JSON"}: ${(e as Error).message}`,
    );
  }
  if (!isObj(v) && !(allowList && Array.isArray(v))) {
    throw new ApiError(400, "BadRequest", "the request body must be an object");
  }
  return v as Obj;
}

export function patchWith(contentType: string, base: Obj, patch: unknown): Obj {
  if (!PATCH_TYPES.includes(contentType)) throw unsupported(contentType);
  try {
    if (contentType === "application/json-patch+json") return jsonPatch(base, patch) as Obj;
    if (Array.isArray(patch)) {
      throw new PatchError(400, "BadRequest", "a merge patch must be an object");
    }
    if (contentType === "application/merge-patch+json") return mergePatch(base, patch) as Obj;
    return strategicMerge(base, patch) as Obj;
  } catch (e) {
    if (e instanceof PatchError) throw new ApiError(e.code, e.reason, e.message);
    throw e;
  }
}

/** The `autoscaling/v1` Scale of a deployment. */
export function scaleOf(d: Obj): Obj {
  const meta = metaOf(d);
  const spec = (d.spec ?? {}) as Obj, st = (d.status ?? {}) as Obj;
  const labels = ((spec.selector ?? {}) as Obj).matchLabels as Record<string, string> ?? {};
  return {
    kind: "Scale",
    apiVersion: "autoscaling/v1",
    metadata: {
      name: meta.name,
      namespace: meta.namespace,
      uid: meta.uid,
      resourceVersion: meta.resourceVersion,
      creationTimestamp: meta.creationTimestamp,
    },
    spec: { replicas: spec.replicas },
    status: {
      replicas: st.replicas ?? 0,
      selector: Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(","),
    },
  };
}

export function notFound(resource: Resource, name: string): ApiError {
  return new ApiError(404, "NotFound", `${qualified(resource, name)} not found`, {
    name,
    group: KINDS[resource].group,
    kind: resource,
  });
}

export function invalid(
  resource: Resource,
  name: string,
  causes: { reason: string; message: string; field: string }[],
): ApiError {
  const list = causes.map((c) => `${c.field}: ${c.message}`);
  const kind = `${KINDS[resource].kind}${KINDS[resource].group ? "." + KINDS[resource].group : ""}`;
  return new ApiError(
    422,
    "Invalid",
    `${kind} "${name}" is invalid: ${list.length === 1 ? list[0] : `[${list.join(", ")}]`}`,
    { name, group: KINDS[resource].group, kind: KINDS[resource].kind, causes },
  );
}

export function unsupported(contentType: string): ApiError {
  return new ApiError(
    415,
    "UnsupportedMediaType",
    `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, ${
      PATCH_TYPES.join(", ")
    } (got ${contentType || "none"})`,
  );
}
