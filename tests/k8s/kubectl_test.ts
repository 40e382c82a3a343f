/**
 * Cross-checks of the API double with the real kubectl: the commands a kubernetes driver (or its
 * user) runs, over HTTPS with the test CA and a bearer token, and over plain HTTP (kubectl sends
 * no token over plain HTTP, so those runs have no auth), with several kubectl minor versions.
 */

import assert from "node:assert/strict";
import { until } from "../_until.ts";
import { type KubectlEnv, kubectlEnv, kubectlMissing } from "./_kubectl.ts";
import type { ApiDoubleOptions } from "./api_double.ts";

if (kubectlMissing) console.log(`kubectl cross-checks are ignored: ${kubectlMissing}`);
const ignore = kubectlMissing !== undefined;

type Client = { minor: string; name: string; opts: ApiDoubleOptions };
const CLIENTS: Client[] = [
  {
    minor: "1.30",
    name: "kubectl 1.30 over HTTPS with a token",
    opts: { tls: true, token: "s3cret", version: "v1.30.4" },
  },
  { minor: "1.33", name: "kubectl 1.33 over plain HTTP", opts: { version: "v1.33.1" } },
  { minor: "1.27", name: "kubectl 1.27 over plain HTTP", opts: { version: "v1.27.16" } },
];

const MANIFEST = (image = "nginx:1.25") =>
  `# a namespace and a deployment in one file
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
  labels: {app: web}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: ${image}
        ports:
        - containerPort: 80
`;

/** Applies MANIFEST from a directory; asserts kubectl said so. */
async function applyDemo(env: KubectlEnv, image?: string): Promise<void> {
  await Deno.mkdir(`${env.dir}/manifests`);
  await env.file("manifests/app.yaml", MANIFEST(image));
  const r = await env.kubectl([
    "apply",
    "--server-side",
    "--validate=false",
    "-f",
    `${env.dir}/manifests`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^namespace\/demo serverside-applied$/m);
  assert.match(r.stdout, /^deployment\.apps\/web serverside-applied$/m);
}

async function rolledOut(env: KubectlEnv): Promise<void> {
  const r = await env.kubectl(["rollout", "status", "deploy/web", "-n", "demo", "--timeout=20s"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /deployment "web" successfully rolled out/);
}

for (const c of CLIENTS) {
  Deno.test({
    name: `${c.name}: kubectl apply --server-side applies a multi-document manifest directory`,
    ignore,
    async fn() {
      await using env = await kubectlEnv(c.minor, c.opts);
      await applyDemo(env);
      const d = env.api.deployment("demo", "web")!;
      assert.equal((d.metadata as { generation: number }).generation, 1);
      const managers = (d.metadata as { managedFields: { manager: string; operation: string }[] })
        .managedFields;
      assert.deepEqual(managers.map((m) => [m.manager, m.operation]), [["kubectl", "Apply"]]);
      const patch = env.api.requests.find((r) =>
        r.method === "PATCH" && r.path.endsWith("/deployments/web")
      )!;
      assert.equal(patch.contentType, "application/apply-patch+yaml");
      assert.match(patch.query, /fieldManager=kubectl/);
      assert.doesNotThrow(() => JSON.parse(patch.body), "kubectl sends the apply body as JSON");
      // Applying the same manifest again changes nothing.
      const again = await env.kubectl([
        "apply",
        "--server-side",
        "--validate=false",
        "-f",
        `${env.dir}/manifests`,
      ]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(
        (env.api.deployment("demo", "web")!.metadata as { generation: number }).generation,
        1,
      );
    },
  });

  Deno.test({
    name: `${c.name}: kubectl get deploy prints the server's table and -o json the objects`,
    ignore,
    async fn() {
      await using env = await kubectlEnv(c.minor, c.opts);
      await applyDemo(env);
      await rolledOut(env);
      const table = await env.kubectl(["get", "deploy", "-n", "demo"]);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE$/m);
      assert.match(table.stdout, /^web\s+1\/1\s+1\s+1\s+\d+s$/m);
      const json = await env.kubectl(["get", "deploy", "-n", "demo", "-o", "json"]);
      assert.equal(json.code, 0, json.stderr);
      const list = JSON.parse(json.stdout);
      assert.equal(list.kind, "List");
      assert.equal(list.items[0].metadata.name, "web");
      assert.equal(list.items[0].status.availableReplicas, 1);
      const pods = await env.kubectl(["get", "pods", "-n", "demo"]);
      assert.match(pods.stdout, /^web-[a-z0-9]+-[a-z0-9]{5}\s+1\/1\s+Running\s+0\s+\d+s$/m);
    },
  });

  Deno.test({
    name: `${c.name}: kubectl rollout status waits for the pods and then succeeds`,
    ignore,
    async fn() {
      await using env = await kubectlEnv(c.minor, {
        ...c.opts,
        // Pods stay unready until kubectl watches; then they become ready (no race on timing).
        behaviours: [[{ deployment: "web" }, { readyAfterMs: 600_000 }]],
      });
      await applyDemo(env);
      const status = env.kubectl([
        "rollout",
        "status",
        "deploy/web",
        "-n",
        "demo",
        "--timeout=20s",
      ]);
      await until(
        () =>
          env.api.requests.some((q) =>
            q.path.endsWith("/deployments") && /watch=true/.test(q.query)
          ),
        "kubectl to watch the deployment",
      );
      env.api.setBehaviour({ deployment: "web" }, { readyAfterMs: 0 });
      const r = await status;
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        /Waiting for deployment "web" rollout to finish: 0 of 1 updated replicas are available\.\.\./,
      );
      assert.match(r.stdout, /deployment "web" successfully rolled out/);
      assert.ok(
        env.api.requests.some((q) =>
          q.path === "/apis/apps/v1/namespaces/demo/deployments" && /watch=true/.test(q.query)
        ),
      );
    },
  });

  Deno.test({
    name: `${c.name}: kubectl rollout status fails when the progress deadline is exceeded`,
    ignore,
    async fn() {
      await using env = await kubectlEnv(c.minor, {
        ...c.opts,
        behaviours: [[{ deployment: "web" }, { failure: "NeverReady", progressDeadlineMs: 300 }]],
      });
      await applyDemo(env);
      const r = await env.kubectl([
        "rollout",
        "status",
        "deploy/web",
        "-n",
        "demo",
        "--timeout=20s",
      ]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /deployment "web" exceeded its progress deadline/);
    },
  });

  Deno.test({
    name: `${c.name}: kubectl logs deploy/web prints the pod's log and --tail keeps the last lines`,
    ignore,
    async fn() {
      await using env = await kubectlEnv(c.minor, {
        ...c.opts,
        behaviours: [[{}, { logLines: ["one", "two", "three"] }]],
      });
      await applyDemo(env);
      await rolledOut(env);
      const all = await env.kubectl(["logs", "deploy/web", "-n", "demo"]);
      assert.equal(all.code, 0, all.stderr);
      assert.equal(all.stdout, "one\ntwo\nthree\n");
      const tail = await env.kubectl(["logs", "deploy/web", "-n", "demo", "--tail=1"]);
      assert.equal(tail.stdout, "three\n");
      assert.ok(
        env.api.requests.some((q) => q.path.endsWith("/log") && /tailLines=1/.test(q.query)),
      );
    },
  });

  Deno.test({
    name: `${c.name}: kubectl scale sets the replicas through the scale subresource`,
    ignore,
    async fn() {
      await using env = await kubectlEnv(c.minor, c.opts);
      await applyDemo(env);
      const r = await env.kubectl(["scale", "deploy/web", "--replicas=2", "-n", "demo"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /deployment\.apps\/web scaled/);
      const patch = env.api.requests.find((q) => q.path.endsWith("/deployments/web/scale"))!;
      assert.equal(patch.contentType, "application/merge-patch+json");
      assert.deepEqual(JSON.parse(patch.body), { spec: { replicas: 2 } });
      await rolledOut(env);
      assert.equal(env.api.pods("demo", "app=web").length, 2);
    },
  });

  Deno.test({
    name: `${c.name}: kubectl delete pod waits until it is gone and the ReplicaSet replaces it`,
    ignore,
    async fn() {
      await using env = await kubectlEnv(c.minor, c.opts);
      await applyDemo(env);
      await rolledOut(env);
      const [pod] = env.api.pods("demo");
      const name = (pod.metadata as { name: string }).name;
      const r = await env.kubectl(["delete", "pod", name, "-n", "demo"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`pod "${name}" deleted`));
      assert.equal(env.api.get("pods", "demo", name), undefined);
      await until(
        () => env.api.pods("demo").some((p) => (p.metadata as { name: string }).name !== name),
        "a replacement pod",
      );
    },
  });
}

Deno.test({
  name:
    "kubectl 1.33 create sends protobuf and is told 415 Unsupported Media Type, while 1.30 create works",
  ignore,
  async fn() {
    await using env = await kubectlEnv("1.33", { version: "v1.33.1" });
    const r = await env.kubectl(["create", "deployment", "x", "--image=nginx", "-n", "default"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /unknown format/);
    const post = env.api.requests.find((q) => q.method === "POST")!;
    assert.equal(post.contentType, "application/vnd.kubernetes.protobuf");
    assert.equal(post.status, 415);
    await using old = await kubectlEnv("1.30", { version: "v1.30.4" });
    const ok = await old.kubectl(["create", "deployment", "x", "--image=nginx", "-n", "default"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /deployment\.apps\/x created/);
  },
});

Deno.test({
  name:
    "kubectl apply --server-side without --validate=false fails because the double has no OpenAPI",
  ignore,
  async fn() {
    await using env = await kubectlEnv("1.30", {});
    await env.file("app.yaml", MANIFEST());
    const r = await env.kubectl(["apply", "--server-side", "-f", `${env.dir}/app.yaml`]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /failed to download openapi|could not find the requested resource/);
    assert.ok(env.api.requests.some((q) => q.path.startsWith("/openapi/") && q.status === 404));
  },
});

Deno.test({
  name: "kubectl shows CrashLoopBackOff with rising restarts, and logs --previous shows the crash",
  ignore,
  async fn() {
    await using env = await kubectlEnv("1.30", { tls: true });
    await applyDemo(env, "nginx:crashloop");
    await until(
      () => env.api.pods("demo").some((p) => JSON.stringify(p.status).includes('"restartCount":2')),
      "two restarts",
    );
    const r = await env.kubectl(["get", "pods", "-n", "demo"]);
    assert.match(r.stdout, /^web-\S+\s+0\/1\s+(CrashLoopBackOff|Running|Error)\s+([2-9]|\d\d+)/m);
    const previous = await env.kubectl(["logs", "deploy/web", "-n", "demo", "--previous"]);
    assert.equal(previous.code, 0, previous.stderr);
    assert.match(previous.stdout, /fatal: web exited with code 1/);
  },
});

Deno.test({
  name: "kubectl is told Unauthorized without the token and Forbidden when the double forbids",
  ignore,
  async fn() {
    await using env = await kubectlEnv("1.30", { tls: true, token: "right" }, { token: "wrong" });
    const r = await env.kubectl(["get", "deploy", "-n", "default"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /You must be logged in to the server|Unauthorized/);
    await env.api.writeKubeconfig(env.kubeconfig);
    env.api.forbid();
    const f = await env.kubectl(["get", "deploy", "-n", "default"]);
    assert.equal(f.code, 1);
    assert.match(f.stderr, /Error from server \(Forbidden\): deployments\.apps is forbidden/);
  },
});

Deno.test({
  name: "kubectl reports connection refused while the API is away, and works when it comes back",
  ignore,
  async fn() {
    await using env = await kubectlEnv("1.30", {});
    await env.api.goAway();
    const r = await env.kubectl(["get", "ns"], 20_000);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /connection refused/);
    await env.api.comeBack();
    const ok = await env.kubectl(["get", "ns"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^default\s+Active\s+\d+s$/m);
  },
});
