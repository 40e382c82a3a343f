/**
 * The simulated workloads of the API double: ReplicaSets and pods made per pod-template hash,
 * deployment status and conditions, the per-test failure behaviours, scaling, pod deletion,
 * the paused controller, and pod logs (tail, previous, follow).
 */

import assert from "node:assert/strict";
import { until } from "../_until.ts";
import { type Any, apply, condition, deployment, deployPath, firstContainer } from "./_fixtures.ts";
import { startApiDouble } from "./api_double.ts";

const dep = (api: Any, name: string) => api.deployment("default", name) as Any;

Deno.test("a deployment gets a ReplicaSet per template hash, named pods, and a complete status", async () => {
  await using api = await startApiDouble();
  await apply(api, deployment("web", { replicas: 2 }));
  await until(() => dep(api, "web")?.status?.availableReplicas === 2, "two available pods");
  const [rs] = api.replicaSets("default") as Any[];
  const hash = rs.metadata.labels["pod-template-hash"];
  assert.equal(rs.metadata.name, `web-${hash}`);
  assert.equal(rs.metadata.ownerReferences[0].kind, "Deployment");
  for (const pod of api.pods("default") as Any[]) {
    assert.match(pod.metadata.name, new RegExp(`^web-${hash}-[a-z0-9]{5}$`));
    assert.equal(pod.metadata.labels["pod-template-hash"], hash);
    assert.equal(pod.status.phase, "Running");
    assert.equal(pod.status.containerStatuses[0].ready, true);
  }
  const s = dep(api, "web").status;
  assert.deepEqual([
    s.observedGeneration,
    s.replicas,
    s.updatedReplicas,
    s.readyReplicas,
    s.unavailableReplicas,
  ], [1, 2, 2, 2, undefined]);
  assert.equal(condition(dep(api, "web"), "Available").status, "True");
  assert.equal(condition(dep(api, "web"), "Progressing").reason, "NewReplicaSetAvailable");
  // A new template makes a second ReplicaSet; the old one is scaled to 0 once the new is available.
  const next = deployment("web", { replicas: 2, image: "busybox:1.37" });
  await apply(api, next);
  await until(() => {
    const rss = api.replicaSets("default") as Any[];
    return rss.length === 2 && rss.some((r) =>
      r.metadata.name === rs.metadata.name && r.spec.replicas === 0
    ) &&
      dep(api, "web").status.updatedReplicas === 2 && dep(api, "web").status.replicas === 2;
  }, "the rollout to the new ReplicaSet");
  assert.equal(dep(api, "web").metadata.annotations["deployment.kubernetes.io/revision"], "2");
});

Deno.test("a crash-looping container shows CrashLoopBackOff, a rising restartCount and its logs", async () => {
  await using api = await startApiDouble({
    behaviours: [[{ deployment: "web" }, {
      failure: "CrashLoopBackOff",
      crashAfterMs: 20,
      backoffMs: 40,
    }]],
  });
  await apply(api, deployment("web"));
  await until(
    () =>
      firstContainer(api, "web")?.restartCount >= 2 && firstContainer(api, "web")?.state?.waiting,
    "two restarts",
  );
  const c = firstContainer(api, "web");
  assert.equal(c.state.waiting.reason, "CrashLoopBackOff");
  assert.equal(c.lastState.terminated.exitCode, 1);
  assert.equal(c.ready, false);
  const pod = (api.pods("default")[0] as Any).metadata.name;
  const logs = await api.request(`/api/v1/namespaces/default/pods/${pod}/log?previous=true`);
  assert.equal(logs.headers["content-type"], "text/plain");
  assert.match(logs.text, /fatal: main exited with code 1\n$/);
  assert.equal(condition(dep(api, "web"), "Available").status, "False");
});

Deno.test("image pull failures go from ErrImagePull to ImagePullBackOff, and bad names give InvalidImageName", async () => {
  await using api = await startApiDouble({
    behaviours: [[{ image: /pullfail/ }, { backoffMs: 40 }]],
  });
  await apply(api, deployment("pull", { image: "registry.example/app:pullfail" }));
  await apply(api, deployment("bad", { image: "Not A Valid:Image" }));
  await until(
    () => firstContainer(api, "pull")?.state?.waiting?.reason === "ErrImagePull",
    "ErrImagePull",
  );
  await until(
    () => firstContainer(api, "pull")?.state?.waiting?.reason === "ImagePullBackOff",
    "ImagePullBackOff",
  );
  await until(
    () => firstContainer(api, "bad")?.state?.waiting?.reason === "InvalidImageName",
    "InvalidImageName",
  );
  const pod = (api.pods("default", "app=pull")[0] as Any).metadata.name;
  const logs = await api.request(`/api/v1/namespaces/default/pods/${pod}/log`);
  assert.equal(logs.status, 400);
  assert.match(logs.json().message, /is waiting to start/);
});

Deno.test("CreateContainerConfigError, NeverReady and Unschedulable pods never become available", async () => {
  await using api = await startApiDouble();
  api.setBehaviour({ deployment: "config" }, {
    failure: "CreateContainerConfigError",
    message: 'secret "db" not found',
  });
  api.setBehaviour({ deployment: "slow" }, { failure: "NeverReady" });
  api.setBehaviour({ deployment: "big" }, { failure: "Unschedulable" });
  for (const n of ["config", "slow", "big"]) await apply(api, deployment(n));
  await until(
    () => firstContainer(api, "config")?.state?.waiting?.message === 'secret "db" not found',
    "the config error",
  );
  await until(
    () => firstContainer(api, "slow")?.state?.running !== undefined,
    "a running, unready container",
  );
  assert.equal(firstContainer(api, "slow").ready, false);
  await until(
    () => (api.pods("default", "app=big")[0] as Any)?.status?.conditions !== undefined,
    "pod conditions",
  );
  const big = api.pods("default", "app=big")[0] as Any;
  assert.equal(big.status.phase, "Pending");
  assert.deepEqual([
    big.status.conditions[0].type,
    big.status.conditions[0].status,
    big.status.conditions[0].reason,
  ], ["PodScheduled", "False", "Unschedulable"]);
  for (const n of ["config", "slow", "big"]) {
    assert.equal(dep(api, n).status.availableReplicas, undefined, n);
  }
});

Deno.test("the progress deadline turns Progressing False with ProgressDeadlineExceeded", async () => {
  await using api = await startApiDouble();
  await apply(api, deployment("web", { image: "app:stuck" }));
  await until(
    () => condition(dep(api, "web"), "Progressing")?.reason === "ProgressDeadlineExceeded",
    "the deadline",
    5000,
  );
  const p = condition(dep(api, "web"), "Progressing");
  assert.equal(p.status, "False");
  assert.match(p.message, /^ReplicaSet "web-[a-z0-9]+" has timed out progressing\.$/);
});

Deno.test("ReplicaFailure shows on the deployment when pods cannot be created", async () => {
  await using api = await startApiDouble({
    behaviours: [[{ deployment: "web" }, { failure: "ReplicaFailure" }]],
  });
  await apply(api, deployment("web"));
  await until(
    () => condition(dep(api, "web"), "ReplicaFailure") !== undefined,
    "the ReplicaFailure condition",
  );
  assert.equal(condition(dep(api, "web"), "ReplicaFailure").reason, "FailedCreate");
  assert.equal(api.pods("default").length, 0);
});

Deno.test("behaviours change at run time: a crash-looping deployment recovers when the failure is lifted", async () => {
  await using api = await startApiDouble();
  api.setBehaviour({ deployment: "web" }, {
    failure: "CrashLoopBackOff",
    crashAfterMs: 10,
    backoffMs: 30,
  });
  await apply(api, deployment("web"));
  await until(() => firstContainer(api, "web")?.restartCount >= 1, "a restart");
  api.setBehaviour({ deployment: "web" }, { failure: undefined });
  await until(() => firstContainer(api, "web")?.ready === true, "the container to become ready");
  assert.ok(firstContainer(api, "web").restartCount >= 1);
});

Deno.test("scaling to 0 removes pods after the termination delay; a grace-0 delete removes one at once", async () => {
  await using api = await startApiDouble({ behaviours: [[{}, { terminationDelayMs: 150 }]] });
  await apply(api, deployment("web", { replicas: 2 }));
  await until(() => dep(api, "web")?.status?.readyReplicas === 2, "two ready pods");
  const [first] = api.pods("default") as Any[];
  const gone = await api.request(
    `/api/v1/namespaces/default/pods/${first.metadata.name}?gracePeriodSeconds=0`,
    { method: "DELETE" },
  );
  assert.equal(gone.status, 200);
  assert.equal(api.get("pods", "default", first.metadata.name), undefined, "removed at once");
  await api.request(`${deployPath("web")}/scale`, {
    method: "PATCH",
    body: { spec: { replicas: 0 } },
    contentType: "application/merge-patch+json",
  });
  await until(() => api.pods("default").length === 0, "the pods to go");
  const last = api.events("pods").filter((e) =>
    (e.object as Any).metadata.name !== first.metadata.name
  );
  assert.ok(
    last.some((e) => e.type === "MODIFIED" && (e.object as Any).metadata.deletionTimestamp),
    "Terminating first",
  );
  assert.ok(last.some((e) => e.type === "DELETED"));
});

Deno.test("a paused controller makes nothing progress until it is resumed", async () => {
  await using api = await startApiDouble();
  api.pauseController();
  await apply(api, deployment("web"));
  const w = await api.stream("/apis/apps/v1/namespaces/default/replicasets?watch=true");
  try {
    await assert.rejects(w.next(200), /no line within 200 ms/);
    assert.equal(dep(api, "web").status.observedGeneration, undefined);
    api.pauseController(false);
    assert.equal(JSON.parse((await w.next())!).type, "ADDED");
    await until(() => dep(api, "web").status.observedGeneration === 1, "the status to catch up");
  } finally {
    w.close();
  }
});

Deno.test("pod logs support tailLines, timestamps, container, and follow until the pod goes", async () => {
  await using api = await startApiDouble({
    behaviours: [[{}, { logLines: ["a", "b", "c"], terminationDelayMs: 20 }]],
  });
  await apply(api, deployment("web"));
  await until(() => firstContainer(api, "web")?.ready === true, "a ready pod");
  const pod = (api.pods("default")[0] as Any).metadata.name;
  const path = `/api/v1/namespaces/default/pods/${pod}/log`;
  assert.equal((await api.request(`${path}?tailLines=2`)).text, "b\nc\n");
  assert.match(
    (await api.request(`${path}?timestamps=true&tailLines=1`)).text,
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z c\n$/,
  );
  assert.equal((await api.request(`${path}?container=nope`)).status, 400);
  const f = await api.stream(`${path}?follow=true&tailLines=1`);
  try {
    assert.equal(await f.next(), "c");
    api.writeLog("default", pod, "written later");
    assert.equal(await f.next(), "written later");
    await api.request(path.replace(/\/log$/, ""), { method: "DELETE" });
    assert.equal(await f.next(), undefined, "the stream ends when the pod goes");
  } finally {
    f.close();
  }
});
