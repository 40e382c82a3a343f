/**
 * The Kubernetes objects the kubernetes driver reads, as they arrive on the wire (JSON: times
 * are strings), and what makes one ours: the labels `app.kubernetes.io/managed-by=provisioning`
 * and `io.provisioning.service=<name>` on its metadata. An object without both is never scaled,
 * deleted or taken over — the docker driver's rule for containers.
 *
 * @module
 */

/** `metadata` of any object. */
export interface Meta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  ownerReferences?: { uid: string; kind: string; name: string; controller?: boolean }[];
}

/** Any object: a manifest document or what the API returns. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: Meta;
  [field: string]: unknown;
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

export interface Deployment extends KubeObject {
  spec: {
    replicas?: number;
    paused?: boolean;
    selector: LabelSelector;
    template?: { spec?: { containers?: { name: string }[] } };
  };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    conditions?: Condition[];
  };
}

export interface ContainerStatus {
  name: string;
  ready?: boolean;
  restartCount?: number;
  containerID?: string;
  state?: {
    waiting?: { reason?: string; message?: string };
    running?: { startedAt?: string };
    terminated?: { exitCode?: number; reason?: string };
  };
}

export interface Pod extends KubeObject {
  spec?: { containers?: { name: string }[] };
  status?: {
    phase?: string;
    conditions?: Condition[];
    containerStatuses?: ContainerStatus[];
    initContainerStatuses?: ContainerStatus[];
  };
}

export interface List<T> {
  items: T[];
  metadata?: { resourceVersion?: string };
}

/** Label: who manages the object (the Kubernetes recommended label). */
export const MANAGED_BY = "app.kubernetes.io/managed-by";
/** Label: the registry service the object belongs to. */
export const SERVICE_LABEL = "io.provisioning.service";
/** Annotation: the container `kubectl logs` picks by default. */
export const DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container";
/** Annotation: the deployment's (and its current ReplicaSet's) revision. */
export const REVISION = "deployment.kubernetes.io/revision";

/** The labels that mark an object as ours. */
export function ourLabels(service: string): Record<string, string> {
  return { [MANAGED_BY]: "provisioning", [SERVICE_LABEL]: service };
}

/** Why `service` cannot be a label value (63 characters, alphanumeric at both ends), if so. */
export function labelProblem(service: string): string | undefined {
  if (service.length <= 63 && /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(service)) {
    return undefined;
  }
  return `Service name "${service}" cannot be a Kubernetes label value (at most 63 characters, starting and ending with a letter or digit)`;
}

/** Whether `o` carries both of our labels for `service`. */
export function isOurs(o: KubeObject, service: string): boolean {
  const labels = o.metadata.labels ?? {};
  return labels[MANAGED_BY] === "provisioning" && labels[SERVICE_LABEL] === service;
}

/** Who an object belongs to, in words, for a refusal. */
export function ownerOf(o: KubeObject): string {
  const labels = o.metadata.labels ?? {};
  if (labels[MANAGED_BY] === "provisioning" && labels[SERVICE_LABEL]) {
    return `it belongs to service "${labels[SERVICE_LABEL]}"`;
  }
  if (labels[MANAGED_BY]) return `it is managed by "${labels[MANAGED_BY]}"`;
  const helm = o.metadata.annotations?.["meta.helm.sh/release-name"];
  if (helm) return `it belongs to Helm release "${helm}"`;
  return `it has no ${MANAGED_BY}=provisioning label`;
}

/** `Deployment demo/web`, `Namespace demo`. */
export function describe(o: KubeObject): string {
  const ns = o.metadata.namespace;
  return `${o.kind ?? "object"} ${ns ? `${ns}/` : ""}${o.metadata.name}`;
}

/** A label selector as the API's `labelSelector` query parameter. */
export function selectorString(sel: LabelSelector): string {
  const parts = Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel.matchExpressions ?? []) {
    const values = (e.values ?? []).join(",");
    if (e.operator === "In") parts.push(`${e.key} in (${values})`);
    else if (e.operator === "NotIn") parts.push(`${e.key} notin (${values})`);
    else if (e.operator === "Exists") parts.push(e.key);
    else if (e.operator === "DoesNotExist") parts.push(`!${e.key}`);
  }
  return parts.join(",");
}

/** The condition of `type`, if any. */
export function condition(
  conditions: Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** API path of the deployments of `namespace` (or of deployment `name`). */
export function deploymentPath(namespace: string, name?: string): string {
  const base = `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/deployments`;
  return name ? `${base}/${encodeURIComponent(name)}` : base;
}

/** API path of the `/scale` subresource of deployment `name`. */
export function scalePath(namespace: string, name: string): string {
  return `${deploymentPath(namespace, name)}/scale`;
}

/** API path of the pods of `namespace` (or of pod `name`). */
export function podPath(namespace: string, name?: string): string {
  const base = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`;
  return name ? `${base}/${encodeURIComponent(name)}` : base;
}

/** API path of the log of pod `name`. */
export function logPath(namespace: string, name: string): string {
  return `${podPath(namespace, name)}/log`;
}
