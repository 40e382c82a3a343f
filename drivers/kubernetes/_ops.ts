/**
 * The kubernetes driver's stop, status and logs once the cluster has to be asked — imported by
 * `drivers/kubernetes.ts` on first use, so a command that only lists services loads none of the
 * driver's working parts. Failures to reach the cluster or read the kubeconfig become one-line
 * `ProvisioningError`s (`Cannot stop "web": …`); a status read turns them into a status.
 *
 * @module
 */
import { ProvisioningError } from "../../core/errors.ts";
import type {
  DriverContext,
  LogLine,
  LogOptions,
  RuntimeStatus,
  Service,
  ServiceState,
  StopOptions,
  StopResult,
} from "../../core/types.ts";
import { connect, type Kube, KubeError } from "./_client.ts";
import { KubeconfigError } from "./_errors.ts";
import { podLogLines, takeFailure } from "./_logs.ts";
import { readManifests } from "./_manifests.ts";
import { type Deployment, deploymentPath, isOurs } from "./_objects.ts";
import { snapshot } from "./_rollout.ts";
import { stopPods } from "./_scale.ts";
import { recordedFailure, runtimeStatus } from "./_status.ts";

/** The keys of `[services.X.deployment.kubernetes]` these read. */
export interface OpsConfig {
  namespace: string;
  deployment_name: string;
  kubeconfig?: string;
  manifests_path?: string;
  container?: string;
  stop_policy: "scale" | "delete";
  unschedulable_timeout: number;
}

function kubeFor(cfg: OpsConfig, ctx: DriverContext, context?: string): Promise<Kube> {
  return connect({ kubeconfig: cfg.kubeconfig, env: ctx.env, cwd: ctx.cwd, context });
}

const isKube = (e: unknown): e is KubeError | KubeconfigError =>
  e instanceof KubeError || e instanceof KubeconfigError;

/** Stop by the service's `stop_policy`; a missing or foreign Deployment is left alone (`{}`). */
export async function stopService(
  svc: Service,
  ctx: DriverContext,
  opts: StopOptions & { cfg: OpsConfig; context?: string },
): Promise<StopResult> {
  const { cfg } = opts;
  const signal = opts.signal ?? ctx.signal;
  try {
    const kube = await kubeFor(cfg, ctx, opts.context);
    const d = await kube.get<Deployment>(deploymentPath(cfg.namespace, cfg.deployment_name), {
      signal,
    });
    if (!d || !isOurs(d, svc.name)) return {}; // none, or not ours: never touched
    const manifests = cfg.stop_policy === "delete" && cfg.manifests_path
      ? await readManifests(cfg.manifests_path, ctx.cwd).catch(() => undefined)
      : undefined;
    return await stopPods(kube, {
      namespace: cfg.namespace,
      deployment: d,
      service: svc.name,
      policy: cfg.stop_policy,
      manifests,
      timeoutS: svc.shutdown.timeout,
      force: opts.force,
      signal,
    });
  } catch (e) {
    if (!isKube(e)) throw e;
    throw new ProvisioningError(`Cannot stop "${svc.name}": ${e.message}`, {
      hints: e instanceof KubeconfigError ? [e.hint] : [],
    });
  }
}

/** What the cluster says of a service this home started (see `_status.ts`). */
export async function serviceStatus(
  svc: Service,
  ctx: DriverContext,
  o: { cfg: OpsConfig; rec: ServiceState; context?: string },
): Promise<RuntimeStatus> {
  const { cfg } = o;
  const target = `${cfg.namespace}/${cfg.deployment_name}`;
  try {
    const kube = await kubeFor(cfg, ctx, o.context);
    const selector = o.rec.handle?.selector;
    const snap = await snapshot(kube, {
      namespace: cfg.namespace,
      name: cfg.deployment_name,
      signal: AbortSignal.timeout(5_000),
      selector: typeof selector === "string" ? selector : undefined,
    });
    return runtimeStatus(snap, {
      service: svc.name,
      target,
      rec: o.rec,
      unschedulableMs: cfg.unschedulable_timeout * 1000,
    });
  } catch (e) {
    if (!isKube(e)) throw e;
    if (o.rec.status === "failed") return recordedFailure(o.rec);
    return { status: "failed", message: `Cannot see Deployment ${target}: ${e.message}` };
  }
}

/**
 * The service's pod logs with the cluster's time of each line (or the lines a failed start
 * kept, once, without times).
 */
export async function* serviceLogLines(
  svc: Service,
  ctx: DriverContext,
  opts: LogOptions & { cfg: OpsConfig; context?: string; failureKey: string },
): AsyncGenerator<LogLine> {
  const { cfg } = opts;
  const lines = opts.lines ?? 50;
  const kept = opts.follow ? undefined : takeFailure(opts.failureKey);
  if (kept) return yield* kept.slice(-lines).map((line) => ({ line }));
  const signal = opts.signal ?? ctx.signal;
  let kube: Kube, d: Deployment | undefined;
  try {
    kube = await kubeFor(cfg, ctx, opts.context);
    d = await kube.get<Deployment>(deploymentPath(cfg.namespace, cfg.deployment_name), { signal });
  } catch (e) {
    if (!isKube(e)) throw e;
    throw new ProvisioningError(`Cannot show logs of "${svc.name}": ${e.message}`);
  }
  if (!d) return;
  if (!isOurs(d, svc.name)) {
    throw new ProvisioningError(
      `Cannot show logs of "${svc.name}": Deployment ${cfg.namespace}/${cfg.deployment_name} is not ours`,
    );
  }
  yield* podLogLines(kube, {
    namespace: cfg.namespace,
    deployment: d,
    container: cfg.container,
    lines,
    follow: opts.follow,
    since: opts.since,
    signal,
  });
}
