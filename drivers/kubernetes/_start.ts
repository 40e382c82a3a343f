/**
 * Starting a kubernetes service: the pre-flight steps again (a start refuses with the first
 * problem, exit code 3), the namespace created when asked, the manifests server-side applied in
 * order (Namespaces first) with our labels and `spec.replicas` — or, without manifests, the
 * Deployment scaled through `/scale` — then the rollout waited for within `start_timeout`. A
 * failed or cancelled rollout is scaled back to the replicas it had (0 for a new Deployment)
 * before the error is thrown, so a failed start leaves nothing half-up; the failing pods' last
 * lines are kept for the lifecycle's report first.
 *
 * @module
 */
import { ExitCode, ProvisioningError, StartTimeoutError } from "../../core/errors.ts";
import type { DriverContext, Handle, Service } from "../../core/types.ts";
import { applyBody, serverSideApply } from "./_apply.ts";
import { type Kube, KubeError } from "./_client.ts";
import { podLogs, rememberFailure } from "./_logs.ts";
import { applyOrder } from "./_manifests.ts";
import { type Deployment, deploymentPath, ourLabels, selectorString } from "./_objects.ts";
import { apiFinding, check, type Target } from "./_preflight.ts";
import { waitForRollout } from "./_rollout.ts";
import { scaleTo } from "./_scale.ts";

/** What a start needs besides the service. */
export interface StartInput {
  target: Target;
  /** The container whose lines a failure report shows. */
  container?: string;
  unschedulableMs: number;
  /** Where the failing pods' last lines are kept (see `rememberFailure`). */
  failureKey: string;
}

/** Apply (or scale), wait for the rollout, and report the facts status and stop need later. */
export async function startDeployment(
  svc: Service,
  ctx: DriverContext,
  o: StartInput,
): Promise<Handle> {
  const t = o.target;
  const cannot = (message: string, hints: string[] = [], exitCode: number = ExitCode.failed) =>
    new ProvisioningError(`Cannot start "${svc.name}": ${message}`, { exitCode, hints });
  const { findings, ready } = await check(t, ctx, { signal: ctx.signal });
  if (!ready) {
    const f = findings[findings.length - 1];
    throw cannot(f.message, f.hint ? [f.hint] : [], ExitCode.preflight);
  }
  const { kube } = ready;
  const target = { namespace: t.namespace, name: t.deployment };
  const before = ready.live?.spec.replicas ?? 0;
  let generation: number | undefined;
  try {
    if (ready.createNamespace) {
      await kube.json("POST", "/api/v1/namespaces", {
        body: {
          apiVersion: "v1",
          kind: "Namespace",
          metadata: { name: t.namespace, labels: ourLabels(svc.name) },
        },
        signal: ctx.signal,
      });
    }
    if (ready.apply) {
      for (const e of applyOrder(ready.apply)) {
        const out = await serverSideApply(kube, {
          resource: e.resource,
          body: applyBody(e, t),
          namespace: t.namespace,
          signal: ctx.signal,
        });
        if (out.kind === "Deployment" && out.metadata.name === t.deployment) {
          generation = out.metadata.generation;
        }
      }
    } else {
      await scaleTo(kube, { ...target, replicas: t.replicas, signal: ctx.signal });
      generation = (await kube.get<Deployment>(deploymentPath(t.namespace, t.deployment)))?.metadata
        .generation;
    }
  } catch (e) {
    if (!(e instanceof KubeError)) throw e;
    if (ctx.signal?.aborted) throw cannot("Start cancelled");
    const f = apiFinding(e, kube);
    throw cannot(
      `the cluster refused the write: ${f.message}`,
      f.hint ? [f.hint] : [],
      ExitCode.preflight,
    );
  }
  const undo = async () => {
    try {
      await scaleTo(kube, { ...target, replicas: before, signal: AbortSignal.timeout(5_000) });
      return `scaled back to ${before} replica${before === 1 ? "" : "s"}`;
    } catch (e) {
      return `could not scale it back (${
        (e as Error).message
      }): run "provisioning services stop ${svc.name}" once the API answers`;
    }
  };
  let end;
  try {
    end = await waitForRollout(kube, {
      namespace: t.namespace,
      name: t.deployment,
      generation,
      deadline: Date.now() + svc.startup.start_timeout * 1000,
      unschedulableMs: o.unschedulableMs,
      signal: ctx.signal,
    });
  } catch (e) {
    if (!(e instanceof KubeError)) throw e;
    throw cannot(`${ctx.signal?.aborted ? "Start cancelled" : e.message}; ${await undo()}`);
  }
  if (!end.ok) {
    const d = end.snapshot?.deployment;
    const lines = d ? await lastLines(kube, d, t.namespace, o.container) : [];
    rememberFailure(o.failureKey, lines);
    const undone = await undo();
    if (end.timedOut) {
      throw new StartTimeoutError(svc.name, svc.startup.start_timeout, `${end.message}; ${undone}`);
    }
    throw new ProvisioningError(`Cannot start "${svc.name}": ${end.message}; ${undone}`, {
      hints: [
        `kubectl --context ${kube.context} -n ${t.namespace} describe deployment ${t.deployment}`,
      ],
    });
  }
  const d = end.snapshot.deployment!;
  return {
    data: {
      namespace: t.namespace,
      deployment: t.deployment,
      context: kube.context,
      server: kube.server,
      uid: d.metadata.uid,
      generation: d.metadata.generation,
      selector: selectorString(d.spec.selector),
    },
  };
}

/** The failing pods' last lines (at most 2 s), kept for the lifecycle's report of the failure. */
async function lastLines(
  kube: Kube,
  d: Deployment,
  namespace: string,
  container?: string,
): Promise<string[]> {
  const lines: string[] = [];
  try {
    const signal = AbortSignal.timeout(2_000);
    for await (
      const l of podLogs(kube, { namespace, deployment: d, container, lines: 40, signal })
    ) lines.push(l);
  } catch { /* no logs to show */ }
  return lines;
}
