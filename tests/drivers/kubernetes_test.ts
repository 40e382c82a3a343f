/**
 * The kubernetes driver against the Kubernetes API test double (`tests/k8s/api_double.ts`, not a
 * real API server; its wire formats are cross-checked with the real kubectl in
 * `tests/k8s/kubectl_test.ts`, and here kubectl reads back what the driver did): pre-flight,
 * server-side apply with our labels, the rollout wait and each fail-fast reason, scale-back of a
 * failed start, status, logs, stop policies, foreign Deployments, kubeconfig lookup, the API
 * going away, secrets kept out of messages, and the lazy import of the client.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "smol-toml";
import driver from "../../drivers/kubernetes.ts";
import { Platform } from "../../mod.ts";
import type { DriverContext, Service } from "../../plugin.ts";
import { ROOT } from "../_cli.ts";
import { until } from "../_until.ts";
import { deployment as fixture } from "../k8s/_fixtures.ts";
import { kubectlFor } from "../k8s/_kubectl.ts";
import {
  type ApiDouble,
  type ApiDoubleOptions,
  type KubeconfigOptions,
  makeTestCerts,
  startApiDouble,
} from "../k8s/api_double.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

/** A Deployment manifest `name` with one container `main`. */
function manifest(name: string, o: { image?: string; replicas?: number } = {}) {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  labels: {app: ${name}}
spec:
  replicas: ${o.replicas ?? 3}
  selector:
    matchLabels: {app: ${name}}
  template:
    metadata:
      labels: {app: ${name}}
    spec:
      containers:
      - name: main
        image: ${JSON.stringify(o.image ?? "busybox:1.36")}
`;
}

/** A temp dir with a kubeconfig (relative to it) for a double, and services in it. */
class World implements AsyncDisposable {
  private constructor(readonly dir: string, readonly api: ApiDouble) {}

  static async open(o: ApiDoubleOptions = {}, kc: KubeconfigOptions = {}): Promise<World> {
    const dir = await mkdtemp(join(tmpdir(), "k8s-driver-"));
    const api = await startApiDouble({ tls: true, token: "t0ken-s3cret", ...o });
    await api.writeKubeconfig(join(dir, "kubeconfig"), kc);
    return new World(dir, api);
  }

  async file(rel: string, text: string): Promise<string> {
    const path = join(this.dir, rel);
    await mkdir(join(path, ".."), { recursive: true });
    await writeFile(path, text);
    return path;
  }

  /** Service `name` with `table` over the defaults (kubeconfig "kubeconfig", manifests "m/NAME"). */
  async service(
    table: Record<string, unknown> = {},
    o: {
      name?: string;
      startTimeout?: number;
      shutdownTimeout?: number;
      env?: Record<string, string>;
    } = {},
  ): Promise<{ svc: Service; ctx: DriverContext; p: Platform }> {
    const name = o.name ?? "web";
    const kubernetes = {
      deployment_name: name,
      kubeconfig: "kubeconfig",
      manifests_path: `m/${name}`,
      ...table,
    };
    const config = join(this.dir, `${name}.toml`);
    await writeFile(
      config,
      stringify({
        services: {
          [name]: {
            deployment: { mode: "kubernetes", kubernetes },
            startup: { start_timeout: o.startTimeout ?? 10 },
            shutdown: { timeout: o.shutdownTimeout ?? 5 },
          },
        },
      }),
    );
    const p = await Platform.open({
      config,
      home: join(this.dir, "home"),
      env: { ...o.env },
      cwd: this.dir,
    });
    return { svc: p.service(name), ctx: p.context(), p };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.api.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

const deploymentOf = (api: ApiDouble, name = "web", ns = "default") =>
  api.deployment(ns, name) as Any;

async function rejects(p: Promise<unknown>): Promise<Any> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected a rejection");
}

Deno.test("start applies the manifests server-side with our labels and replicas, and returns once rolled out (API test double)", async () => {
  await using w = await World.open();
  await w.file("m/web/app.yaml", manifest("web"));
  const { svc, ctx } = await w.service({ replicas: 2 });
  const handle = await driver.start(svc, ctx);
  const d = deploymentOf(w.api);
  assert.equal(d.spec.replicas, 2, "replicas from the registry, not the manifest's 3");
  assert.equal(d.metadata.labels["app.kubernetes.io/managed-by"], "provisioning");
  assert.equal(d.metadata.labels["io.provisioning.service"], "web");
  assert.equal(
    d.spec.template.metadata.labels["io.provisioning.service"],
    undefined,
    "metadata only",
  );
  assert.equal(d.status.availableReplicas, 2, "start returns once the rollout is complete");
  assert.deepEqual(d.metadata.managedFields.map((m: Any) => [m.manager, m.operation]), [[
    "provisioning",
    "Apply",
  ]]);
  const apply = w.api.requests.find((r) =>
    r.method === "PATCH" && r.path.endsWith("/deployments/web")
  )!;
  assert.equal(apply.contentType, "application/apply-patch+yaml");
  for (const q of ["fieldManager=provisioning", "force=true", "fieldValidation=Strict"]) {
    assert.match(apply.query, new RegExp(q));
  }
  assert.deepEqual(handle.pid, undefined);
  assert.deepEqual([handle.data?.namespace, handle.data?.deployment, handle.data?.context], [
    "default",
    "web",
    "double",
  ]);
  assert.equal(
    await readdir(join(w.dir, "home")).catch(() => []).then((e) => e.length),
    0,
    "a driver writes no state",
  );
});

Deno.test({
  name:
    "the real kubectl sees the driver's Deployment rolled out, with our labels (API test double)",
  ignore: kubectlFor("1.30") === undefined,
  async fn() {
    await using w = await World.open();
    await w.file("m/web/app.yaml", manifest("web", { replicas: 1 }));
    const { svc, ctx } = await w.service();
    await driver.start(svc, ctx);
    const kubectl = (args: string[]) =>
      new Promise<string>((resolve, reject) =>
        execFile(kubectlFor("1.30")!, args, {
          env: { PATH: process.env.PATH, HOME: w.dir, KUBECONFIG: join(w.dir, "kubeconfig") },
          timeout: 20_000,
        }, (e, out, err) => (e ? reject(new Error(`${e.message}\n${err}`)) : resolve(out)))
      );
    assert.match(
      await kubectl(["rollout", "status", "deploy/web", "--timeout=5s"]),
      /successfully rolled out/,
    );
    const labels = await kubectl(["get", "deploy", "web", "-o", "jsonpath={.metadata.labels}"]);
    assert.match(labels, /"app.kubernetes.io\/managed-by":"provisioning"/);
  },
});

Deno.test("pre-flight lists each prerequisite, and a server-side dry run rejects spec.replica without storing anything", async () => {
  await using w = await World.open();
  await w.file("m/web/app.yaml", manifest("web"));
  const { svc, ctx } = await w.service();
  const good = await driver.preflight(svc, ctx);
  assert.deepEqual(good.map((f) => f.ok), [true, true, true, true]);
  assert.match(
    good[0].message,
    /^Kubeconfig: .*kubeconfig \(context "double", cluster "double"\)$/,
  );
  assert.match(
    good[1].message,
    /^Kubernetes API reachable: v1\.30\.4 at https:\/\/127\.0\.0\.1:\d+$/,
  );
  assert.match(good[3].message, /accepted by a server-side dry run/);
  await w.file(
    "m/web/app.yaml",
    manifest("web").replace("  replicas: 3\n", "  replicas: 3\n  replica: 3\n"),
  );
  const bad = await driver.preflight(svc, ctx);
  const failed = bad.find((f) => !f.ok)!;
  assert.match(
    failed.message,
    /^Manifest app\.yaml#1 \(Deployment web\) rejected by a server-side dry run: .*\.spec\.replica: field not declared in schema/,
  );
  assert.ok(failed.hint);
  assert.equal(deploymentOf(w.api), undefined, "a dry run stores nothing");
  const err = await rejects(driver.start(svc, ctx));
  assert.equal(err.exitCode, 3);
  assert.match(err.message, /spec\.replica: field not declared in schema/);
});

Deno.test("manifests are read like kubectl apply -f DIR: yaml/yml/json files, multi-document, one namespace", async () => {
  await using w = await World.open();
  await w.file("m/web/0-ns.yml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n---\n");
  await w.file("m/web/app.json", JSON.stringify({ apiVersion: "v1", kind: "List", items: [] }));
  await w.file("m/web/web.yaml", manifest("web", { replicas: 1 }));
  await w.file("m/web/notes.txt", "not a manifest");
  const { svc, ctx } = await w.service({ namespace: "team" });
  await driver.start(svc, ctx);
  assert.equal(
    (w.api.get("namespaces", undefined, "team") as Any).metadata.labels["io.provisioning.service"],
    "web",
  );
  assert.equal(deploymentOf(w.api, "web", "team").status.availableReplicas, 1);
  await w.file(
    "m/web/other.yaml",
    manifest("other").replace("metadata:\n", "metadata:\n  namespace: elsewhere\n"),
  );
  const f = (await driver.preflight(svc, ctx)).find((x) => !x.ok)!;
  assert.match(
    f.message,
    /Deployment "other" names namespace "elsewhere", not the service's "team"/,
  );
  await w.file("m/web/other.yaml", "a: [1,\n");
  assert.match(
    (await driver.preflight(svc, ctx)).find((x) => !x.ok)!.message,
    /^Cannot parse manifest .*other\.yaml:\d+: /,
  );
  const missing = await w.service({
    deployment_name: "api",
    manifests_path: "m/web",
    namespace: "team",
  }, { name: "api" });
  await rm(join(w.dir, "m/web/other.yaml"));
  assert.match(
    (await driver.preflight(missing.svc, missing.ctx)).find((x) => !x.ok)!.message,
    /None of the manifests in m\/web is the Deployment "api" \(found: Namespace\/team, Deployment\/web\)/,
  );
});

Deno.test("a foreign Deployment is refused by pre-flight and start, and left alone by stop, status and logs", async () => {
  await using w = await World.open();
  await w.file("m/web/app.yaml", manifest("web"));
  const body = fixture("web", { replicas: 1 });
  await w.api.request("/apis/apps/v1/namespaces/default/deployments/web?fieldManager=helm", {
    method: "PATCH",
    body,
    contentType: "application/apply-patch+yaml",
  });
  await until(
    () => deploymentOf(w.api)?.status?.availableReplicas === 1,
    "the foreign Deployment to run",
  );
  const before = deploymentOf(w.api);
  const { svc, ctx, p } = await w.service();
  const f = (await driver.preflight(svc, ctx)).find((x) => !x.ok)!;
  assert.match(
    f.message,
    /^Deployment default\/web exists and is not ours: it has no app\.kubernetes\.io\/managed-by=provisioning label$/,
  );
  assert.match(
    f.hint!,
    /kubectl label deployment web -n default app\.kubernetes\.io\/managed-by=provisioning/,
  );
  const err = await rejects(driver.start(svc, ctx));
  assert.deepEqual([err.exitCode, /exists and is not ours/.test(err.message)], [3, true]);
  await p.store.starting("web", "kubernetes");
  assert.deepEqual(await driver.stop(svc, ctx), {});
  const st = await driver.status(svc, ctx);
  assert.match(st.message!, /is not ours .*left alone/);
  await assert.rejects(async () => {
    for await (const _ of driver.logs(svc, ctx)) { /* none */ }
  }, /is not ours/);
  const after = deploymentOf(w.api);
  assert.deepEqual([after.metadata.generation, after.spec.replicas, after.metadata.labels], [
    before.metadata.generation,
    1,
    before.metadata.labels,
  ]);
  assert.ok(
    !w.api.requests.some((r) =>
      r.method !== "GET" && r.path.includes("/deployments/web") && !/helm/.test(r.query)
    ),
  );
});

const FAILURES: [string, string, RegExp, Record<string, unknown>?][] = [
  ["CrashLoopBackOff", "app:crashloop", /pod web-\S+, container main: CrashLoopBackOff: back-off/],
  [
    "ErrImagePull",
    "app:pullfail",
    /pod web-\S+, container main: (ErrImagePull|ImagePullBackOff): /,
  ],
  [
    "InvalidImageName",
    "Not A:Valid Image",
    /container main: InvalidImageName: .*invalid reference format/,
  ],
  [
    "CreateContainerConfigError",
    "app:configerror",
    /container main: CreateContainerConfigError: secret "missing-secret" not found/,
  ],
  [
    "ProgressDeadlineExceeded",
    "app:stuck",
    /ProgressDeadlineExceeded: deployment "web" exceeded its progress deadline/,
  ],
  [
    "ReplicaFailure",
    "app:replicafailure",
    /ReplicaFailure \(FailedCreate\): pods "web-\S+" is forbidden: exceeded quota/,
  ],
  ["Unschedulable", "app:unschedulable", /pod web-\S+: Unschedulable: 0\/1 nodes are available/, {
    unschedulable_timeout: 0.3,
  }],
];

for (const [reason, image, text, table] of FAILURES) {
  Deno.test(`a start fails fast on ${reason}, names it, keeps the last lines and scales back to 0 (API test double)`, async () => {
    await using w = await World.open();
    await w.file("m/web/app.yaml", manifest("web", { replicas: 1, image }));
    const { svc, ctx } = await w.service({ ...table }, { startTimeout: 60 });
    const err = await rejects(driver.start(svc, ctx));
    assert.match(err.message, /^Cannot start "web": /);
    assert.match(err.message, text);
    assert.match(err.message, /; scaled back to 0 replicas$/);
    assert.equal(err.exitCode, 1);
    assert.equal(deploymentOf(w.api).spec.replicas, 0, "nothing left half-up");
    const kept: string[] = [];
    for await (const l of driver.logs(svc, ctx, { lines: 40 })) kept.push(l);
    if (reason === "CrashLoopBackOff") {
      assert.ok(kept.includes("fatal: main exited with code 1"), kept.join("|"));
    }
  });
}

Deno.test("a rollout that never becomes ready fails at start_timeout with kubectl's words, scaled back", async () => {
  await using w = await World.open({ behaviours: [[{}, { failure: "NeverReady" }]] });
  await w.file("m/web/app.yaml", manifest("web", { replicas: 1 }));
  const { svc, ctx } = await w.service({}, { startTimeout: 1 });
  const err = await rejects(driver.start(svc, ctx));
  assert.equal(err.name, "StartTimeoutError");
  assert.match(
    err.message,
    /^Not healthy after 1s \(start_timeout\): Waiting for deployment "web" rollout to finish: 0 of 1 updated replicas are available\.\.\.; scaled back to 0 replicas$/,
  );
  assert.equal(deploymentOf(w.api).spec.replicas, 0);
});

Deno.test("without manifests the Deployment must exist and be ours; start then scales it through /scale", async () => {
  await using w = await World.open();
  const { svc, ctx } = await w.service({ manifests_path: undefined, replicas: 2 });
  const f = (await driver.preflight(svc, ctx)).find((x) => !x.ok)!;
  assert.match(
    f.message,
    /^Deployment default\/web not found, and there is no manifests_path to create it from$/,
  );
  const d = fixture("web", { replicas: 0 });
  d.metadata.labels = {
    ...d.metadata.labels,
    "app.kubernetes.io/managed-by": "provisioning",
    "io.provisioning.service": "web",
  };
  await w.api.request("/apis/apps/v1/namespaces/default/deployments?fieldManager=kubectl", {
    method: "POST",
    body: d,
  });
  assert.ok((await driver.preflight(svc, ctx)).every((x) => x.ok));
  await driver.start(svc, ctx);
  const scale = w.api.requests.find((r) => r.path.endsWith("/deployments/web/scale"))!;
  assert.deepEqual([scale.method, scale.contentType, JSON.parse(scale.body)], [
    "PATCH",
    "application/merge-patch+json",
    { spec: { replicas: 2 } },
  ]);
  assert.equal(deploymentOf(w.api).status.availableReplicas, 2);
});

Deno.test("status: stopped without a record (no cluster asked), running with uptime and restarts, starting, failed with the pod's reason", async () => {
  await using w = await World.open();
  await w.file("m/web/app.yaml", manifest("web", { replicas: 2 }));
  const { svc, ctx, p } = await w.service({ replicas: 2 });
  const seen = w.api.requests.length;
  assert.deepEqual(await driver.status(svc, ctx), {
    status: "stopped",
    message: "Not started (the cluster is asked once provisioning starts it)",
  });
  assert.equal(w.api.requests.length, seen, "no request for a service this home never started");
  const h = await driver.start(svc, ctx);
  await p.store.starting("web", "kubernetes", { handle: h.data });
  await p.store.running("web");
  const up = await driver.status(svc, ctx);
  assert.equal(up.status, "running");
  assert.match(up.message!, /^Deployment default\/web: 2\/2 available, revision 1$/);
  assert.equal(typeof up.uptime_s, "number");
  w.api.setBehaviour({ deployment: "web" }, {
    failure: "CrashLoopBackOff",
    crashAfterMs: 10,
    backoffMs: 30,
  });
  await w.api.request("/apis/apps/v1/namespaces/default/deployments/web/scale", {
    method: "PATCH",
    body: { spec: { replicas: 3 } },
    contentType: "application/merge-patch+json",
  });
  await until(
    async () => (await driver.status(svc, ctx)).status === "failed",
    "the crash loop to show",
  );
  const down = await driver.status(svc, ctx);
  assert.match(down.message!, /pod web-\S+, container main: CrashLoopBackOff/);
  w.api.clearBehaviours();
  w.api.setBehaviour({ deployment: "web" }, { readyAfterMs: 60_000 });
  await w.api.request("/apis/apps/v1/namespaces/default/deployments/web/scale", {
    method: "PATCH",
    body: { spec: { replicas: 4 } },
    contentType: "application/merge-patch+json",
  });
  await until(
    async () => (await driver.status(svc, ctx)).status === "starting",
    "a rollout in progress",
  );
  assert.match(
    (await driver.status(svc, ctx)).message!,
    /updated replicas are available|new replicas have been updated/,
  );
});

Deno.test("stop scales to 0 and waits for the pods; past shutdown.timeout they are deleted at once; --force at once", async () => {
  await using w = await World.open({ behaviours: [[{}, { terminationDelayMs: 100 }]] });
  await w.file("m/web/app.yaml", manifest("web", { replicas: 2 }));
  const { svc, ctx } = await w.service({}, { shutdownTimeout: 5 });
  await driver.start(svc, ctx);
  assert.deepEqual(await driver.stop(svc, ctx), { killed: false });
  assert.deepEqual([deploymentOf(w.api).spec.replicas, w.api.pods("default").length], [0, 0]);
  await driver.start(svc, ctx);
  w.api.setBehaviour({}, { terminationDelayMs: 60_000 });
  const slow = await w.service({}, { shutdownTimeout: 0.3 });
  assert.deepEqual(await driver.stop(slow.svc, slow.ctx), { killed: true });
  assert.equal(w.api.pods("default").length, 0);
  assert.ok(
    w.api.requests.some((r) => r.method === "DELETE" && /gracePeriodSeconds=0/.test(r.query)),
  );
  await driver.start(svc, ctx);
  const from = w.api.requests.length;
  assert.deepEqual(await driver.stop(svc, ctx, { force: true }), { killed: false });
  assert.equal(w.api.pods("default").length, 0);
  // Forced: the pods are deleted with grace period 0 before any wait for them to go.
  const after = w.api.requests.slice(from);
  const firstDelete = after.findIndex((r) => r.method === "DELETE" && r.path.includes("/pods/"));
  const firstWait = after.findIndex((r) => r.path.endsWith("/pods") && /watch=true/.test(r.query));
  assert.ok(
    firstDelete >= 0 && (firstWait < 0 || firstDelete < firstWait),
    "deleted, not waited for",
  );
  assert.match(after[firstDelete].query, /gracePeriodSeconds=0/);
});

Deno.test("stop_policy delete removes our Deployment and keeps the namespace; it needs manifests_path", async () => {
  await using w = await World.open();
  await w.file("m/web/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n");
  await w.file("m/web/app.yaml", manifest("web", { replicas: 1 }));
  const { svc, ctx } = await w.service({ namespace: "team", stop_policy: "delete" });
  await driver.start(svc, ctx);
  await driver.stop(svc, ctx);
  assert.equal(w.api.deployment("team", "web"), undefined);
  assert.ok(w.api.get("namespaces", undefined, "team"), "never a namespace");
  await assert.rejects(
    w.service({ stop_policy: "delete", manifests_path: undefined }),
    /stop_policy = "delete" needs manifests_path/,
  );
});

Deno.test("logs: one pod plain, several merged by time with [pod/NAME], follow attaches the pods a rollout adds", async () => {
  await using w = await World.open({ behaviours: [[{}, { logLines: ["one", "two"] }]] });
  await w.file("m/web/app.yaml", manifest("web", { replicas: 1 }));
  const { svc, ctx } = await w.service();
  await driver.start(svc, ctx);
  const read = async (o = {}) => {
    const out: string[] = [];
    for await (const l of driver.logs(svc, ctx, o)) out.push(l);
    return out;
  };
  assert.deepEqual(await read({ lines: 1 }), ["two"]);
  const pod = (w.api.pods("default")[0] as Any).metadata.name;
  const ac = new AbortController();
  const lines: string[] = [];
  const following = (async () => {
    for await (const l of driver.logs(svc, ctx, { lines: 1, follow: true, signal: ac.signal })) {
      lines.push(l);
    }
  })();
  await until(() => lines.includes("two"), "the tail");
  w.api.writeLog("default", pod, "later");
  await until(() => lines.includes("later"), "a new line");
  await w.api.request("/apis/apps/v1/namespaces/default/deployments/web/scale", {
    method: "PATCH",
    body: { spec: { replicas: 2 } },
    contentType: "application/merge-patch+json",
  });
  await until(
    () => lines.some((l) => /^\[pod\/web-\S+\] one$/.test(l)),
    "the new pod's lines, prefixed",
  );
  ac.abort();
  await following;
  await until(() => deploymentOf(w.api).status?.availableReplicas === 2, "two pods");
  const both = await read({ lines: 3 });
  assert.equal(both.length, 3);
  for (const l of both) assert.match(l, /^\[pod\/web-\S+-\S+\] (one|two|later)$/);
});

Deno.test("the kubeconfig is looked for as kubectl does, relative to the registry's cwd, never localhost:8080", async () => {
  await using w = await World.open();
  await w.file("m/web/app.yaml", manifest("web", { replicas: 1 }));
  const first = (msgs: { ok: boolean; message: string }[]) => msgs.find((m) => !m.ok)?.message;
  let s = await w.service({ kubeconfig: "nope.yaml" });
  assert.equal(
    first(await driver.preflight(s.svc, s.ctx)),
    `Kubeconfig not found: ${join(w.dir, "nope.yaml")} (from kubeconfig)`,
  );
  s = await w.service({ kubeconfig: undefined }, { env: { HOME: join(w.dir, "empty-home") } });
  assert.equal(
    first(await driver.preflight(s.svc, s.ctx)),
    `No kubeconfig found: KUBECONFIG is not set; ${
      join(w.dir, "empty-home", ".kube", "config")
    } does not exist; not in a cluster (KUBERNETES_SERVICE_HOST is not set)`,
  );
  // KUBECONFIG: several files, the first to name something wins (as kubectl merges them).
  await w.file(
    "other.yaml",
    w.api.kubeconfigYaml({ context: "other", token: "wrong-token" }).replace(
      /current-context: other/,
      "current-context: other",
    ),
  );
  s = await w.service({ kubeconfig: undefined }, {
    env: { KUBECONFIG: `missing.yaml:kubeconfig:other.yaml` },
  });
  assert.ok((await driver.preflight(s.svc, s.ctx)).every((f) => f.ok));
  s = await w.service({ kubeconfig: undefined, context: "nowhere" }, {
    env: { KUBECONFIG: "kubeconfig:other.yaml" },
  });
  assert.equal(
    first(await driver.preflight(s.svc, s.ctx)),
    `Context "nowhere" not found in kubeconfig ${join(w.dir, "kubeconfig")}:${
      join(w.dir, "other.yaml")
    }`,
  );
  await w.file("plain.yaml", w.api.kubeconfigYaml().replace("https://", "http://"));
  s = await w.service({ kubeconfig: "plain.yaml" });
  assert.match(
    first(await driver.preflight(s.svc, s.ctx))!,
    /is served over plain http .* which the client refuses/,
  );
});

Deno.test("the API's failures each get their own words: refused, TLS, 401, 403 — and no token in any of them", async () => {
  await using w = await World.open();
  await w.file("m/web/app.yaml", manifest("web", { replicas: 1 }));
  const failed = async (table: Record<string, unknown> = {}) => {
    const { svc, ctx } = await w.service(table);
    return (await driver.preflight(svc, ctx)).find((f) => !f.ok)!;
  };
  await w.api.writeKubeconfig(join(w.dir, "bad-token"), { token: "not-the-t0ken" });
  const unauthorized = await failed({ kubeconfig: "bad-token" });
  assert.match(
    unauthorized.message,
    /rejected the credentials of user "double" \(401 Unauthorized\)/,
  );
  w.api.forbid();
  assert.match((await failed()).message, /^Forbidden: namespaces "default" is forbidden: /);
  w.api.forbid(false);
  await w.file(
    "wrong-ca",
    w.api.kubeconfigYaml().replace(
      /certificate-authority: .*/,
      `certificate-authority: ${join(w.dir, "ca.pem")}`,
    ),
  );
  const other = await makeTestCerts();
  await w.file("ca.pem", other.ca);
  await other.remove();
  assert.match(
    (await failed({ kubeconfig: "wrong-ca" })).message,
    /^Cannot trust the Kubernetes API at https:\/\/127\.0\.0\.1:\d+ \(context "double"\): TLS verification failed/,
  );
  await w.api.goAway();
  const refused = await failed();
  assert.match(
    refused.message,
    /^Cannot reach the Kubernetes API at https:\/\/127\.0\.0\.1:\d+ \(context "double"\): connection refused$/,
  );
  assert.match(refused.hint!, /kubectl --context double cluster-info/);
  for (const f of [unauthorized, refused]) {
    assert.ok(!JSON.stringify(f).includes("t0ken"), "no token in findings");
  }
  await w.file("broken.yaml", "users:\n- name: u\n  user:\n    token: t0ken-s3cret\n  bad: [\n");
  const broken = await failed({ kubeconfig: "broken.yaml" });
  assert.match(broken.message, /^Cannot read kubeconfig .*broken\.yaml: invalid YAML at line \d+/);
  assert.ok(!broken.message.includes("t0ken"));
});

Deno.test("an exec credential plugin's token authenticates (the client runs the plugin) and is redacted from messages", async () => {
  await using w = await World.open({ token: "exec-t0ken-9f2" });
  await w.file("m/web/app.yaml", manifest("web", { replicas: 1 }));
  const plugin = await w.file(
    "get-token.sh",
    `#!/bin/sh\necho '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"exec-t0ken-9f2"}}'\n`,
  );
  await Deno.chmod(plugin, 0o755);
  const exec = w.api.kubeconfigYaml({ token: null }).replace(
    "  user: {}",
    `  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: ${plugin}\n      interactiveMode: Never`,
  );
  await w.file("exec.yaml", exec);
  const { svc, ctx } = await w.service({ kubeconfig: "exec.yaml" });
  assert.ok(
    (await driver.preflight(svc, ctx)).every((f) => f.ok),
    "authenticated by the plugin's token",
  );
  const { connect } = await import("../../drivers/kubernetes/_client.ts");
  const kube = await connect({ kubeconfig: "exec.yaml", env: {}, cwd: w.dir });
  await kube.json("GET", "/version");
  assert.equal(
    kube.redact("Authorization: Bearer exec-t0ken-9f2 was refused"),
    "Authorization: Bearer *** was refused",
  );
});

Deno.test("the API going away mid-start fails the start after a grace; a blip within the grace is survived", async () => {
  await using w = await World.open({ behaviours: [[{}, { readyAfterMs: 60_000 }]] });
  await w.file("m/web/app.yaml", manifest("web", { replicas: 1 }));
  const { svc, ctx } = await w.service({}, { startTimeout: 60 });
  const watches = () => w.api.requests.filter((r) => /watch=true/.test(r.query)).length;
  const starting = rejects(driver.start(svc, ctx));
  await until(() => watches() >= 2, "the rollout wait to watch");
  await w.api.goAway();
  const err = await starting;
  assert.match(
    err.message,
    /^Cannot start "web": Lost the Kubernetes API at https:\/\/\S+ \(context "double"\): connection refused \(for 5s\); could not scale it back/,
  );
  await w.api.comeBack();
  w.api.setBehaviour({}, { failure: "NeverReady" });
  const seen = watches();
  let failure: unknown;
  const again = driver.start(svc, ctx).catch((e) => (failure = e));
  await until(() => watches() > seen || failure !== undefined, "the second rollout wait to watch");
  assert.equal(failure, undefined);
  await w.api.goAway();
  await new Promise((r) => setTimeout(r, 300)); // the outage lasts 0.3 s: a blip, not an end
  await w.api.comeBack();
  w.api.clearBehaviours(); // now the pod becomes ready
  assert.equal(((await again) as Any).data?.deployment, "web");
  assert.equal(deploymentOf(w.api).status.availableReplicas, 1);
});

Deno.test("no product module imports @kubernetes/client-node at load time: only drivers/kubernetes/_client.ts, lazily", async () => {
  const files: string[] = [];
  const walk = async (dir: string) => {
    for (const e of await readdir(join(ROOT, dir), { withFileTypes: true })) {
      const rel = join(dir, e.name);
      if (e.isDirectory()) await walk(rel);
      else if (rel.endsWith(".ts")) files.push(rel);
    }
  };
  for (const d of ["core", "drivers", "checks", "cli"]) await walk(d);
  const eager = [], lazy = [];
  for (const f of [...files, "mod.ts", "plugin.ts", "cli.ts"]) {
    const text = await readFile(join(ROOT, f), "utf8");
    if (/^(?:import|export)\s+(?!type\b)(?:[^;]*?from\s+)?"@kubernetes\/client-node"/m.test(text)) {
      eager.push(f);
    }
    if (/(?<!typeof\s+)import\(\s*"@kubernetes\/client-node"\s*\)/.test(text)) lazy.push(f);
  }
  assert.deepEqual([eager, lazy], [[], ["drivers/kubernetes/_client.ts"]]);
});
