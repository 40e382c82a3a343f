/**
 * Writing a kubernetes service's objects: where each kind lives (API discovery, as kubectl
 * resolves a manifest's `apiVersion` and `kind` to a resource path), server-side apply of each
 * manifest (field manager `provisioning`, `force`, `fieldValidation=Strict`, optionally
 * `dryRun=All`) with our labels on its metadata and `spec.replicas` set on the service's
 * Deployment in the same write, and the objects of the manifests that exist but are not ours.
 *
 * The apply is sent as JSON (`application/apply-patch+yaml` accepts JSON), as the user wrote it:
 * the server, not a client-side serializer, decides what a field means.
 *
 * @module
 */
import { type Kube, KubeError } from "./_client.ts";
import type { Manifest } from "./_manifests.ts";
import { describe, isOurs, type KubeObject, ourLabels } from "./_objects.ts";

/** Where objects of one kind live. */
export interface Resource {
  /** The collection path in `namespace` (`/apis/apps/v1/namespaces/demo/deployments`). */
  collection(namespace: string): string;
  namespaced: boolean;
}

type ApiResourceList = { resources: { name: string; kind: string; namespaced: boolean }[] };
const discovered = new WeakMap<Kube, Map<string, Promise<ApiResourceList | undefined>>>();

/** The resource of `kind` in `apiVersion`, from the API's discovery documents (cached per client). */
export async function resourceOf(
  kube: Kube,
  o: { apiVersion: string; kind: string; signal?: AbortSignal },
): Promise<Resource> {
  const { apiVersion, kind, signal } = o;
  let cache = discovered.get(kube);
  if (!cache) discovered.set(kube, cache = new Map());
  const prefix = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  let list = cache.get(prefix);
  if (!list) {
    cache.set(prefix, list = kube.get<ApiResourceList>(prefix, { signal }));
    list.catch(() => cache.delete(prefix));
  }
  const found = (await list)?.resources.find((r) => r.kind === kind && !r.name.includes("/"));
  if (!found) {
    throw new KubeError(
      `The cluster does not serve ${kind} in ${apiVersion} (kubectl api-resources lists what it serves)`,
      "http",
      404,
      "NotFound",
    );
  }
  return {
    namespaced: found.namespaced,
    collection: (ns) =>
      found.namespaced
        ? `${prefix}/namespaces/${encodeURIComponent(ns)}/${found.name}`
        : `${prefix}/${found.name}`,
  };
}

/** The API path of object `o.name` (in `o.namespace` when the resource is namespaced). */
export function pathOf(r: Resource, o: { namespace: string; name: string }): string {
  return `${r.collection(o.namespace)}/${encodeURIComponent(o.name)}`;
}

/** What the service writes for manifest `m`: our labels, its namespace, the replicas. */
export function applyBody(
  e: { manifest: Manifest; resource: Resource },
  svc: { service: string; namespace: string; deployment: string; replicas: number },
): KubeObject {
  const o = structuredClone(e.manifest.object);
  o.metadata.labels = { ...o.metadata.labels, ...ourLabels(svc.service) };
  if (e.resource.namespaced) o.metadata.namespace = svc.namespace;
  if (o.kind === "Deployment" && o.metadata.name === svc.deployment) {
    o.spec = { ...(o.spec as Record<string, unknown> | undefined), replicas: svc.replicas };
  }
  return o;
}

/** Server-side apply of `body` (a dry run with `dryRun`); returns the object as the server made it. */
export function serverSideApply(
  kube: Kube,
  o: {
    resource: Resource;
    body: KubeObject;
    namespace: string;
    dryRun?: boolean;
    signal?: AbortSignal;
  },
): Promise<KubeObject> {
  const body = o.body;
  return kube.json<KubeObject>("PATCH", pathOf(o.resource, { ...o, name: body.metadata.name }), {
    query: {
      fieldManager: "provisioning",
      force: true,
      fieldValidation: "Strict",
      dryRun: o.dryRun ? "All" : undefined,
    },
    body,
    contentType: "application/apply-patch+yaml",
    signal: o.signal,
  });
}

/** One manifest as it stands in the cluster. */
export interface Existing {
  manifest: Manifest;
  resource: Resource;
  /** The object in the cluster, if it exists. */
  live?: KubeObject;
}

/** Each manifest with its resource and its live object (if any). */
export function lookUp(
  kube: Kube,
  o: { manifests: Manifest[]; namespace: string; signal?: AbortSignal },
): Promise<Existing[]> {
  const { namespace, signal } = o;
  return Promise.all(o.manifests.map(async (manifest) => {
    const m = manifest.object;
    const resource = await resourceOf(kube, { apiVersion: m.apiVersion!, kind: m.kind!, signal });
    const live = await kube.get<KubeObject>(
      pathOf(resource, { namespace, name: m.metadata.name }),
      {
        signal,
      },
    );
    return { manifest, resource, live };
  }));
}

/**
 * Why the objects of `existing` cannot be applied for `service`: objects that exist without our
 * labels (an existing Namespace is left as it is, not refused).
 */
export function foreign(existing: Existing[], service: string): string[] {
  return existing.filter((e) => e.live && e.live.kind !== "Namespace" && !isOurs(e.live, service))
    .map((e) => describe({ ...e.live!, kind: e.manifest.object.kind }));
}

/** The manifests to write: a Namespace that exists and is not ours is left out. */
export function toApply(existing: Existing[], service: string): Existing[] {
  return existing.filter((e) =>
    !(e.manifest.object.kind === "Namespace" && e.live && !isOurs(e.live, service))
  );
}
