/**
 * The status of a kubernetes service: what the cluster says, read against what this home last
 * did (the recorded state). A pure read: nothing is written; a record the cluster contradicts is
 * left for the next start or stop to reconcile.
 *
 * - `running`: the rollout is complete (`kubectl rollout status` would say so); uptime from the
 *   moment its last pod became ready, restarts summed over the pods' containers.
 * - `starting`: replicas wanted but not all updated and available (`k of n updated replicas are
 *   available`); `failed` when a current pod shows a fail-fast reason, with that reason.
 * - `stopping`: scaled to 0 with pods still terminating; `stopped`: scaled to 0 and none left.
 * - A Deployment that is gone, or not ours, is `failed` (we had started it) or `stopped`.
 *
 * @module
 */
import type { RuntimeStatus, ServiceState } from "../../core/types.ts";
import { condition, describe, isOurs, ownerOf, type Pod, REVISION } from "./_objects.ts";
import { describeFailure, podFailure, rolloutProgress, type Snapshot } from "./_rollout.ts";

/** Whether the record says we meant it to run. */
const meantToRun = (rec?: ServiceState) =>
  rec?.status === "running" || rec?.status === "starting" || rec?.status === "backoff";

/** The runtime status of a service whose Deployment is `snap` (`namespace/name` when missing). */
export function runtimeStatus(
  snap: Snapshot,
  o: { service: string; target: string; rec?: ServiceState; unschedulableMs: number },
): RuntimeStatus {
  const d = snap.deployment;
  const { rec } = o;
  if (!d) {
    if (rec?.status === "failed") return recordedFailure(rec);
    return meantToRun(rec)
      ? {
        status: "failed",
        message: `Deployment ${o.target} is gone (deleted outside provisioning)`,
      }
      : { status: "stopped", message: `No Deployment ${o.target}` };
  }
  if (!isOurs(d, o.service)) {
    return {
      status: rec?.status === "failed" ? "failed" : "stopped",
      message: `${describe(d)} is not ours (${ownerOf(d)}); it is left alone`,
    };
  }
  const restarts = sum(
    snap.pods.flatMap((p) => (p.status?.containerStatuses ?? []).map((c) => c.restartCount ?? 0)),
  );
  const wanted = d.spec.replicas ?? 1;
  const live = snap.pods.filter((p) => !p.metadata.deletionTimestamp);
  if (wanted === 0) {
    if (snap.pods.length) {
      return {
        status: "stopping",
        message: `${describe(d)} is scaled to 0; ${snap.pods.length} pod(s) terminating`,
      };
    }
    if (rec?.status === "failed") return recordedFailure(rec);
    return { status: "stopped", message: `${describe(d)} is scaled to 0` };
  }
  const progress = rolloutProgress(d, snap.current, {
    now: Date.now(),
    unschedulable: new Map(),
    unschedulableMs: o.unschedulableMs,
  });
  const revision = d.metadata.annotations?.[REVISION];
  const counts = `${d.status?.availableReplicas ?? 0}/${wanted} available${
    revision ? `, revision ${revision}` : ""
  }`;
  if (progress.done) {
    return {
      status: "running",
      restarts: restarts || undefined,
      uptime_s: uptime(live),
      message: `${describe(d)}: ${counts}`,
    };
  }
  const failure = progress.failure ?? podFailure(snap.current, {
    now: Date.now(),
    unschedulable: new Map(),
    unschedulableMs: Infinity,
  });
  if (failure) {
    return {
      status: "failed",
      restarts: restarts || undefined,
      message: `${describe(d)}: ${describeFailure(failure)}`,
    };
  }
  if (rec?.status === "stopping") {
    return { status: "stopping", message: `${describe(d)}: ${counts}` };
  }
  const available = condition(d.status?.conditions, "Available")?.status === "True";
  return {
    status: "starting",
    restarts: restarts || undefined,
    message: `${describe(d)}: ${
      progress.message.replace(/^Waiting for deployment "[^"]+" rollout to finish: /, "").replace(
        /\.\.\.$/,
        "",
      )
    }${available ? " (minimum availability met)" : ""}`,
  };
}

/** The recorded failure (its reason and the service's last lines). */
export function recordedFailure(rec: ServiceState): RuntimeStatus {
  return {
    status: "failed",
    message: rec.message,
    ...(rec.last_log_lines?.length ? { last_log_lines: rec.last_log_lines } : {}),
  };
}

/** Seconds since the last of the ready pods became ready. */
function uptime(pods: Pod[]): number | undefined {
  const times = pods.map((p) =>
    Date.parse(condition(p.status?.conditions, "Ready")?.lastTransitionTime ?? "")
  )
    .filter(Number.isFinite);
  if (!times.length) return undefined;
  return Math.max(0, Math.floor((Date.now() - Math.max(...times)) / 1000));
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
