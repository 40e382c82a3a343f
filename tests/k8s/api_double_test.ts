/**
 * The API double's own HTTP behaviour: discovery, validation, dry runs, auth, content types,
 * patches and server-side apply, watches, namespaces, tables, TLS, and going away.
 */

import assert from "node:assert/strict";
import { until } from "../_until.ts";
import { type Any, apply, deployment, deployPath } from "./_fixtures.ts";
import { makeTestCerts } from "./_tls.ts";
import { startApiDouble } from "./api_double.ts";

Deno.test("the API double serves discovery, a configurable /version, and 404 Status for OpenAPI", async () => {
  await using api = await startApiDouble({ version: "v1.29.7" });
  assert.equal((await api.request("/version")).json().gitVersion, "v1.29.7");
  assert.equal((await api.request("/version")).json().minor, "29");
  const apps = (await api.request("/apis/apps/v1")).json();
  const scale = apps.resources.find((r: Any) => r.name === "deployments/scale");
  assert.deepEqual([scale.group, scale.version, scale.kind], ["autoscaling", "v1", "Scale"]);
  const core = (await api.request("/api/v1")).json().resources.map((r: Any) => r.name);
  for (const r of ["pods", "pods/log", "namespaces"]) assert.ok(core.includes(r), r);
  const openapi = await api.request("/openapi/v3");
  assert.equal(openapi.status, 404);
  assert.equal(openapi.headers["content-type"], "application/json");
  assert.deepEqual([openapi.json().kind, openapi.json().reason, openapi.json().code], [
    "Status",
    "NotFound",
    404,
  ]);
});

Deno.test("strict field validation rejects spec.replica, naming the field", async () => {
  await using api = await startApiDouble();
  const bad = deployment("web");
  bad.spec.replica = 3;
  const applied = await apply(api, bad, "fieldManager=test&fieldValidation=Strict");
  assert.equal(applied.status, 400);
  assert.equal(applied.json().reason, "BadRequest");
  assert.match(applied.json().message, /\.spec\.replica: field not declared in schema/);
  const created = await api.request(
    "/apis/apps/v1/namespaces/default/deployments?fieldValidation=Strict",
    { method: "POST", body: bad },
  );
  assert.equal(created.status, 400);
  assert.match(created.json().message, /strict decoding error: unknown field "spec\.replica"/);
  assert.equal(api.deployment("default", "web"), undefined);
  // The default (Warn) keeps going, drops the field and says so in a Warning header.
  const warned = await apply(api, bad);
  assert.equal(warned.status, 201);
  assert.match(String(warned.headers.warning), /unknown field \\?"spec\.replica\\?"/);
  assert.equal((api.deployment("default", "web") as Any).spec.replica, undefined);
});

Deno.test("invalid deployments get 422 Invalid with the causes", async () => {
  await using api = await startApiDouble();
  const bad = deployment("web");
  bad.spec.template.metadata.labels = { app: "other" };
  delete bad.spec.template.spec.containers[0].image;
  const r = await apply(api, bad);
  assert.equal(r.status, 422);
  assert.equal(r.json().reason, "Invalid");
  assert.deepEqual(r.json().details.causes.map((c: Any) => c.field), [
    "spec.template.metadata.labels",
    "spec.template.spec.containers[0].image",
  ]);
  assert.match(r.json().message, /^Deployment\.apps "web" is invalid: \[/);
});

Deno.test("dryRun=All returns the result without storing it", async () => {
  await using api = await startApiDouble();
  const dry = await apply(api, deployment("web"), "fieldManager=test&dryRun=All");
  assert.equal(dry.status, 201);
  assert.equal(dry.json().spec.replicas, 1);
  assert.equal(api.deployment("default", "web"), undefined);
  assert.equal((await apply(api, deployment("web"))).status, 201);
  const rv = (api.deployment("default", "web") as Any).metadata.resourceVersion;
  const bigger = await apply(
    api,
    deployment("web", { replicas: 5 }),
    "fieldManager=test&dryRun=All",
  );
  assert.equal(bigger.json().spec.replicas, 5);
  assert.equal(bigger.json().metadata.generation, 2);
  const stored = api.deployment("default", "web") as Any;
  assert.deepEqual([stored.spec.replicas, stored.metadata.generation], [1, 1]);
  assert.ok(Number(stored.metadata.resourceVersion) >= Number(rv));
});

Deno.test("a bearer token is required when configured (401), and forbid mode answers 403", async () => {
  await using api = await startApiDouble({ token: "t0ken" });
  const none = await api.request("/api/v1/namespaces", { token: null });
  assert.equal(none.status, 401);
  assert.deepEqual([none.json().kind, none.json().status, none.json().reason], [
    "Status",
    "Failure",
    "Unauthorized",
  ]);
  assert.equal((await api.request("/api/v1/namespaces", { token: "nope" })).status, 401);
  assert.equal((await api.request("/api/v1/namespaces")).status, 200);
  api.forbid();
  const denied = await api.request("/apis/apps/v1/namespaces/default/deployments/web");
  assert.equal(denied.status, 403);
  assert.equal(denied.json().reason, "Forbidden");
  assert.match(
    denied.json().message,
    /deployments\.apps "web" is forbidden: .* cannot get resource "deployments"/,
  );
  assert.equal((await api.request("/apis")).status, 200, "discovery stays allowed");
});

Deno.test("protobuf request bodies get 415 Unsupported Media Type", async () => {
  await using api = await startApiDouble();
  const r = await api.request("/apis/apps/v1/namespaces/default/deployments", {
    method: "POST",
    body: "k8s\u0000\n\u0012",
    contentType: "application/vnd.kubernetes.protobuf",
  });
  assert.equal(r.status, 415);
  assert.equal(r.json().reason, "UnsupportedMediaType");
  await apply(api, deployment("web"));
  const odd = await api.request(deployPath("web"), {
    method: "PATCH",
    body: "{}",
    contentType: "text/plain",
  });
  assert.equal(odd.status, 415, "an unknown patch type");
});

Deno.test("generation goes up on spec changes only, and uid and creationTimestamp stay", async () => {
  await using api = await startApiDouble();
  const first = (await apply(api, deployment("web"))).json();
  const labelled = deployment("web");
  labelled.metadata.labels.tier = "front";
  labelled.metadata.annotations = { note: "x" };
  const second = (await apply(api, labelled)).json();
  assert.equal(second.metadata.generation, 1);
  assert.equal(second.metadata.annotations.note, "x");
  const third = (await apply(api, { ...labelled, spec: { ...labelled.spec, replicas: 3 } })).json();
  assert.equal(third.metadata.generation, 2);
  assert.equal(third.metadata.uid, first.metadata.uid);
  assert.equal(third.metadata.creationTimestamp, first.metadata.creationTimestamp);
  assert.ok(Number(third.metadata.resourceVersion) > Number(second.metadata.resourceVersion));
});

Deno.test("merge, strategic merge and JSON patches change a deployment", async () => {
  await using api = await startApiDouble();
  await apply(api, deployment("web"));
  const patch = (body: unknown, contentType: string) =>
    api.request(deployPath("web"), { method: "PATCH", body, contentType });
  const merged = await patch({ spec: { replicas: 2 } }, "application/merge-patch+json");
  assert.equal(merged.json().spec.replicas, 2);
  const strategic = await patch({
    spec: {
      template: {
        spec: {
          containers: [{ name: "main", image: "busybox:1.37" }, { name: "side", image: "nginx:1" }],
        },
      },
    },
  }, "application/strategic-merge-patch+json");
  assert.deepEqual(
    strategic.json().spec.template.spec.containers.map((c: Any) => [c.name, c.image]),
    [["main", "busybox:1.37"], ["side", "nginx:1"]],
  );
  const json = await patch([{ op: "replace", path: "/spec/replicas", value: 4 }, {
    op: "test",
    path: "/spec/replicas",
    value: 4,
  }], "application/json-patch+json");
  assert.equal(json.json().spec.replicas, 4);
  const failed = await patch(
    [{ op: "test", path: "/spec/replicas", value: 9 }],
    "application/json-patch+json",
  );
  assert.equal(failed.status, 422);
  const stale = await patch(
    { metadata: { resourceVersion: "1" }, spec: { replicas: 1 } },
    "application/merge-patch+json",
  );
  assert.equal(stale.status, 409);
  assert.match(stale.json().message, /the object has been modified/);
});

Deno.test("server-side apply reports a conflict with another manager unless forced", async () => {
  await using api = await startApiDouble();
  await apply(api, deployment("web"));
  const scaled = await api.request(`${deployPath("web")}/scale?fieldManager=scaler`, {
    method: "PATCH",
    body: { spec: { replicas: 3 } },
    contentType: "application/merge-patch+json",
  });
  assert.deepEqual([scaled.json().kind, scaled.json().apiVersion, scaled.json().spec.replicas], [
    "Scale",
    "autoscaling/v1",
    3,
  ]);
  const conflict = await apply(api, deployment("web"));
  assert.equal(conflict.status, 409);
  assert.equal(conflict.json().reason, "Conflict");
  assert.match(conflict.json().message, /conflict with "scaler".*\.spec\.replicas/);
  const forced = await apply(api, deployment("web"), "fieldManager=test&force=true");
  assert.equal(forced.status, 200);
  assert.equal(forced.json().spec.replicas, 1);
  // A field the manager stops applying is removed (and defaulted again where it has a default).
  const noLabels = deployment("web");
  delete noLabels.metadata.labels;
  assert.equal((await apply(api, noLabels)).json().metadata.labels, undefined);
  const yaml =
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: main\n        image: busybox:1.36\n";
  const fromYaml = await api.request(`${deployPath("web")}?fieldManager=test`, {
    method: "PATCH",
    body: yaml,
    contentType: "application/apply-patch+yaml",
  });
  assert.equal(fromYaml.status, 200, fromYaml.text);
  assert.equal(fromYaml.json().spec.replicas, 2);
});

Deno.test("a watch streams ADDED and MODIFIED events and replays from a resourceVersion", async () => {
  await using api = await startApiDouble();
  const w = await api.stream(
    "/apis/apps/v1/namespaces/default/deployments?watch=1&fieldSelector=metadata.name%3Dweb",
  );
  try {
    assert.equal(w.status, 200, "headers arrive before any event");
    const created = (await apply(api, deployment("web"))).json();
    const first = JSON.parse((await w.next())!);
    assert.deepEqual([first.type, first.object.kind, first.object.metadata.name], [
      "ADDED",
      "Deployment",
      "web",
    ]);
    let ev = first;
    while (!(ev.object.status?.availableReplicas === 1)) ev = JSON.parse((await w.next())!);
    assert.equal(ev.type, "MODIFIED");
    assert.equal(ev.object.status.observedGeneration, 1);
    await apply(api, deployment("other"));
    const replay = await api.stream(
      `/apis/apps/v1/namespaces/default/deployments?watch=true&resourceVersion=${created.metadata.resourceVersion}`,
    );
    try {
      const next = JSON.parse((await replay.next())!);
      assert.equal(next.type, "MODIFIED", "events after the given resourceVersion only");
    } finally {
      replay.close();
    }
  } finally {
    w.close();
  }
});

Deno.test("namespaces are created, listed, refused twice, and deleted through Terminating", async () => {
  await using api = await startApiDouble();
  const body = { apiVersion: "v1", kind: "Namespace", metadata: { name: "team" } };
  assert.equal((await api.request("/api/v1/namespaces", { method: "POST", body })).status, 201);
  const again = await api.request("/api/v1/namespaces", { method: "POST", body });
  assert.deepEqual([again.status, again.json().reason], [409, "AlreadyExists"]);
  const missing = await apply(api, deployment("web", { namespace: "nowhere" }));
  assert.deepEqual([missing.status, missing.json().message], [
    404,
    'namespaces "nowhere" not found',
  ]);
  await apply(api, deployment("web", { namespace: "team" }));
  const names = (await api.request("/api/v1/namespaces")).json().items.map((n: Any) =>
    n.metadata.name
  );
  assert.deepEqual(names, ["default", "kube-public", "kube-system", "team"]);
  const deleted = await api.request("/api/v1/namespaces/team", { method: "DELETE" });
  assert.equal(deleted.json().status.phase, "Terminating");
  await until(() => api.get("namespaces", undefined, "team") === undefined, "the namespace to go");
  assert.equal(api.pods("team").length, 0);
  assert.equal((await api.request("/api/v1/namespaces/team")).status, 404);
});

Deno.test("kubectl-style Table requests get column definitions and rows", async () => {
  await using api = await startApiDouble();
  await apply(api, deployment("web"));
  await until(
    () => (api.deployment("default", "web") as Any)?.status?.readyReplicas === 1,
    "a ready pod",
  );
  const accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
  const t = (await api.request("/api/v1/namespaces/default/pods", { accept })).json();
  assert.equal(t.kind, "Table");
  assert.deepEqual(
    t.columnDefinitions.filter((c: Any) => c.priority === 0).map((c: Any) => c.name),
    ["Name", "Ready", "Status", "Restarts", "Age"],
  );
  assert.deepEqual(t.rows[0].cells.slice(1, 4), ["1/1", "Running", "0"]);
  assert.equal(t.rows[0].object.kind, "PartialObjectMetadata");
  const d = (await api.request(deployPath("web"), { accept })).json();
  assert.deepEqual(d.rows[0].cells.slice(0, 4), ["web", "1/1", 1, 1]);
});

Deno.test("the API double serves HTTPS with a CA-signed leaf certificate", async () => {
  await using api = await startApiDouble({ tls: true });
  assert.match(api.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.equal((await api.request("/version")).status, 200);
  const { request } = await import("./_client.ts");
  await assert.rejects(
    request({ url: api.url }, "/version"),
    /certificate|self.signed|unknown ?issuer/i,
  );
  const certs = await makeTestCerts();
  try {
    await using other = await startApiDouble({ tls: certs });
    assert.equal(other.caFile, certs.caFile);
    assert.match(other.kubeconfigYaml(), new RegExp(`certificate-authority: ${certs.caFile}`));
  } finally {
    await certs.remove();
  }
});

Deno.test("the API goes away (connections refused, watches cut) and comes back with its state", async () => {
  await using api = await startApiDouble();
  await apply(api, deployment("web"));
  const w = await api.stream("/apis/apps/v1/deployments?watch=true");
  try {
    await w.next();
    await api.goAway();
    while ((await w.next()) !== undefined) { /* drain until the cut */ }
    await assert.rejects(api.request("/version"), /ECONNREFUSED|refused/i);
    await api.comeBack();
    assert.equal((await api.request(deployPath("web"))).json().metadata.name, "web");
  } finally {
    w.close();
  }
});
