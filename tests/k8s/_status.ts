/**
 * The deployment controller's status computation for the API double: replicas, updated, ready
 * and available counts, and the Available / Progressing / ReplicaFailure conditions, with the
 * progress deadline (a complete rollout does not time out; new progress resets the clock) —
 * what `kubectl rollout status` reads (observedGeneration, updatedReplicas, availableReplicas,
 * ProgressDeadlineExceeded).
 */

import type { ResolvedBehaviour } from "./_behaviour.ts";
import { createHash } from "node:crypto";
import { type Obj, same, timestamp } from "./_patch.ts";
import { metaOf, type Store } from "./_store.ts";

const SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789";

export const spec = (o: Obj): Obj => (o.spec ?? {}) as Obj;
export const status = (o: Obj): Obj => (o.status ?? {}) as Obj;
export const labels = (o: Obj): Record<string, string> =>
  (metaOf(o).labels ?? {}) as Record<string, string>;
export const ownedBy = (o: Obj, owner: Obj) =>
  ((metaOf(o).ownerReferences ?? []) as Obj[]).some((r) => r.uid === metaOf(owner).uid);

/** The pod-template-hash of a template (10 characters of the k8s safe alphabet). */
export function templateHash(template: unknown): string {
  const n = createHash("sha256").update(JSON.stringify(template ?? {})).digest().readUInt32BE(0);
  return [...String(n)].map((c, i) =>
    SAFE_ALPHABET[(c.charCodeAt(0) * 7 + i) % SAFE_ALPHABET.length]
  ).join("");
}

/** Progress tracking of one deployment. */
export type DepSim = { key: string; lastProgressAt: number; counts: number[]; complete: boolean };

/** What the status computation needs from the controller. */
export interface RolloutView {
  store: Store;
  deps: Map<string, DepSim>;
  behaviourOf(ns: string, name: string): ResolvedBehaviour;
  ready(ns: string, pod: string, b: ResolvedBehaviour): boolean;
}

function scaled(value: unknown, replicas: number, roundUp: boolean): number {
  if (typeof value === "number") return value;
  const pct = /^(\d+)%$/.exec(String(value ?? "25%"));
  const n = (Number(pct?.[1] ?? 25) / 100) * replicas;
  return roundUp ? Math.ceil(n) : Math.floor(n);
}

export function deploymentStatus(view: RolloutView, d: Obj, now: number): void {
  const meta = metaOf(d), ns = String(meta.namespace), name = String(meta.name);
  const s = spec(d);
  const replicas = Number(s.replicas ?? 1);
  const hash = templateHash(s.template);
  const b = view.behaviourOf(ns, name);
  const rss = view.store.list("replicasets", ns).filter((rs) => ownedBy(rs, d));
  const current = rss.find((rs) => labels(rs)["pod-template-hash"] === hash);
  const pods = view.store.list("pods", ns).filter((p) =>
    !metaOf(p).deletionTimestamp && rss.some((rs) => ownedBy(p, rs))
  );
  const isReady = (p: Obj) => view.ready(ns, String(metaOf(p).name), b);
  const updated = current ? pods.filter((p) => ownedBy(p, current)).length : 0;
  const ready = pods.filter(isReady).length;
  const total = rss.reduce((n, rs) => n + Number(spec(rs).replicas ?? 0), 0);
  const complete = updated === replicas && pods.length === updated && ready === updated;
  const key = `${meta.uid}/${meta.generation}/${replicas}`;
  const sim = view.deps.get(`${ns}/${name}`) ??
    { key, lastProgressAt: now, counts: [], complete: false };
  const counts = [updated, ready];
  if (sim.key !== key) Object.assign(sim, { key, lastProgressAt: now, complete: false });
  else if (counts.some((c, i) => c > (sim.counts[i] ?? 0))) sim.lastProgressAt = now;
  sim.counts = counts;
  sim.complete ||= complete;
  view.deps.set(`${ns}/${name}`, sim);
  const deadline = b.progressDeadlineMs ??
    (b.failure === "ProgressDeadlineExceeded"
      ? 300
      : Number(s.progressDeadlineSeconds ?? 600) * 1000);
  const rsName = current ? metaOf(current).name : `${name}-${hash}`;
  const old = (status(d).conditions ?? []) as Obj[];
  const cond = (type: string, st: string, reason: string, message: string): Obj => {
    const prev = old.find((c) => c.type === type);
    const changed = !prev || prev.reason !== reason || prev.message !== message;
    return {
      type,
      status: st,
      lastUpdateTime: changed ? timestamp(now) : prev.lastUpdateTime,
      lastTransitionTime: prev && prev.status === st ? prev.lastTransitionTime : timestamp(now),
      reason,
      message,
    };
  };
  const maxUnavailable = scaled(
    ((s.strategy as Obj | undefined)?.rollingUpdate as Obj | undefined)?.maxUnavailable,
    replicas,
    false,
  );
  const conditions = [
    ready >= replicas - maxUnavailable
      ? cond(
        "Available",
        "True",
        "MinimumReplicasAvailable",
        "Deployment has minimum availability.",
      )
      : cond(
        "Available",
        "False",
        "MinimumReplicasUnavailable",
        "Deployment does not have minimum availability.",
      ),
    s.paused
      ? cond("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused")
      : sim.complete
      ? cond(
        "Progressing",
        "True",
        "NewReplicaSetAvailable",
        `ReplicaSet "${rsName}" has successfully progressed.`,
      )
      : now - sim.lastProgressAt > deadline
      ? cond(
        "Progressing",
        "False",
        "ProgressDeadlineExceeded",
        `ReplicaSet "${rsName}" has timed out progressing.`,
      )
      : cond(
        "Progressing",
        "True",
        "ReplicaSetUpdated",
        `ReplicaSet "${rsName}" is progressing.`,
      ),
  ];
  const failure = current &&
    ((status(current).conditions ?? []) as Obj[]).find((c) => c.type === "ReplicaFailure");
  if (failure) {
    conditions.push(cond("ReplicaFailure", "True", "FailedCreate", String(failure.message)));
  }
  const next: Obj = {
    observedGeneration: meta.generation,
    ...(pods.length ? { replicas: pods.length } : {}),
    ...(updated ? { updatedReplicas: updated } : {}),
    ...(ready ? { readyReplicas: ready, availableReplicas: ready } : {}),
    ...(total - ready > 0 ? { unavailableReplicas: total - ready } : {}),
    conditions,
  };
  if (!same(next, d.status)) view.store.put("deployments", { ...d, status: next });
}
