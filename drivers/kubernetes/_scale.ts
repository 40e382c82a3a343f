/**
 * Scaling a kubernetes service's Deployment and waiting for its pods to go: the `/scale`
 * subresource with a merge patch (what `kubectl scale` sends; the client's default json-patch
 * would need the field to exist), pod deletion (grace period 0 when forced), and the stop
 * policies — `scale` to 0 (the Deployment and its history stay, like `docker stop`) or `delete`,
 * which deletes only objects that carry our labels, never a Namespace or a volume.
 *
 * @module
 */
import { type Kube, KubeError } from "./_client.ts";
import { lookUp, pathOf } from "./_apply.ts";
import type { Manifest } from "./_manifests.ts";
import {
  type Deployment,
  deploymentPath,
  describe,
  isOurs,
  type List,
  type Pod,
  podPath,
  scalePath,
  selectorString,
} from "./_objects.ts";
import { waitFor } from "./_wait.ts";

/** Set the replicas of Deployment `name` through `/scale` (merge patch). */
export async function scaleTo(
  kube: Kube,
  o: { namespace: string; name: string; replicas: number; signal?: AbortSignal },
): Promise<void> {
  await kube.json("PATCH", scalePath(o.namespace, o.name), {
    query: { fieldManager: "provisioning" },
    body: { spec: { replicas: o.replicas } },
    contentType: "application/merge-patch+json",
    signal: o.signal,
  });
}

/** The pods of a label selector in a namespace. */
export interface PodSet {
  namespace: string;
  selector: string;
  signal?: AbortSignal;
}

/** The pods of `o.selector` in `o.namespace`. */
export async function podsOf(kube: Kube, o: PodSet): Promise<Pod[]> {
  const list = await kube.json<List<Pod>>("GET", podPath(o.namespace), {
    query: { labelSelector: o.selector },
    signal: o.signal,
  });
  return list.items;
}

/** Delete every pod of `o` with grace period 0 (at once); a pod already gone is fine. */
export async function deletePods(kube: Kube, o: PodSet): Promise<void> {
  await Promise.all(
    (await podsOf(kube, o)).map((p) =>
      kube.json("DELETE", podPath(o.namespace, p.metadata.name), {
        query: { gracePeriodSeconds: 0 },
        body: { kind: "DeleteOptions", apiVersion: "v1", gracePeriodSeconds: 0 },
        signal: o.signal,
      }).catch((e) => {
        if (!(e instanceof KubeError && e.status === 404)) throw e;
      })
    ),
  );
}

/** Wait until no pod of `o` is left (true), or `o.ms` pass (false). */
export async function podsGone(kube: Kube, o: PodSet & { ms: number }): Promise<boolean> {
  const r = await waitFor(kube, {
    watch: [{ path: podPath(o.namespace), query: { labelSelector: o.selector } }],
    deadline: Date.now() + o.ms,
    signal: o.signal,
    check: async () => ((await podsOf(kube, o)).length === 0 ? true : undefined),
  });
  return r.done;
}

/** What a stop is asked to do. */
export interface StopRequest {
  namespace: string;
  deployment: Deployment;
  service: string;
  policy: "scale" | "delete";
  /** The manifests (for `delete`: their other objects carrying our labels go too). */
  manifests?: Manifest[];
  /** `shutdown.timeout` in seconds: how long pods may take to terminate before they are deleted at once. */
  timeoutS: number;
  force?: boolean;
  signal?: AbortSignal;
}

/** Stop the service's pods by its policy; `killed` when pods had to be deleted at once. */
export async function stopPods(kube: Kube, r: StopRequest): Promise<{ killed: boolean }> {
  const { namespace, signal } = r;
  const name = r.deployment.metadata.name;
  const pods: PodSet = { namespace, selector: selectorString(r.deployment.spec.selector), signal };
  const gone = (e: unknown) => {
    if (!(e instanceof KubeError && e.status === 404)) throw e;
  };
  if (r.policy === "delete") {
    const existing = await lookUp(kube, { manifests: r.manifests ?? [], namespace, signal })
      .catch(() => []);
    for (const e of existing) {
      const kind = e.manifest.object.kind ?? "";
      if (!e.live || !isOurs(e.live, r.service) || KEEP.has(kind)) continue;
      if (kind === "Deployment" && e.live.metadata.name === name) continue; // below
      await kube.json("DELETE", pathOf(e.resource, { namespace, name: e.live.metadata.name }), {
        query: { propagationPolicy: "Background" },
        signal,
      }).catch(gone);
    }
    await kube.json("DELETE", deploymentPath(namespace, name), {
      query: { propagationPolicy: "Background" },
      signal,
    }).catch(gone);
  } else {
    await scaleTo(kube, { namespace, name, replicas: 0, signal });
  }
  if (r.force) await deletePods(kube, pods);
  if (await podsGone(kube, { ...pods, ms: r.timeoutS * 1000 })) return { killed: false };
  // Past shutdown.timeout: what is left is deleted at once (SIGKILL, in pod terms).
  await deletePods(kube, pods);
  if (await podsGone(kube, { ...pods, ms: 10_000 })) return { killed: !r.force };
  const left = await podsOf(kube, pods);
  throw new KubeError(
    `${left.length} pod(s) of ${
      describe(r.deployment)
    } still present after ${r.timeoutS}s and a deletion with grace period 0: ${
      left.map((p) => p.metadata.name).join(", ")
    }`,
    "http",
  );
}

/** Kinds `stop_policy = "delete"` never deletes. */
const KEEP = new Set(["Namespace", "PersistentVolumeClaim", "PersistentVolume", "StorageClass"]);
