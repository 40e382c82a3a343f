/**
 * What the API double knows about the shape of its kinds: the known fields of Deployment,
 * PodTemplate, PodSpec and Container (for `fieldValidation=Strict`, and for dropping unknown
 * fields the way a real API server does), defaulting, and the validation errors that matter to a
 * deployment driver (name, selector/labels, containers, immutable selector).
 *
 * A schema is `"scalar"`, `"map"` (string to string), `"any"` (not checked), an object of
 * field schemas, or a one-element array (a list of that schema).
 */

export type Schema = "scalar" | "map" | "any" | { [field: string]: Schema } | [Schema];
export type Obj = Record<string, unknown>;

const objectMeta: Schema = {
  name: "scalar",
  generateName: "scalar",
  namespace: "scalar",
  uid: "scalar",
  resourceVersion: "scalar",
  generation: "scalar",
  creationTimestamp: "scalar",
  deletionTimestamp: "scalar",
  deletionGracePeriodSeconds: "scalar",
  labels: "map",
  annotations: "map",
  finalizers: ["scalar"],
  ownerReferences: ["any"],
  managedFields: ["any"],
  selfLink: "scalar",
};

const container: Schema = {
  name: "scalar",
  image: "scalar",
  command: ["scalar"],
  args: ["scalar"],
  workingDir: "scalar",
  ports: [{
    name: "scalar",
    hostPort: "scalar",
    containerPort: "scalar",
    protocol: "scalar",
    hostIP: "scalar",
  }],
  envFrom: ["any"],
  env: [{ name: "scalar", value: "scalar", valueFrom: "any" }],
  resources: "any",
  resizePolicy: ["any"],
  restartPolicy: "scalar",
  volumeMounts: ["any"],
  volumeDevices: ["any"],
  livenessProbe: "any",
  readinessProbe: "any",
  startupProbe: "any",
  lifecycle: "any",
  terminationMessagePath: "scalar",
  terminationMessagePolicy: "scalar",
  imagePullPolicy: "scalar",
  securityContext: "any",
  stdin: "scalar",
  stdinOnce: "scalar",
  tty: "scalar",
};

const podSpecAny = [
  "volumes",
  "affinity",
  "tolerations",
  "hostAliases",
  "dnsConfig",
  "readinessGates",
  "overhead",
  "topologySpreadConstraints",
  "os",
  "schedulingGates",
  "resourceClaims",
  "securityContext",
  "imagePullSecrets",
  "ephemeralContainers",
];
const podSpecScalars = [
  "restartPolicy",
  "terminationGracePeriodSeconds",
  "activeDeadlineSeconds",
  "dnsPolicy",
  "serviceAccountName",
  "serviceAccount",
  "automountServiceAccountToken",
  "nodeName",
  "hostNetwork",
  "hostPID",
  "hostIPC",
  "shareProcessNamespace",
  "hostname",
  "subdomain",
  "schedulerName",
  "priorityClassName",
  "priority",
  "runtimeClassName",
  "enableServiceLinks",
  "preemptionPolicy",
  "setHostnameAsFQDN",
  "hostUsers",
];

export const podSpec: Schema = {
  containers: [container],
  initContainers: [container],
  nodeSelector: "map",
  ...Object.fromEntries(podSpecAny.map((f) => [f, "any" as Schema])),
  ...Object.fromEntries(podSpecScalars.map((f) => [f, "scalar" as Schema])),
};

export const deploymentSchema: Schema = {
  apiVersion: "scalar",
  kind: "scalar",
  metadata: objectMeta,
  spec: {
    replicas: "scalar",
    selector: { matchLabels: "map", matchExpressions: ["any"] },
    template: { metadata: objectMeta, spec: podSpec },
    strategy: { type: "scalar", rollingUpdate: { maxSurge: "scalar", maxUnavailable: "scalar" } },
    minReadySeconds: "scalar",
    revisionHistoryLimit: "scalar",
    paused: "scalar",
    progressDeadlineSeconds: "scalar",
  },
  status: "any",
};

export const namespaceSchema: Schema = {
  apiVersion: "scalar",
  kind: "scalar",
  metadata: objectMeta,
  spec: { finalizers: ["scalar"] },
  status: "any",
};

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** Paths of fields the schema does not know, written like the API server (`spec.replica`, `a[0].b`). */
export function unknownFields(value: unknown, schema: Schema, path = ""): string[] {
  if (schema === "any" || schema === "scalar" || schema === "map" || value === null) return [];
  if (Array.isArray(schema)) {
    if (!Array.isArray(value)) return [];
    return value.flatMap((v, i) => unknownFields(v, schema[0], `${path}[${i}]`));
  }
  if (!isObj(value)) return [];
  return Object.entries(value).flatMap(([k, v]) => {
    const p = path ? `${path}.${k}` : k;
    return k in schema ? unknownFields(v, schema[k], p) : [p];
  });
}

/** A copy of `value` without the fields the schema does not know. */
export function prune(value: unknown, schema: Schema): unknown {
  if (schema === "any" || schema === "scalar" || schema === "map" || value === null) return value;
  if (Array.isArray(schema)) {
    return Array.isArray(value) ? value.map((v) => prune(v, schema[0])) : value;
  }
  if (!isObj(value)) return value;
  return Object.fromEntries(
    Object.entries(value).filter(([k]) => k in schema).map(([k, v]) => [k, prune(v, schema[k])]),
  );
}

/** Fills in what the API server defaults on a Deployment (in place). */
export function defaultDeployment(d: Obj): void {
  const spec = (d.spec ??= {}) as Obj;
  spec.replicas ??= 1;
  spec.revisionHistoryLimit ??= 10;
  spec.progressDeadlineSeconds ??= 600;
  const strategy = (spec.strategy ??= {}) as Obj;
  strategy.type ??= "RollingUpdate";
  if (strategy.type === "RollingUpdate") {
    const ru = (strategy.rollingUpdate ??= {}) as Obj;
    ru.maxSurge ??= "25%";
    ru.maxUnavailable ??= "25%";
  }
  const template = (spec.template ??= {}) as Obj;
  template.metadata ??= {};
  defaultPodSpec((template.spec ??= {}) as Obj);
}

/** Fills in PodSpec and Container defaults (in place). */
export function defaultPodSpec(spec: Obj): void {
  spec.restartPolicy ??= "Always";
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= "ClusterFirst";
  spec.schedulerName ??= "default-scheduler";
  spec.securityContext ??= {};
  for (const c of [spec.containers, spec.initContainers].flat()) {
    if (!isObj(c)) continue;
    const image = String(c.image ?? "");
    const tag = /:[^/]+$/.test(image) ? image.slice(image.lastIndexOf(":") + 1) : "";
    c.imagePullPolicy ??= image.includes("@") || (tag && tag !== "latest")
      ? "IfNotPresent"
      : "Always";
    c.terminationMessagePath ??= "/dev/termination-log";
    c.terminationMessagePolicy ??= "File";
    c.resources ??= {};
    for (const p of Array.isArray(c.ports) ? c.ports : []) if (isObj(p)) p.protocol ??= "TCP";
  }
}

export type Cause = { reason: string; message: string; field: string };

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Validation of a Namespace; an empty list when valid. */
export function validateNamespace(ns: Obj): Cause[] {
  const name = String((ns.metadata as Obj | undefined)?.name ?? "");
  if (!name) return [required("metadata.name")];
  if (!DNS_LABEL.test(name) || name.length > 63) {
    return [
      invalid(
        "metadata.name",
        name,
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
      ),
    ];
  }
  return [];
}

/** Validation of a (defaulted) Deployment, and of its change from `old` when given. */
export function validateDeployment(d: Obj, old?: Obj): Cause[] {
  const causes: Cause[] = [];
  const meta = (d.metadata ?? {}) as Obj;
  const name = String(meta.name ?? "");
  if (!name) causes.push(required("metadata.name"));
  else if (!DNS_SUBDOMAIN.test(name) || name.length > 253) {
    causes.push(
      invalid(
        "metadata.name",
        name,
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'",
      ),
    );
  }
  const spec = (d.spec ?? {}) as Obj;
  if (typeof spec.replicas !== "number" || spec.replicas < 0 || !Number.isInteger(spec.replicas)) {
    causes.push(invalid("spec.replicas", spec.replicas, "must be greater than or equal to 0"));
  }
  const selector = spec.selector as Obj | undefined;
  const matchLabels = (selector?.matchLabels ?? {}) as Record<string, string>;
  const template = (spec.template ?? {}) as Obj;
  const labels = ((template.metadata as Obj | undefined)?.labels ?? {}) as Record<string, string>;
  if (!selector) causes.push(required("spec.selector"));
  else if (Object.keys(matchLabels).length === 0 && !Array.isArray(selector.matchExpressions)) {
    causes.push(invalid("spec.selector", selector, "empty selector is invalid for deployment"));
  } else if (Object.entries(matchLabels).some(([k, v]) => labels[k] !== v)) {
    causes.push(
      invalid(
        "spec.template.metadata.labels",
        labels,
        "`selector` does not match template `labels`",
      ),
    );
  }
  const containers = ((template.spec as Obj | undefined)?.containers ?? []) as Obj[];
  if (!Array.isArray(containers) || containers.length === 0) {
    causes.push(required("spec.template.spec.containers"));
  }
  const seen = new Set<string>();
  (Array.isArray(containers) ? containers : []).forEach((c, i) => {
    const at = `spec.template.spec.containers[${i}]`;
    const cname = String(c?.name ?? "");
    if (!cname) causes.push(required(`${at}.name`));
    else if (!DNS_LABEL.test(cname)) {
      causes.push(
        invalid(
          `${at}.name`,
          cname,
          "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
        ),
      );
    } else if (seen.has(cname)) {
      causes.push({
        reason: "FieldValueDuplicate",
        message: `Duplicate value: "${cname}"`,
        field: `${at}.name`,
      });
    }
    seen.add(cname);
    if (!c?.image) causes.push(required(`${at}.image`));
  });
  const oldSelector = (old?.spec as Obj | undefined)?.selector;
  if (old && JSON.stringify(oldSelector) !== JSON.stringify(selector)) {
    causes.push(invalid("spec.selector", selector, "field is immutable"));
  }
  return causes;
}

function required(field: string): Cause {
  return { reason: "FieldValueRequired", message: "Required value", field };
}

function invalid(field: string, value: unknown, detail: string): Cause {
  return {
    reason: "FieldValueInvalid",
    message: `Invalid value: ${JSON.stringify(value)}: ${detail}`,
    field,
  };
}
