/**
 * Which kubeconfig a kubernetes service uses, found as kubectl finds it but without its silent
 * fallback: the service's `kubeconfig` (relative to the registry's directory of reference,
 * `ctx.cwd`), else `KUBECONFIG` from the service's environment (several files joined by `:`,
 * merged with the first file winning, as kubectl merges them), else `~/.kube/config`, else the
 * in-cluster service account. When none is there, that is an error naming every place looked
 * at — never `http://localhost:8080`, which the client's `loadFromDefault()` quietly picks.
 *
 * Finding needs no client; loading builds a client `KubeConfig` from what was found, with the
 * context chosen (`context`, else the file's `current-context`). Messages name files, contexts,
 * clusters and users, never a credential; a YAML error gives its line, not the client's
 * snippet of the file (which could hold a token).
 *
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Cluster, Context, KubeConfig, User } from "@kubernetes/client-node";
import { KubeconfigError } from "./_errors.ts";

const SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount";

/** Where the credentials come from. */
export type KubeSource =
  | { kind: "files"; files: string[]; from: string }
  | { kind: "in-cluster"; server: string; dir: string };

/** Where to look (the service's `kubeconfig`, its environment, its directory of reference). */
export interface LookupInput {
  kubeconfig?: string;
  env: Record<string, string | undefined>;
  cwd: string;
}

/** The kubeconfig files (or the in-cluster account) to use; throws naming where it looked. */
export function findKubeconfig(input: LookupInput): KubeSource {
  const { env, cwd } = input;
  const listed = (value: string, from: string): KubeSource => {
    const files = value.split(":").filter(Boolean).map((f) => resolve(cwd, f));
    const found = files.filter((f) => existsSync(f));
    if (found.length) return { kind: "files", files: found, from };
    throw new KubeconfigError(
      `Kubeconfig not found: ${files.join(", ")} (from ${from})`,
      from === "KUBECONFIG"
        ? "Fix KUBECONFIG, or set kubeconfig in the service's [deployment.kubernetes] table"
        : "Fix kubeconfig in the service's [deployment.kubernetes] table (a relative path starts at the current directory; ${PROVISIONING_REGISTRY_DIR}/… at the registry's folder)",
    );
  };
  if (input.kubeconfig) return listed(input.kubeconfig, "kubeconfig");
  if (env.KUBECONFIG) return listed(env.KUBECONFIG, "KUBECONFIG");
  const looked = ["KUBECONFIG is not set"];
  if (env.HOME) {
    const file = join(env.HOME, ".kube", "config");
    if (existsSync(file)) return { kind: "files", files: [file], from: "~/.kube/config" };
    looked.push(`${file} does not exist`);
  } else looked.push("HOME is not set (no ~/.kube/config)");
  const host = env.KUBERNETES_SERVICE_HOST, port = env.KUBERNETES_SERVICE_PORT;
  if (host && port && existsSync(join(SERVICE_ACCOUNT, "token"))) {
    const h = host.includes(":") ? `[${host}]` : host;
    return { kind: "in-cluster", server: `https://${h}:${port}`, dir: SERVICE_ACCOUNT };
  }
  looked.push(
    host
      ? `no service account token in ${SERVICE_ACCOUNT}`
      : "not in a cluster (KUBERNETES_SERVICE_HOST is not set)",
  );
  throw new KubeconfigError(
    `No kubeconfig found: ${looked.join("; ")}`,
    "Set kubeconfig in the service's [deployment.kubernetes] table, or export KUBECONFIG (provisioning never falls back to localhost:8080)",
  );
}

/** A loaded kubeconfig with its context chosen. */
export interface LoadedConfig {
  kc: KubeConfig;
  context: string;
  cluster: Cluster;
  user: User;
  /** Where it came from, for messages: `/home/me/.kube/config` or `in-cluster service account`. */
  origin: string;
  /** Credentials in it (tokens, passwords, keys), to keep out of every message. */
  secrets: string[];
}

/** The client module (`@kubernetes/client-node`), loaded by `_client.ts`. */
export type Client = typeof import("@kubernetes/client-node");

/** Load `o.source` into a client `KubeConfig` and select `o.context` (else the current one). */
export function loadKubeconfig(
  client: Client,
  o: { source: KubeSource; context?: string },
): LoadedConfig {
  const { source, context } = o;
  const kc = new client.KubeConfig();
  let origin: string;
  if (source.kind === "in-cluster") {
    origin = "in-cluster service account";
    kc.loadFromClusterAndUser(
      {
        name: "in-cluster",
        server: source.server,
        caFile: `${source.dir}/ca.crt`,
        skipTLSVerify: false,
      },
      {
        name: "in-cluster",
        authProvider: { name: "tokenFile", config: { tokenFile: `${source.dir}/token` } },
      },
    );
  } else {
    origin = source.files.join(":");
    merge(kc, source.files.map((file) => readOne(client, file)));
  }
  const name = context ?? kc.getCurrentContext();
  const contexts = kc.getContexts().map((c) => c.name);
  if (!name) {
    throw new KubeconfigError(
      `Kubeconfig ${origin} has no current-context`,
      `Set context in the service's [deployment.kubernetes] table (contexts: ${list(contexts)})`,
    );
  }
  const ctx = kc.getContextObject(name);
  if (!ctx) {
    throw new KubeconfigError(
      `Context "${name}" not found in kubeconfig ${origin}`,
      `Use one of: ${list(contexts)}`,
    );
  }
  kc.setCurrentContext(name);
  const cluster = kc.getCluster(ctx.cluster);
  if (!cluster) {
    throw new KubeconfigError(
      `Context "${name}" names cluster "${ctx.cluster}", which kubeconfig ${origin} does not define`,
      "Fix the context's cluster, or add the cluster to the kubeconfig",
    );
  }
  const user = kc.getUser(ctx.user);
  if (!user) {
    throw new KubeconfigError(
      `Context "${name}" names user "${ctx.user}", which kubeconfig ${origin} does not define`,
      "Fix the context's user, or add the user to the kubeconfig",
    );
  }
  if (cluster.server.startsWith("http:") && !cluster.skipTLSVerify) {
    throw new KubeconfigError(
      `Cluster "${cluster.name}" is served over plain http (${cluster.server}), which the client refuses`,
      "Use https, or set insecure-skip-tls-verify: true on that cluster in the kubeconfig (only for a local test server)",
    );
  }
  return { kc, context: name, cluster, user, origin, secrets: secretsOf(user) };
}

/** One kubeconfig file, read by the client (paths in it made absolute to its folder). */
function readOne(client: Client, file: string): KubeConfig {
  const kc = new client.KubeConfig();
  try {
    if (!readFileSync(file, "utf8").trim()) return kc; // an empty file adds nothing
    kc.loadFromFile(file);
  } catch (error) {
    const e = error as {
      name?: string;
      reason?: string;
      mark?: { line?: number };
      message?: string;
    };
    const why = e.name === "YAMLException"
      ? `invalid YAML${
        e.mark?.line !== undefined ? ` at line ${e.mark.line + 1}` : ""
      }: ${e.reason}`
      : e instanceof TypeError
      ? "not a kubeconfig (expected a mapping with clusters, users and contexts)"
      : String(e.message);
    throw new KubeconfigError(
      `Cannot read kubeconfig ${file}: ${why}`,
      "Fix the file (kubectl config view checks it)",
    );
  }
  return kc;
}

/** kubectl's merge of several files: the first to name a cluster, user, context or current-context wins. */
function merge(into: KubeConfig, configs: KubeConfig[]): void {
  const clusters: Cluster[] = [], users: User[] = [], contexts: Context[] = [];
  let current: string | undefined;
  const add = <T extends { name: string }>(to: T[], from: T[]) => {
    for (const x of from) if (!to.some((y) => y.name === x.name)) to.push(x);
  };
  for (const kc of configs) {
    add(clusters, kc.getClusters());
    add(users, kc.getUsers());
    add(contexts, kc.getContexts());
    current ||= kc.getCurrentContext();
  }
  into.loadFromOptions({ clusters, users, contexts, currentContext: current });
}

function secretsOf(user: User): string[] {
  const provider =
    (user.authProvider as { config?: Record<string, unknown> } | undefined)?.config ?? {};
  const candidates = [
    user.token,
    user.password,
    user.keyData,
    ...["access-token", "id-token", "refresh-token", "client-secret"].map((k) => provider[k]),
  ];
  return candidates.filter((s): s is string => typeof s === "string" && s.length >= 4);
}

const list = (names: string[]) => (names.length ? names.map((n) => `"${n}"`).join(", ") : "none");
