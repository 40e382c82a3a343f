/**
 * The kubernetes mode through the real CLI, against the Kubernetes API test double
 * (`tests/k8s/api_double.ts`; not a real API server, its wire formats are cross-checked with the
 * real kubectl in `tests/k8s/kubectl_test.ts`): the spec's example through `platform start` /
 * `status` / `logs` / `stop`, a graph mixing binary and kubernetes services in both directions,
 * each fail-fast reason, a foreign Deployment, a missing kubeconfig, the API going away in the
 * middle of a start, `services list` not loading the client, and `examples/kubernetes/`.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { appendFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CliResult, ROOT, runCli } from "../_cli.ts";
import { until } from "../_until.ts";
import { deployment as fixture } from "../k8s/_fixtures.ts";
import { type ApiDouble, type ApiDoubleOptions, startApiDouble } from "../k8s/api_double.ts";
import { Sandbox } from "./_registry.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

/** The spec's example (`[services.orchestrator.deployment.kubernetes]`), started by `platform start`. */
const SPEC_EXAMPLE = `
[services.orchestrator]
type = "platform"
category = "orchestration"
description = "Workflow coordinator"

[services.orchestrator.deployment]
mode = "kubernetes"

[services.orchestrator.deployment.kubernetes]
namespace = "provisioning"
deployment_name = "orchestrator"
manifests_path = "\${HOME}/.provisioning/k8s/orchestrator/"

[services.orchestrator.startup]
auto_start = true
start_timeout = 30
`;

/** A namespace and a two-replica Deployment `name` (image `image`). */
function manifests(
  name: string,
  o: { namespace?: string; image?: string; replicas?: number } = {},
) {
  const ns = o.namespace ?? "provisioning";
  return `apiVersion: v1
kind: Namespace
metadata:
  name: ${ns}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  namespace: ${ns}
spec:
  replicas: ${o.replicas ?? 2}
  selector:
    matchLabels: {app: ${name}}
  template:
    metadata:
      labels: {app: ${name}}
    spec:
      containers:
      - name: main
        image: ${JSON.stringify(o.image ?? "registry.example/orchestrator:1.4")}
`;
}

/** A kubernetes service table for a test registry. */
function k8sToml(name: string, o: { deps?: string[]; table?: string; startTimeout?: number } = {}) {
  return `
[services.${name}]
dependencies = ${JSON.stringify(o.deps ?? [])}
[services.${name}.deployment]
mode = "kubernetes"
[services.${name}.deployment.kubernetes]
namespace = "provisioning"
deployment_name = "${name}"
manifests_path = "k8s/${name}"
${o.table ?? ""}
[services.${name}.startup]
start_timeout = ${o.startTimeout ?? 30}
[services.${name}.shutdown]
timeout = 5
`;
}

/** A temp HOME with a kubeconfig for a double (KUBECONFIG), a registry, and the CLI to run in it. */
class Cluster implements AsyncDisposable {
  private constructor(
    readonly dir: string,
    readonly api: ApiDouble,
    readonly env: Record<string, string>,
  ) {}

  static async open(toml: string, o: ApiDoubleOptions = {}): Promise<Cluster> {
    const dir = await mkdtemp(join(tmpdir(), "k8s-cli-"));
    const api = await startApiDouble({ tls: true, token: "cli-t0ken", ...o });
    await api.writeKubeconfig(join(dir, "kubeconfig"));
    await writeFile(join(dir, "services.toml"), toml);
    const env = {
      HOME: dir,
      KUBECONFIG: join(dir, "kubeconfig"),
      PROVISIONING_HOME: join(dir, "home"),
    };
    return new Cluster(dir, api, env);
  }

  async file(rel: string, text: string): Promise<void> {
    await mkdir(join(this.dir, rel, ".."), { recursive: true });
    await writeFile(join(this.dir, rel), text);
  }

  cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
    return runCli([...args, "--config", join(this.dir, "services.toml")], {
      cwd: this.dir,
      env: { ...this.env, ...env },
    });
  }

  async json(args: string[]): Promise<Any> {
    const r = await this.cli([...args, "--json"]);
    return JSON.parse(r.stdout);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.cli(["platform", "stop", "--force"]);
    } finally {
      await this.api.close();
      await rm(this.dir, { recursive: true, force: true });
    }
  }
}

const out = (r: CliResult) => `${r.stdout}\n${r.stderr}`;

Deno.test("the spec's kubernetes example runs against the API test double: platform start, status, logs, stop", async () => {
  await using c = await Cluster.open(SPEC_EXAMPLE, {
    behaviours: [[{}, { logLines: ["orchestrator up", "listening on :8080"] }]],
  });
  await c.file(".provisioning/k8s/orchestrator/app.yaml", manifests("orchestrator"));
  const started = await c.cli(["platform", "start"]);
  assert.equal(started.code, 0, out(started));
  assert.match(
    started.stdout,
    /✅ Kubernetes API reachable: v1\.30\.4 at https:\/\/127\.0\.0\.1:\d+/,
  );
  // No health check of ours: the rollout's own readiness is its health.
  assert.match(started.stdout, /✅ Service orchestrator is healthy/);
  const d = c.api.deployment("provisioning", "orchestrator") as Any;
  assert.deepEqual([d.spec.replicas, d.status.availableReplicas], [1, 1], "replicas defaults to 1");
  const st = await c.json(["services", "status", "orchestrator"]);
  assert.deepEqual([st.status, st.deployment_mode, st.pid], ["running", "kubernetes", undefined]);
  assert.equal(st.health, "healthy", "the rollout's readiness is its health");
  assert.match(st.message, /^Deployment provisioning\/orchestrator: 1\/1 available, revision 1$/);
  const platform = await c.json(["platform", "status"]);
  assert.deepEqual([platform.running, platform.total], [1, 1]);
  const logs = await c.cli(["services", "logs", "orchestrator", "--lines", "1"]);
  assert.equal(logs.code, 0, out(logs));
  assert.equal(logs.stdout.trim(), "listening on :8080");
  const stopped = await c.cli(["platform", "stop"]);
  assert.equal(stopped.code, 0, out(stopped));
  assert.match(stopped.stdout, /✅ Stopped orchestrator/);
  assert.equal((c.api.deployment("provisioning", "orchestrator") as Any).spec.replicas, 0);
  assert.equal(c.api.pods("provisioning").length, 0, "the pods are gone");
  assert.equal((await c.json(["services", "status", "orchestrator"])).status, "stopped");
});

Deno.test("one graph mixes binary and kubernetes services in both directions: start order, refused stop, stop order", async () => {
  await using api = await startApiDouble({ tls: true });
  await using sb = await Sandbox.create([
    { name: "db", readyAfter: 100 },
    { name: "front", deps: ["orchestrator"], readyAfter: 50 },
  ]);
  const kubeconfig = await api.writeKubeconfig(join(sb.dir, "kubeconfig"));
  await mkdir(join(sb.dir, "k8s/orchestrator"), { recursive: true });
  await writeFile(join(sb.dir, "k8s/orchestrator/app.yaml"), manifests("orchestrator"));
  await appendFile(
    sb.config,
    k8sToml("orchestrator", { deps: ["db"], table: `kubeconfig = "${kubeconfig}"` }),
  );
  const cli = (args: string[]) =>
    runCli([...args, "--config", sb.config], { cwd: sb.dir, env: { PROVISIONING_HOME: sb.home } });
  const r = await cli(["services", "start", "front"]);
  assert.equal(r.code, 0, out(r));
  const at = (re: RegExp) => r.stdout.split("\n").findIndex((l) => re.test(l));
  assert.ok(at(/Service db is healthy/) < at(/Starting dependency: orchestrator/), r.stdout);
  assert.ok(at(/Service orchestrator started/) < at(/Starting service: front/), r.stdout);
  assert.ok(
    at(/Starting dependency: orchestrator/) >= 0 && at(/Service front is healthy/) >= 0,
    r.stdout,
  );
  const refused = await cli(["services", "stop", "orchestrator"]);
  assert.equal(refused.code, 4, out(refused));
  assert.match(out(refused), /Cannot stop orchestrator: Dependent services running: front/);
  assert.equal(
    (api.deployment("provisioning", "orchestrator") as Any).spec.replicas,
    1,
    "left running",
  );
  const stopped = await cli(["platform", "stop"]);
  assert.equal(stopped.code, 0, out(stopped));
  const s = stopped.stdout.split("\n");
  const idx = (re: RegExp) => s.findIndex((l) => re.test(l));
  assert.ok(idx(/Stopped front/) < idx(/Stopping orchestrator/), stopped.stdout);
  assert.ok(idx(/Stopped orchestrator/) < idx(/Stopping db/), stopped.stdout);
});

const FAIL_FAST: [string, string, RegExp, string?][] = [
  ["CrashLoopBackOff", "app:crashloop", /container main: CrashLoopBackOff: back-off/],
  ["ErrImagePull", "app:pullfail", /container main: (ErrImagePull|ImagePullBackOff): /],
  ["InvalidImageName", "Not:A Valid Image", /container main: InvalidImageName: /],
  [
    "CreateContainerConfigError",
    "app:configerror",
    /CreateContainerConfigError: secret "missing-secret" not found/,
  ],
  [
    "ProgressDeadlineExceeded",
    "app:stuck",
    /ProgressDeadlineExceeded: deployment "web" exceeded its progress deadline/,
  ],
  [
    "ReplicaFailure",
    "app:replicafailure",
    /ReplicaFailure \(FailedCreate\): pods "web-\S+" is forbidden/,
  ],
  [
    "Unschedulable",
    "app:unschedulable",
    /pod web-\S+: Unschedulable: 0\/1 nodes are available/,
    "unschedulable_timeout = 0.5",
  ],
];

for (const [reason, image, text, table] of FAIL_FAST) {
  Deno.test(`services start fails fast on ${reason}, names it, and records it (API test double)`, async () => {
    await using c = await Cluster.open(k8sToml("web", { table, startTimeout: 120 }));
    await c.file("k8s/web/app.yaml", manifests("web", { image, replicas: 1 }));
    const r = await c.cli(["services", "start", "web"]);
    assert.equal(r.code, 1, out(r));
    assert.match(out(r), new RegExp(`❌ web: Cannot start "web": .*${text.source}`));
    assert.match(out(r), /; scaled back to 0 replicas/);
    const st = await c.json(["services", "status", "web"]);
    assert.equal(st.status, "failed");
    assert.match(st.message, text);
    if (reason === "CrashLoopBackOff") {
      assert.ok(st.last_log_lines?.includes("fatal: main exited with code 1"), JSON.stringify(st));
    }
    assert.equal((c.api.deployment("provisioning", "web") as Any).spec.replicas, 0);
  });
}

Deno.test("a foreign Deployment of the same name is refused (exit 3) and left as it was", async () => {
  await using c = await Cluster.open(k8sToml("web"));
  await c.file("k8s/web/app.yaml", manifests("web"));
  await c.api.request("/api/v1/namespaces", {
    method: "POST",
    body: { apiVersion: "v1", kind: "Namespace", metadata: { name: "provisioning" } },
  });
  const theirs = fixture("web", { namespace: "provisioning", replicas: 1 });
  theirs.metadata.labels["app.kubernetes.io/managed-by"] = "Helm";
  await c.api.request("/apis/apps/v1/namespaces/provisioning/deployments?fieldManager=helm", {
    method: "POST",
    body: theirs,
  });
  const before = c.api.deployment("provisioning", "web") as Any;
  const r = await c.cli(["services", "start", "web"]);
  assert.equal(r.code, 3, out(r));
  assert.match(
    out(r),
    /Deployment provisioning\/web exists and is not ours: it is managed by "Helm"/,
  );
  const after = c.api.deployment("provisioning", "web") as Any;
  assert.deepEqual(
    [after.metadata.generation, after.spec.replicas, after.metadata.labels],
    [before.metadata.generation, 1, before.metadata.labels],
  );
  assert.ok(
    !c.api.requests.some((q) =>
      q.method === "PATCH" && q.path.includes("/deployments/web") && !/dryRun/.test(q.query)
    ),
  );
});

Deno.test("a missing kubeconfig fails pre-flight (exit 3) naming where it looked, never localhost:8080", async () => {
  await using c = await Cluster.open(
    k8sToml("web", { table: 'kubeconfig = "clusters/prod.yaml"' }),
  );
  await c.file("k8s/web/app.yaml", manifests("web"));
  const named = await c.cli(["services", "start", "web"]);
  assert.equal(named.code, 3, out(named));
  assert.match(
    out(named),
    new RegExp(`Kubeconfig not found: ${join(c.dir, "clusters/prod.yaml")} \\(from kubeconfig\\)`),
  );
  await writeFile(join(c.dir, "services.toml"), k8sToml("web"));
  const none = await c.cli(["services", "start", "web"], {
    KUBECONFIG: "",
    HOME: join(c.dir, "nobody"),
  });
  assert.equal(none.code, 3, out(none));
  assert.match(
    out(none),
    /No kubeconfig found: KUBECONFIG is not set; .*nobody\/\.kube\/config does not exist; not in a cluster/,
  );
  assert.doesNotMatch(out(none), /Cannot reach|refused/, "no request to a default server");
  assert.equal((await c.cli(["services", "validate"])).code, 0, "the registry itself is valid");
});

Deno.test("the API going away in the middle of a start fails it within seconds; stop works once it is back", async () => {
  await using c = await Cluster.open(k8sToml("web", { startTimeout: 120 }), {
    behaviours: [[{}, { readyAfterMs: 600_000 }]],
  });
  await c.file("k8s/web/app.yaml", manifests("web", { replicas: 1 }));
  const starting = c.cli(["services", "start", "web"]);
  await until(
    () => c.api.requests.filter((q) => /watch=true/.test(q.query)).length >= 2,
    "the rollout wait",
    20_000,
  );
  await c.api.goAway();
  const r = await starting;
  assert.equal(r.code, 1, out(r));
  assert.match(
    out(r),
    /❌ web: Cannot start "web": Lost the Kubernetes API at https:\/\/127\.0\.0\.1:\d+ \(context "double"\): connection refused \(for 5s\)/,
  );
  await c.api.comeBack();
  const stopped = await c.cli(["services", "stop", "web"]);
  assert.equal(stopped.code, 0, out(stopped));
  assert.equal((c.api.deployment("provisioning", "web") as Any).spec.replicas, 0);
});

Deno.test("services list of a registry with kubernetes services does not load the Kubernetes client; a start does", async () => {
  await using c = await Cluster.open(k8sToml("web") + k8sToml("worker"));
  await c.file("k8s/web/app.yaml", manifests("web", { replicas: 1 }));
  const trace = { PROVISIONING_TRACE_PLUGINS: "1" };
  const list = await c.cli(["services", "list", "--json"], trace);
  assert.equal(list.code, 0, out(list));
  assert.deepEqual(JSON.parse(list.stdout).map((s: Any) => [s.name, s.status]), [
    ["web", "stopped"],
    ["worker", "stopped"],
  ]);
  assert.match(list.stderr, /importing driver "kubernetes"/);
  assert.doesNotMatch(list.stderr, /@kubernetes\/client-node/);
  assert.equal(c.api.requests.length, 0, "nothing asked of the cluster");
  const start = await c.cli(["services", "start", "web"], trace);
  assert.equal(start.code, 0, out(start));
  assert.match(start.stderr, /importing @kubernetes\/client-node for the kubernetes driver/);
  assert.doesNotMatch(out(start), /DeprecationWarning/);
});

Deno.test("examples/kubernetes runs against the API test double: a Deployment and a binary service that needs it", async () => {
  const r = await new Promise<CliResult>((resolve, reject) => {
    const child = spawn(Deno.execPath(), ["run", "-A", join(ROOT, "examples/kubernetes/try.ts")], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
  assert.equal(r.code, 0, out(r));
  assert.match(r.stdout, /Namespace provisioning will be created from the manifests/);
  assert.match(r.stdout, /✅ Service api-gateway is healthy/);
  assert.match(r.stdout, /🟢 orchestrator - running/);
  assert.match(r.stdout, /\[pod\/orchestrator-\S+\] (orchestrator is ready|heartbeat \d+)\n/);
  assert.match(r.stdout, /✅ Stopped orchestrator/);
});
