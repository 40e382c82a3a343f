/**
 * Kubernetes deployment mode: `[services.X.deployment.kubernetes]` runs a service as a
 * Deployment on a cluster, through the official client (`@kubernetes/client-node` 1.4, imported
 * lazily: only when a kubernetes service is touched; see `kubernetes/_client.ts`).
 *
 * ```toml
 * [services.orchestrator.deployment]
 * mode = "kubernetes"
 * [services.orchestrator.deployment.kubernetes]
 * namespace = "provisioning"
 * deployment_name = "orchestrator"
 * manifests_path = "${HOME}/.provisioning/k8s/orchestrator/"
 * ```
 *
 * Start server-side applies the manifests (field manager `provisioning`) with our labels and
 * `spec.replicas`, or without manifests scales the existing Deployment, then waits for the
 * rollout as `kubectl rollout status` does and fails fast, naming pod, container and reason, on
 * the failures a rollout never recovers from; a failed start scales back to what it was. Stop
 * scales to 0 (or, `stop_policy = "delete"`, deletes our objects) and waits for the pods to go.
 * A Deployment without our labels is never touched. The cluster restarts crashed pods, so the
 * supervisor never does. docs/kubernetes.md describes it all.
 *
 * @module
 */
import { z } from "zod";
import { defineDriver, driverConfig } from "../core/plugins/api.ts";
import { readState } from "../core/state/store.ts";
import type {
  DriverContext,
  Finding,
  Handle,
  LogLine,
  LogOptions,
  RuntimeStatus,
  Service,
  StopOptions,
  StopResult,
} from "../core/types.ts";
import type { Target } from "./kubernetes/_preflight.ts";

/** The driver's working parts, imported on first use (`services list` needs none of them). */
const ops = () => import("./kubernetes/_ops.ts");

const SECONDS = "Must be between 0 and 86400 seconds";
const dnsLabel = z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "Invalid Kubernetes name");

/** Schema of `[services.X.deployment.kubernetes]`. */
export const kubernetesConfig = z.strictObject({
  namespace: dnsLabel.default("default"),
  deployment_name: dnsLabel,
  /** A folder (its .yaml/.yml/.json files) or one file, as `kubectl apply -f`. */
  manifests_path: z.string().min(1).optional(),
  /** A kubeconfig context (default: the kubeconfig's current-context). */
  context: z.string().min(1).optional(),
  /** Kubeconfig file(s), `:`-separated (default: KUBECONFIG, ~/.kube/config, in-cluster). */
  kubeconfig: z.string().min(1).optional(),
  replicas: z.number().int().min(1).default(1),
  /** The container `logs` shows (default: the default-container annotation, else the first). */
  container: z.string().min(1).optional(),
  /** `scale` to 0 (keep the Deployment), or `delete` the objects carrying our labels. */
  stop_policy: z.enum(["scale", "delete"]).default("scale"),
  create_namespace: z.boolean().default(false),
  /** Seconds a pod may stay unschedulable before a start fails (a cluster autoscaler may need more). */
  unschedulable_timeout: z.number().min(0, SECONDS).max(86_400, SECONDS).default(15),
}).refine((c) => c.stop_policy !== "delete" || c.manifests_path !== undefined, {
  path: ["stop_policy"],
  message:
    'stop_policy = "delete" needs manifests_path (without them a deleted Deployment cannot be created again)',
});
export type KubernetesConfig = z.infer<typeof kubernetesConfig>;

function configOf(svc: Service): KubernetesConfig {
  return driverConfig(kubernetesDriver, svc);
}

function targetOf(svc: Service, cfg: KubernetesConfig, context = cfg.context): Target {
  return {
    service: svc.name,
    namespace: cfg.namespace,
    deployment: cfg.deployment_name,
    replicas: cfg.replicas,
    manifests_path: cfg.manifests_path,
    kubeconfig: cfg.kubeconfig,
    context,
    create_namespace: cfg.create_namespace,
  };
}

/** The context a started service was started in (so a changed current-context cannot redirect a stop). */
async function recorded(svc: Service, ctx: DriverContext) {
  const rec = await readState(ctx.paths, svc.name);
  const context = typeof rec?.handle?.context === "string" ? rec.handle.context : undefined;
  return { rec, context: context ?? configOf(svc).context };
}

/** Key of a service's kept failure lines: one home, one service. */
const failureKey = (svc: Service, ctx: DriverContext) => `${ctx.paths.home}\0${svc.name}`;

async function preflight(svc: Service, ctx: DriverContext): Promise<Finding[]> {
  const { check } = await import("./kubernetes/_preflight.ts");
  return (await check(targetOf(svc, configOf(svc)), ctx, { dryRun: true })).findings;
}

async function start(svc: Service, ctx: DriverContext): Promise<Handle> {
  const cfg = configOf(svc);
  const { startDeployment } = await import("./kubernetes/_start.ts");
  return await startDeployment(svc, ctx, {
    target: targetOf(svc, cfg),
    container: cfg.container,
    unschedulableMs: cfg.unschedulable_timeout * 1000,
    failureKey: failureKey(svc, ctx),
  });
}

async function stop(svc: Service, ctx: DriverContext, opts: StopOptions = {}): Promise<StopResult> {
  const { context } = await recorded(svc, ctx);
  return (await ops()).stopService(svc, ctx, { ...opts, cfg: configOf(svc), context });
}

async function status(svc: Service, ctx: DriverContext): Promise<RuntimeStatus> {
  const { rec, context } = await recorded(svc, ctx);
  // Never started from this home, or stopped by it: the cluster is not asked, and the client is
  // not loaded (so `services list` of services nobody started stays as fast as for binaries).
  if (!rec) {
    return {
      status: "stopped",
      message: "Not started (the cluster is asked once provisioning starts it)",
    };
  }
  if (rec.status === "stopped") {
    return { status: "stopped", message: `Stopped${rec.since ? ` at ${rec.since}` : ""}` };
  }
  return (await ops()).serviceStatus(svc, ctx, { cfg: configOf(svc), rec, context });
}

async function* logs(
  svc: Service,
  ctx: DriverContext,
  opts: LogOptions = {},
): AsyncGenerator<string> {
  for await (const l of logLines(svc, ctx, opts)) yield l.line;
}

/** `logs` with the cluster's time of every line (`kubectl logs --timestamps`). */
async function* logLines(
  svc: Service,
  ctx: DriverContext,
  opts: LogOptions = {},
): AsyncGenerator<LogLine> {
  const { context } = await recorded(svc, ctx);
  yield* (await ops()).serviceLogLines(svc, ctx, {
    cfg: configOf(svc),
    ...opts,
    context,
    failureKey: failureKey(svc, ctx),
  });
}

/** The kubernetes deployment driver. */
const kubernetesDriver = defineDriver<KubernetesConfig>({
  mode: "kubernetes",
  config: kubernetesConfig,
  // The cluster restarts crashed pods; the supervisor never does.
  // The cluster restarts pods; start returns once the rollout is complete (its readiness).
  capabilities: { supervision: "engine", owns: "container", readiness: "driver" },
  preflight,
  start,
  stop,
  status,
  logs,
  logLines,
});

export default kubernetesDriver;
