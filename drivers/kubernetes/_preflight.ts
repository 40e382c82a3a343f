/**
 * What a kubernetes service needs before it can start, checked in order, one finding each (with
 * a hint): its name fits a label; a kubeconfig and its context; the API answers `/version`
 * (within 5 s; connection refused, TLS, 401 and 403 each in their own words); the namespace
 * exists or `create_namespace` is set; the manifests parse, hold the Deployment and name no other
 * namespace, and a server-side dry run (`dryRun=All`, `fieldValidation=Strict`) accepts each —
 * or, without manifests, the Deployment exists; and no object it would write exists without our
 * labels. The start runs the same steps (without the dry run) and refuses with the first problem.
 *
 * @module
 */
import type { DriverContext, Finding } from "../../core/types.ts";
import { applyBody, type Existing, foreign, lookUp, serverSideApply, toApply } from "./_apply.ts";
import { connect, type Kube, KubeError } from "./_client.ts";
import { KubeconfigError, ManifestError } from "./_errors.ts";
import { checkManifests, readManifests } from "./_manifests.ts";
import {
  type Deployment,
  deploymentPath,
  describe,
  isOurs,
  labelProblem,
  ownerOf,
} from "./_objects.ts";

/** The service's table, as the checks read it. */
export interface Target {
  service: string;
  namespace: string;
  deployment: string;
  replicas: number;
  manifests_path?: string;
  kubeconfig?: string;
  context?: string;
  create_namespace: boolean;
}

/** What the start needs once every check passed. */
export interface Ready {
  kube: Kube;
  /** The Deployment as it is now (undefined: the manifests create it). */
  live?: Deployment;
  /** The manifests to apply, with their resources (undefined without `manifests_path`). */
  apply?: Existing[];
  /** The namespace is missing and is to be created. */
  createNamespace: boolean;
}

const ok = (message: string): Finding => ({ ok: true, kind: "prerequisite", message });
const bad = (message: string, hint: string): Finding => ({
  ok: false,
  kind: "prerequisite",
  message,
  hint,
});

/** Run the checks; `ready` is set when all passed. With `dryRun`, manifests are dry-run applied. */
export async function check(
  t: Target,
  ctx: DriverContext,
  o: { dryRun?: boolean; signal?: AbortSignal } = {},
): Promise<{ findings: Finding[]; ready?: Ready }> {
  const findings: Finding[] = [];
  const stop = (f: Finding) => ({ findings: [...findings, f] });
  const name = labelProblem(t.service);
  if (name) return stop(bad(name, "Rename the service, or run it in another mode"));
  let kube: Kube;
  try {
    kube = await connect({
      kubeconfig: t.kubeconfig,
      env: ctx.env,
      cwd: ctx.cwd,
      context: t.context,
    });
  } catch (e) {
    if (e instanceof KubeconfigError) return stop(bad(e.message, e.hint));
    throw e;
  }
  const cfg = kube.config;
  findings.push(
    ok(`Kubeconfig: ${cfg.origin} (context "${cfg.context}", cluster "${cfg.cluster.name}")`),
  );
  const signal = o.signal ?? ctx.signal;
  try {
    // The manifests are read before the cluster is asked anything: a typo needs no cluster.
    const manifests = t.manifests_path ? await readManifests(t.manifests_path, ctx.cwd) : undefined;
    if (manifests) {
      checkManifests(manifests, {
        namespace: t.namespace,
        deployment: t.deployment,
        path: t.manifests_path!,
      });
    }
    const v = await kube.json<{ gitVersion?: string }>("GET", "/version", {
      signal,
      timeoutMs: 5_000,
    });
    findings.push(ok(`Kubernetes API reachable: ${v.gitVersion ?? "?"} at ${kube.server}`));
    const target = `${t.namespace}/${t.deployment}`;
    const ns = await kube.get(`/api/v1/namespaces/${encodeURIComponent(t.namespace)}`, { signal });
    const nsInManifests = manifests?.some((m) =>
      m.object.kind === "Namespace" && m.object.metadata.name === t.namespace
    );
    if (!ns && !t.create_namespace && !nsInManifests) {
      return stop(bad(
        `Namespace "${t.namespace}" does not exist`,
        `Set create_namespace = true in the service's table, add it to the manifests, or: kubectl create namespace ${t.namespace}`,
      ));
    }
    findings.push(ok(
      ns
        ? `Namespace ${t.namespace} exists`
        : `Namespace ${t.namespace} will be created${nsInManifests ? " from the manifests" : ""}`,
    ));
    const live = ns
      ? await kube.get<Deployment>(deploymentPath(t.namespace, t.deployment), { signal })
      : undefined;
    if (live && !isOurs(live, t.service)) return stop(foreignDeployment(live, t));
    if (!manifests) {
      if (!live) {
        return stop(bad(
          `Deployment ${target} not found, and there is no manifests_path to create it from`,
          "Create it (kubectl apply -f …) and label it ours, or set manifests_path",
        ));
      }
      findings.push(ok(`Deployment ${target} exists (ours)`));
      return { findings, ready: { kube, live, createNamespace: false } };
    }
    const existing = await lookUp(kube, { manifests, namespace: t.namespace, signal });
    const taken = foreign(existing, t.service);
    if (taken.length) {
      return stop(bad(
        `Cannot take over ${taken.join(", ")}: not labelled as ours`,
        "Remove or rename that object, or label it ours (app.kubernetes.io/managed-by=provisioning, io.provisioning.service=" +
          t.service + ")",
      ));
    }
    const apply = toApply(existing, t.service);
    // Objects in a namespace that does not exist yet cannot be dry-run (the server says 404).
    const dry = o.dryRun ? apply.filter((e) => ns || !e.resource.namespaced) : [];
    for (const e of dry) {
      try {
        await serverSideApply(kube, {
          resource: e.resource,
          body: applyBody(e, t),
          namespace: t.namespace,
          dryRun: true,
          signal,
        });
      } catch (err) {
        if (!(err instanceof KubeError) || err.unreachable) throw err;
        return stop(rejected(e, err));
      }
    }
    const skipped = o.dryRun ? apply.length - dry.length : 0;
    findings.push(ok(
      `Manifests: ${manifests.length} object(s) in ${t.manifests_path}${
        !o.dryRun
          ? ""
          : skipped
          ? ` (${dry.length} accepted by a server-side dry run; ${skipped} not dry-run: their namespace does not exist yet)`
          : " accepted by a server-side dry run"
      }`,
    ));
    return { findings, ready: { kube, live, apply, createNamespace: !ns && !nsInManifests } };
  } catch (e) {
    if (e instanceof ManifestError) return stop(bad(e.message, e.hint));
    if (e instanceof KubeError) return stop(apiFinding(e, kube));
    throw e;
  }
}

function foreignDeployment(live: Deployment, t: Target): Finding {
  const theirs = live.metadata.labels?.["io.provisioning.service"];
  return bad(
    `Deployment ${describe(live).replace(/^Deployment /, "")} exists and is not ours: ${
      ownerOf(live)
    }`,
    theirs
      ? `Choose another deployment_name for "${t.service}"`
      : `To hand it to provisioning: kubectl label deployment ${t.deployment} -n ${t.namespace} app.kubernetes.io/managed-by=provisioning io.provisioning.service=${t.service} (or choose another deployment_name)`,
  );
}

function rejected(e: Existing, err: KubeError): Finding {
  const o = e.manifest.object;
  return bad(
    `Manifest ${e.manifest.source} (${o.kind} ${o.metadata.name}) rejected by a server-side dry run: ${err.message}`,
    "Fix the manifest: the server's strict field validation rejects unknown fields and invalid values",
  );
}

/** A failed request as a finding, with what to do about its kind of failure. */
export function apiFinding(e: KubeError, kube: Kube): Finding {
  const { context, cluster, user } = kube.config;
  if (e.kind === "refused" || e.kind === "timeout" || e.kind === "dns" || e.kind === "network") {
    return bad(
      e.message,
      `Is the cluster up and reachable from here? Check: kubectl --context ${context} cluster-info`,
    );
  }
  if (e.kind === "tls") {
    return bad(
      e.message,
      `Check certificate-authority(-data) of cluster "${cluster.name}" in the kubeconfig`,
    );
  }
  if (e.status === 401) {
    return bad(e.message, `Renew the credentials of user "${user.name}" (an expired token?)`);
  }
  if (e.status === 403) {
    return bad(
      `Forbidden: ${e.message}`,
      `Ask for RBAC permissions for user "${user.name}" (get/list/watch/patch deployments, pods, namespaces)`,
    );
  }
  return bad(`${kube.where()}: ${e.message}`, "See the API server's message above");
}
