/**
 * Is a Deployment's rollout done, still going, or failed? Done exactly as `kubectl rollout
 * status` decides it (its `DeploymentStatusViewer`): the controller has observed the generation
 * our write produced, every replica is updated, no old replica is left, and every updated one is
 * available. Failed — at once, naming pod, container and reason, where `helm --wait` hangs to its
 * timeout (helm#7429, helm#11116) — when the controller says `ProgressDeadlineExceeded` or
 * `ReplicaFailure`, the Deployment is paused, a current pod's container waits with
 * `ErrImagePull`, `ImagePullBackOff`, `InvalidImageName`, `CreateContainerConfigError` or
 * `CrashLoopBackOff`, or a current pod has been unschedulable for longer than allowed.
 *
 * "Current" pods are those of the ReplicaSet of the Deployment's revision, so an old ReplicaSet
 * being replaced cannot fail a rollout that is going well.
 *
 * @module
 */
import type { Kube } from "./_client.ts";
import {
  condition,
  type Deployment,
  deploymentPath,
  type KubeObject,
  type List,
  type Pod,
  podPath,
  REVISION,
  selectorString,
} from "./_objects.ts";
import { waitFor } from "./_wait.ts";

/** Waiting reasons of a container that fail a rollout at once. */
export const FAIL_FAST_REASONS = new Set([
  "ErrImagePull",
  "ImagePullBackOff",
  "InvalidImageName",
  "CreateContainerConfigError",
  "CrashLoopBackOff",
]);

/** Why a rollout failed. */
export interface RolloutFailure {
  reason: string;
  message: string;
  pod?: string;
  container?: string;
}

/** Where a rollout stands. */
export interface Progress {
  done: boolean;
  /** kubectl's words: `Waiting for deployment "web" rollout to finish: 0 of 1 updated replicas are available...`. */
  message: string;
  failure?: RolloutFailure;
}

/** Remembers since when each pod has been unschedulable (by uid). */
export type Unschedulable = Map<string, number>;

/** The pods of the Deployment's current ReplicaSet (all live pods when it is not known yet). */
export function currentPods(
  d: Deployment,
  o: { replicaSets: KubeObject[]; pods: Pod[] },
): Pod[] {
  const { replicaSets, pods } = o;
  const revision = d.metadata.annotations?.[REVISION];
  const rs = replicaSets.find((r) =>
    r.metadata.ownerReferences?.some((o) => o.uid === d.metadata.uid) &&
    r.metadata.annotations?.[REVISION] === revision
  );
  const hash = rs?.metadata.labels?.["pod-template-hash"];
  return pods.filter((p) =>
    !p.metadata.deletionTimestamp && (!hash || p.metadata.labels?.["pod-template-hash"] === hash)
  );
}

/** Where the rollout of `d` stands, given its current pods. */
export function rolloutProgress(
  d: Deployment,
  pods: Pod[],
  o: { generation?: number; now: number; unschedulable: Unschedulable; unschedulableMs: number },
): Progress {
  const name = d.metadata.name;
  const s = d.status ?? {};
  const wanted = Math.max(o.generation ?? 0, d.metadata.generation ?? 0);
  const waiting = (what: string): Progress => ({
    done: false,
    message: `Waiting for deployment "${name}" rollout to finish: ${what}...`,
  });
  if ((s.observedGeneration ?? 0) < wanted) {
    return { done: false, message: "Waiting for deployment spec update to be observed..." };
  }
  const progressing = condition(s.conditions, "Progressing");
  if (progressing?.reason === "ProgressDeadlineExceeded") {
    return fail(
      waiting(""),
      {
        reason: "ProgressDeadlineExceeded",
        message: `deployment "${name}" exceeded its progress deadline: ${progressing.message ?? ""}`
          .trim(),
      },
      pods,
      o,
    );
  }
  const replicaFailure = condition(s.conditions, "ReplicaFailure");
  if (replicaFailure?.status === "True") {
    return fail(waiting(""), {
      reason: `ReplicaFailure (${replicaFailure.reason ?? "FailedCreate"})`,
      message: replicaFailure.message ?? "the controller cannot create pods",
    });
  }
  if (d.spec.paused) {
    return fail(waiting(""), {
      reason: "DeploymentPaused",
      message:
        `deployment "${name}" is paused (spec.paused); kubectl rollout resume deployment/${name} -n ${d.metadata.namespace}`,
    });
  }
  const replicas = d.spec.replicas ?? 1;
  const updated = s.updatedReplicas ?? 0, total = s.replicas ?? 0;
  const available = s.availableReplicas ?? 0;
  const step = updated < replicas
    ? waiting(`${updated} out of ${replicas} new replicas have been updated`)
    : total > updated
    ? waiting(`${total - updated} old replicas are pending termination`)
    : available < updated
    ? waiting(`${available} of ${updated} updated replicas are available`)
    : { done: true, message: `deployment "${name}" successfully rolled out` };
  if (step.done) return step;
  const pod = podFailure(pods, o);
  return pod ? fail(step, pod) : step;
}

function fail(
  p: Progress,
  failure: RolloutFailure,
  pods: Pod[] = [],
  o?: Parameters<typeof podFailure>[1],
): Progress {
  // A deadline is the symptom; a pod's reason (if one shows) is the cause.
  return {
    ...p,
    done: false,
    failure: (o && podFailure(pods, { ...o, anyWaiting: true })) || failure,
  };
}

/**
 * The first current pod that shows a fail-fast reason (or has been unschedulable too long);
 * with `anyWaiting`, any waiting reason but `ContainerCreating` (the cause of a deadline).
 */
export function podFailure(
  pods: Pod[],
  o: { now: number; unschedulable: Unschedulable; unschedulableMs: number; anyWaiting?: boolean },
): RolloutFailure | undefined {
  const anyWaiting = o.anyWaiting ?? false;
  for (const p of pods) {
    const pod = p.metadata.name;
    const statuses = [
      ...(p.status?.initContainerStatuses ?? []),
      ...(p.status?.containerStatuses ?? []),
    ];
    for (const c of statuses) {
      const w = c.state?.waiting;
      if (
        w?.reason &&
        (FAIL_FAST_REASONS.has(w.reason) || (anyWaiting && w.reason !== "ContainerCreating"))
      ) {
        return { reason: w.reason, message: w.message ?? "", pod, container: c.name };
      }
    }
    const scheduled = condition(p.status?.conditions, "PodScheduled");
    const uid = p.metadata.uid ?? pod;
    if (scheduled?.status === "False" && scheduled.reason === "Unschedulable") {
      const since = o.unschedulable.get(uid) ?? o.now;
      o.unschedulable.set(uid, since);
      if (o.now - since >= o.unschedulableMs || anyWaiting) {
        return { reason: "Unschedulable", message: scheduled.message ?? "", pod };
      }
    } else o.unschedulable.delete(uid);
  }
  return undefined;
}

/** `pod web-5d-x2, container main: CrashLoopBackOff: back-off 10s …`. */
export function describeFailure(f: RolloutFailure): string {
  const where = f.pod ? `pod ${f.pod}${f.container ? `, container ${f.container}` : ""}: ` : "";
  return `${where}${f.reason}${f.message ? `: ${f.message}` : ""}`;
}

/** The live state of a Deployment and its pods, read afresh. */
export interface Snapshot {
  deployment?: Deployment;
  /** Every pod of its selector. */
  pods: Pod[];
  /** The pods of its current ReplicaSet. */
  current: Pod[];
}

/**
 * Read the Deployment `name` in `namespace` and its pods (and ReplicaSets, to tell current pods).
 * With the `selector` it had last time, the three reads go out at once (read again when it
 * changed).
 */
export async function snapshot(
  kube: Kube,
  o: { namespace: string; name: string; signal?: AbortSignal; selector?: string },
): Promise<Snapshot> {
  const { namespace, name, signal } = o;
  const list = (labelSelector: string) =>
    Promise.all([
      kube.json<List<Pod>>("GET", podPath(namespace), { query: { labelSelector }, signal }),
      kube.json<List<KubeObject>>("GET", `/apis/apps/v1/namespaces/${namespace}/replicasets`, {
        query: { labelSelector },
        signal,
      }),
    ]);
  const guessed = o.selector ? list(o.selector) : undefined;
  guessed?.catch(() => {});
  const deployment = await kube.get<Deployment>(deploymentPath(namespace, name), { signal });
  if (!deployment) return { pods: [], current: [] };
  const labelSelector = selectorString(deployment.spec.selector);
  const [pods, rss] = guessed && labelSelector === o.selector
    ? await guessed
    : await list(labelSelector);
  return {
    deployment,
    pods: pods.items,
    current: currentPods(deployment, { replicaSets: rss.items, pods: pods.items }),
  };
}

/** Options of {@linkcode waitForRollout}. */
export interface RolloutOptions {
  namespace: string;
  name: string;
  /** The generation our write returned. */
  generation?: number;
  deadline: number;
  unschedulableMs: number;
  signal?: AbortSignal;
  /** Called with each new progress message. */
  onProgress?: (p: Progress) => void;
}

/** How a rollout wait ended. */
export type RolloutEnd =
  | { ok: true; snapshot: Snapshot }
  | {
    ok: false;
    failure?: RolloutFailure;
    timedOut?: boolean;
    message: string;
    snapshot?: Snapshot;
  };

/** Wait for the rollout of a Deployment (watches as wake-ups; see `_wait.ts`). */
export async function waitForRollout(kube: Kube, o: RolloutOptions): Promise<RolloutEnd> {
  const unschedulable: Unschedulable = new Map();
  let last: Progress = {
    done: false,
    message: "Waiting for deployment spec update to be observed...",
  };
  let seen: Snapshot | undefined;
  const selector = { labelSelector: "" };
  const r = await waitFor<RolloutEnd>(kube, {
    watch: [
      { path: deploymentPath(o.namespace), query: { fieldSelector: `metadata.name=${o.name}` } },
      { path: podPath(o.namespace), query: selector },
    ],
    deadline: o.deadline,
    signal: o.signal,
    check: async () => {
      const snap = seen = await snapshot(kube, {
        namespace: o.namespace,
        name: o.name,
        signal: o.signal,
        selector: selector.labelSelector || undefined,
      });
      const d = snap.deployment;
      if (!d) {
        return { ok: false, message: `deployment "${o.name}" was deleted during the rollout` };
      }
      selector.labelSelector = selectorString(d.spec.selector);
      const p = rolloutProgress(d, snap.current, { ...o, now: Date.now(), unschedulable });
      if (p.message !== last.message) o.onProgress?.(p);
      last = p;
      if (p.failure) {
        return {
          ok: false,
          failure: p.failure,
          message: describeFailure(p.failure),
          snapshot: snap,
        };
      }
      return p.done ? { ok: true, snapshot: snap } : undefined;
    },
  });
  return r.done ? r.value : { ok: false, timedOut: true, message: last.message, snapshot: seen };
}
