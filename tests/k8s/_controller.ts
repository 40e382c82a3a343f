/**
 * The controllers of the API double, in one loop that runs every few milliseconds: the
 * deployment controller (one ReplicaSet per pod-template hash, revisions, old ReplicaSets scaled
 * down once the new one is available, status with Available/Progressing/ReplicaFailure
 * conditions and the progress deadline), the ReplicaSet controller (pods `<rs>-<5 chars>`),
 * the kubelet (pod state machines of `_pods.ts`), garbage collection of orphans, and namespace
 * termination. The loop writes an object only when it changes, so watches see real transitions.
 */

import { randomBytes } from "node:crypto";
import { Behaviours, type ResolvedBehaviour } from "./_behaviour.ts";
import { type Obj, timestamp } from "./_patch.ts";
import { PodSim } from "./_pods.ts";
import { defaultPodSpec } from "./_schema.ts";
import {
  deploymentStatus,
  type DepSim,
  labels,
  ownedBy,
  type RolloutView,
  spec,
  status,
  templateHash,
} from "./_status.ts";
import { metaOf, type Store } from "./_store.ts";

const SAFE = "bcdfghjklmnpqrstvwxz2456789";
const REVISION = "deployment.kubernetes.io/revision";

function randomSuffix(): string {
  return [...randomBytes(5)].map((b) => SAFE[b % SAFE.length]).join("");
}

function images(d: Obj): string[] {
  const t = (spec(d).template ?? {}) as Obj;
  return ((spec(t).containers ?? []) as Obj[]).map((c) => String(c.image ?? ""));
}

export class Controller {
  /** When true nothing progresses (no ReplicaSets, pods or status changes). */
  paused = false;
  readonly pods = new Map<string, PodSim>();
  private readonly deps = new Map<string, DepSim>();
  private timer?: ReturnType<typeof setInterval>;
  private ipCounter = 1;

  private readonly rollout: RolloutView;

  constructor(private readonly store: Store, readonly behaviours: Behaviours) {
    this.rollout = {
      store,
      deps: this.deps,
      behaviourOf: (ns, name) => this.behaviourOf(ns, name),
      ready: (ns, name, b) => this.pods.get(`${ns}/${name}`)?.ready(b) === true,
    };
  }

  start(everyMs = 10): void {
    this.timer = setInterval(() => this.tick(), everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
    for (const p of this.pods.values()) p.end(Date.now());
  }

  /** The behaviour of the pods of deployment `name` in `ns`. */
  behaviourOf(ns: string, name: string): ResolvedBehaviour {
    const d = this.store.get("deployments", ns, name);
    return this.behaviours.resolve(ns, name, d ? images(d) : []);
  }

  /** Marks a pod Terminating (removed after `delayMs`, or now when 0). */
  terminate(pod: Obj, delayMs?: number, graceSeconds = 30): Obj | undefined {
    const meta = metaOf(pod);
    const ns = String(meta.namespace), name = String(meta.name);
    const sim = this.pods.get(`${ns}/${name}`);
    const delay = delayMs ?? (sim ? this.behaviourOf(ns, sim.deployment).terminationDelayMs : 0);
    if (delay <= 0 || graceSeconds === 0) return this.removePod(ns, name);
    if (meta.deletionTimestamp) return pod;
    if (sim) sim.deleteAt = Date.now() + delay;
    return this.store.put("pods", {
      ...pod,
      metadata: {
        ...meta,
        deletionTimestamp: timestamp(),
        deletionGracePeriodSeconds: graceSeconds,
      },
    });
  }

  private removePod(ns: string, name: string): Obj | undefined {
    this.pods.get(`${ns}/${name}`)?.end(Date.now());
    this.pods.delete(`${ns}/${name}`);
    return this.store.remove("pods", ns, name);
  }

  tick(): void {
    if (this.paused) return;
    const now = Date.now();
    for (const ns of this.store.list("namespaces")) this.namespace(ns);
    for (const d of this.store.list("deployments")) this.deployment(d, now);
    for (const rs of this.store.list("replicasets")) this.replicaSet(rs);
    for (const pod of this.store.list("pods")) this.pod(pod, now);
    for (const d of this.store.list("deployments")) deploymentStatus(this.rollout, d, now);
  }

  private namespace(ns: Obj): void {
    if (status(ns).phase !== "Terminating") return;
    const name = String(metaOf(ns).name);
    for (const d of this.store.list("deployments", name)) {
      this.store.remove("deployments", name, String(metaOf(d).name));
    }
    const left = ["replicasets", "pods"].some((r) => this.store.list(r as "pods", name).length > 0);
    if (!left) this.store.remove("namespaces", undefined, name);
  }

  private deployment(d: Obj, now: number): void {
    const meta = metaOf(d), ns = String(meta.namespace), name = String(meta.name);
    const s = spec(d);
    const template = (s.template ?? {}) as Obj;
    const hash = templateHash(template);
    const rss = this.store.list("replicasets", ns).filter((rs) => ownedBy(rs, d));
    const maxRev = Math.max(
      0,
      ...rss.map((rs) =>
        Number(metaOf(rs).annotations && (metaOf(rs).annotations as Obj)[REVISION] || 0)
      ),
    );
    const found = rss.find((rs) => labels(rs)["pod-template-hash"] === hash);
    if (s.paused) return;
    const replicas = Number(s.replicas ?? 1);
    let current: Obj;
    if (!found) {
      current = this.newReplicaSet(d, hash, maxRev + 1, replicas);
      this.deps.set(`${ns}/${name}`, { key: "", lastProgressAt: now, counts: [], complete: false });
    } else {
      current = found;
      const annotations = (metaOf(current).annotations ??= {}) as Obj;
      if (Number(annotations[REVISION] ?? 0) < maxRev) annotations[REVISION] = String(maxRev + 1);
    }
    const currentAvailable = Number(status(current).availableReplicas ?? 0);
    this.scaleReplicaSet(current, replicas);
    for (const old of rss) {
      if (metaOf(old).name === metaOf(current).name) continue;
      if (currentAvailable >= replicas || replicas === 0) this.scaleReplicaSet(old, 0);
    }
    const rev = String((metaOf(current).annotations as Obj)[REVISION]);
    if ((meta.annotations as Obj | undefined)?.[REVISION] !== rev) {
      this.store.put("deployments", {
        ...d,
        metadata: { ...meta, annotations: { ...(meta.annotations as Obj ?? {}), [REVISION]: rev } },
      });
    }
  }

  private newReplicaSet(d: Obj, hash: string, revision: number, replicas: number): Obj {
    const meta = metaOf(d);
    const template = structuredClone((spec(d).template ?? {}) as Obj);
    const tmeta = (template.metadata ??= {}) as Obj;
    tmeta.labels = { ...(tmeta.labels as Obj ?? {}), "pod-template-hash": hash };
    const selector = structuredClone((spec(d).selector ?? {}) as Obj);
    selector.matchLabels = { ...(selector.matchLabels as Obj ?? {}), "pod-template-hash": hash };
    return this.store.put("replicasets", {
      metadata: {
        name: `${meta.name}-${hash}`,
        namespace: meta.namespace,
        uid: crypto.randomUUID(),
        generation: 1,
        creationTimestamp: timestamp(),
        labels: tmeta.labels,
        annotations: {
          [REVISION]: String(revision),
          "deployment.kubernetes.io/desired-replicas": String(spec(d).replicas ?? 1),
        },
        ownerReferences: [{
          apiVersion: "apps/v1",
          kind: "Deployment",
          name: meta.name,
          uid: meta.uid,
          controller: true,
          blockOwnerDeletion: true,
        }],
      },
      spec: { replicas, minReadySeconds: spec(d).minReadySeconds ?? 0, selector, template },
      status: { replicas: 0, observedGeneration: 1 },
    });
  }

  private scaleReplicaSet(rs: Obj, replicas: number): void {
    const meta = metaOf(rs);
    if (spec(rs).replicas !== replicas) meta.generation = Number(meta.generation ?? 1) + 1;
    this.store.put("replicasets", { ...rs, spec: { ...spec(rs), replicas } });
  }

  private replicaSet(rs: Obj): void {
    const meta = metaOf(rs), ns = String(meta.namespace);
    const owner = ((meta.ownerReferences ?? []) as Obj[])[0];
    const d = owner && this.store.get("deployments", ns, String(owner.name));
    if (!d || metaOf(d).uid !== owner.uid) {
      this.store.remove("replicasets", ns, String(meta.name));
      return;
    }
    const b = this.behaviourOf(ns, String(owner.name));
    const pods = this.store.list("pods", ns).filter((p) => ownedBy(p, rs));
    const active = pods.filter((p) => !metaOf(p).deletionTimestamp);
    const want = Number(spec(rs).replicas ?? 0);
    const conditions: Obj[] = [];
    if (b.failure === "ReplicaFailure" && active.length < want) {
      conditions.push({
        type: "ReplicaFailure",
        status: "True",
        reason: "FailedCreate",
        message: b.message ??
          `pods "${meta.name}-${randomSuffix()}" is forbidden: exceeded quota: compute-resources, requested: limits.cpu=1, used: limits.cpu=2, limited: limits.cpu=2`,
        lastTransitionTime:
          ((status(rs).conditions as Obj[] | undefined)?.[0]?.lastTransitionTime as string) ??
            timestamp(),
      });
    } else {
      for (let i = active.length; i < want; i++) {
        active.push(this.createPod(rs, String(owner.name)));
      }
    }
    const extra = active.length - want;
    if (extra > 0) {
      const rank = (p: Obj) => (this.pods.get(`${ns}/${metaOf(p).name}`)?.ready(b) ? 1 : 0);
      const victims = [...active].sort((a, c) =>
        rank(a) - rank(c) ||
        String(metaOf(c).creationTimestamp).localeCompare(String(metaOf(a).creationTimestamp))
      ).slice(0, extra);
      for (const v of victims) this.terminate(v, b.terminationDelayMs);
    }
    const live = this.store.list("pods", ns).filter((p) =>
      ownedBy(p, rs) && !metaOf(p).deletionTimestamp
    );
    const ready = live.filter((p) => this.pods.get(`${ns}/${metaOf(p).name}`)?.ready(b)).length;
    this.store.put("replicasets", {
      ...rs,
      status: {
        replicas: live.length,
        fullyLabeledReplicas: live.length,
        readyReplicas: ready,
        availableReplicas: ready,
        observedGeneration: meta.generation,
        ...(conditions.length ? { conditions } : {}),
      },
    });
  }

  private createPod(rs: Obj, deployment: string): Obj {
    const meta = metaOf(rs), ns = String(meta.namespace);
    const template = structuredClone((spec(rs).template ?? {}) as Obj);
    const podSpec = (template.spec ?? {}) as Obj;
    defaultPodSpec(podSpec);
    podSpec.serviceAccountName ??= "default";
    podSpec.serviceAccount ??= "default";
    let name = `${meta.name}-${randomSuffix()}`;
    while (this.store.get("pods", ns, name)) name = `${meta.name}-${randomSuffix()}`;
    const sim = new PodSim(ns, name, deployment, (podSpec.containers ?? []) as Obj[]);
    this.pods.set(`${ns}/${name}`, sim);
    const tmeta = (template.metadata ?? {}) as Obj;
    return this.store.put("pods", {
      metadata: {
        name,
        generateName: `${meta.name}-`,
        namespace: ns,
        uid: crypto.randomUUID(),
        creationTimestamp: timestamp(),
        labels: tmeta.labels ?? {},
        ...(tmeta.annotations ? { annotations: tmeta.annotations } : {}),
        ownerReferences: [{
          apiVersion: "apps/v1",
          kind: "ReplicaSet",
          name: meta.name,
          uid: meta.uid,
          controller: true,
          blockOwnerDeletion: true,
        }],
      },
      spec: podSpec,
      status: { phase: "Pending", qosClass: "BestEffort" },
    });
  }

  private pod(pod: Obj, now: number): void {
    const meta = metaOf(pod), ns = String(meta.namespace), name = String(meta.name);
    const sim = this.pods.get(`${ns}/${name}`);
    const owner = ((meta.ownerReferences ?? []) as Obj[])[0];
    const rs = owner && this.store.get("replicasets", ns, String(owner.name));
    if (!sim) {
      this.store.remove("pods", ns, name);
      return;
    }
    if (!rs && !meta.deletionTimestamp) {
      this.terminate(pod);
      return;
    }
    if (sim.deleteAt !== undefined && now >= sim.deleteAt) {
      this.removePod(ns, name);
      return;
    }
    const b = this.behaviourOf(ns, sim.deployment);
    sim.step(now, b);
    const ip = (status(pod).podIP as string | undefined) ??
      `10.244.0.${this.ipCounter++ % 250 + 2}`;
    const next: Obj = { ...pod, status: sim.status(b, ip) };
    if (b.failure !== "Unschedulable") next.spec = { ...spec(pod), nodeName: "double-node" };
    this.store.put("pods", next);
  }
}
