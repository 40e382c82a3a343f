/**
 * The kubernetes mode's two benchmarks, against the Kubernetes API test double
 * (`tests/k8s/api_double.ts`; no real API server can run here, so these measure our side only):
 *
 * - `kubernetes`: from the moment the double reports a rollout complete (seen by a watch of
 *   this script's own) to our `healthy` event, through `startServices` in-process, for a service
 *   whose http check targets an endpoint the host reaches (a local server, as an Ingress or a
 *   port-forward would be). Goal: median ≤ 100 ms. The same for a service without a check
 *   (its `ready` event) is in the details.
 * - `kubernetes-failfast`: for each fail-fast reason (CrashLoopBackOff, ErrImagePull,
 *   InvalidImageName, CreateContainerConfigError, ProgressDeadlineExceeded, ReplicaFailure,
 *   Unschedulable with `unschedulable_timeout = 0`), from the moment the double shows it (pod or
 *   Deployment status, seen by a watch of this script's own) to our `failed` event, which comes
 *   after the failed pods' last lines are read and the Deployment is scaled back. Goal: the
 *   slowest ≤ 2 s.
 * - `kubernetes-list`: the cold start of `cli.ts services list` for a registry with three
 *   kubernetes and two binary services (none started) against a registry of five binary
 *   services: the driver must not import `@kubernetes/client-node` (~400 ms) to list them.
 *   Goal: ≤ 1.10 × the binary-only registry.
 *
 * ```sh
 * deno run -A scripts/bench_kubernetes.ts [--runs 15] [--json]
 * ```
 *
 * @module
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { type LifecycleEvent, Platform, startServices, stopServices } from "../mod.ts";
import { startApiDouble } from "../tests/k8s/api_double.ts";
import { timeCommand } from "./_bench_status.ts";
import {
  type BenchResult,
  denoBinary,
  fmt,
  judge,
  median,
  q,
  quantile,
  resultLine,
  ROOT,
  running,
  tempDir,
} from "./_bench_util.ts";

/** Options of the kubernetes benchmarks. */
export interface KubernetesBenchOptions {
  /** Measured runs (default 15); one more warms up first. */
  runs?: number;
}

const MANIFEST = (name: string) =>
  `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
spec:
  replicas: 1
  selector:
    matchLabels: {app: ${name}}
  template:
    metadata:
      labels: {app: ${name}}
    spec:
      containers:
      - name: main
        image: registry.example/${name}:1
`;

function k8sService(name: string, dir: string, check?: number, image?: string): string {
  mkdirSync(join(dir, "k8s", name), { recursive: true });
  const manifest = MANIFEST(name);
  writeFileSync(
    join(dir, "k8s", name, "app.yaml"),
    image ? manifest.replace(/image: .*/, `image: ${q(image)}`) : manifest,
  );
  return `
[services.${name}.deployment]
mode = "kubernetes"
[services.${name}.deployment.kubernetes]
deployment_name = "${name}"
manifests_path = ${q(join(dir, "k8s", name))}
kubeconfig = ${q(join(dir, "kubeconfig"))}
unschedulable_timeout = 0
[services.${name}.startup]
start_timeout = 30
${
    check === undefined ? "" : `[services.${name}.health_check]
type = "http"
interval = 1
[services.${name}.health_check.http]
endpoint = "http://127.0.0.1:${check}/health"
`
  }`;
}

function binaryService(name: string): string {
  return `
[services.${name}.deployment]
mode = "binary"
[services.${name}.deployment.binary]
binary_path = "/bin/sleep"
args = ["60"]
[services.${name}.health_check]
type = "tcp"
[services.${name}.health_check.tcp]
port = 1
`;
}

/** `kubernetes`: rollout complete (as the double reports it) → our healthy / ready event. */
export async function benchKubernetesRollout(
  opts: KubernetesBenchOptions = {},
): Promise<BenchResult> {
  const { runs = 15 } = opts;
  const tmp = tempDir("kubernetes");
  const endpoint = createServer((_, res) => res.end("ok"));
  await new Promise<void>((r) => endpoint.listen(0, "127.0.0.1", r));
  const port = (endpoint.address() as { port: number }).port;
  const api = await startApiDouble({
    tls: true,
    token: "bench",
    behaviours: [[{}, { readyAfterMs: 150 }]],
  });
  let p: Platform | undefined;
  const cleanup = async () => {
    if (p) await stopServices(p, [], { force: true }).catch(() => {});
    await api.close();
    await new Promise((r) => endpoint.close(r));
    tmp.remove();
  };
  running.add(cleanup);
  try {
    await api.writeKubeconfig(join(tmp.dir, "kubeconfig"));
    const config = join(tmp.dir, "services.toml");
    writeFileSync(config, k8sService("checked", tmp.dir, port) + k8sService("plain", tmp.dir));
    p = await Platform.open({
      config,
      home: join(tmp.dir, "home"),
      env: { ...process.env, NO_COLOR: "1" },
    });
    // When the double reports each rollout complete, from a watch of our own.
    const complete = new Map<string, number>();
    const watch = await api.stream("/apis/apps/v1/deployments?watch=true");
    void (async () => {
      for (let line; (line = await watch.next(600_000).catch(() => undefined)) !== undefined;) {
        const { object: d } = JSON.parse(line);
        const s = d.status ?? {}, want = d.spec.replicas ?? 1;
        const done = want > 0 && s.observedGeneration >= d.metadata.generation &&
          s.updatedReplicas === want && s.availableReplicas === want && (s.replicas ?? 0) === want;
        if (done && !complete.has(d.metadata.name)) {
          complete.set(d.metadata.name, performance.now());
        }
      }
    })();
    const samples: Record<string, number[]> = { checked: [], plain: [] };
    for (let i = 0; i <= runs; i++) {
      for (const name of ["checked", "plain"]) {
        complete.delete(name);
        let at = NaN;
        const onEvent = (e: LifecycleEvent) => {
          if ((e.type === "healthy" || e.type === "ready") && e.service === name) {
            at = performance.now();
          }
        };
        const r = await startServices(p, [name], { onEvent });
        if (!r.ok) throw new Error(`Cannot start ${name}: ${JSON.stringify(r.outcomes)}`);
        const done = complete.get(name);
        if (done === undefined || Number.isNaN(at)) {
          throw new Error(`no rollout or event seen for ${name}`);
        }
        if (i > 0) samples[name].push(at - done); // run 0 warms up (it imports the client)
        await stopServices(p, [name]);
      }
    }
    watch.close();
    const m = { checked: median(samples.checked), plain: median(samples.plain) };
    return judge({
      name: "kubernetes",
      label: "kubernetes rollout complete → healthy",
      value: m.checked,
      unit: "ms",
      bound: 100,
      boundLabel: "goal",
      goal: 1.0,
      samples: samples.checked,
      details: [
        `http check (endpoint the host reaches): median ${fmt(m.checked, "ms")}, p90 ${
          fmt(quantile(samples.checked, 0.9), "ms")
        }`,
        `no health check (the "ready" event): median ${fmt(m.plain, "ms")}, p90 ${
          fmt(quantile(samples.plain, 0.9), "ms")
        }`,
        `${runs} starts each against the API test double over HTTPS, pods ready 150 ms after creation`,
      ],
      data: { healthy_ms: m.checked, ready_ms: m.plain },
    });
  } finally {
    running.delete(cleanup);
    await cleanup();
  }
}

/** Fail-fast reasons: the service, its image, and how the double shows the reason. */
const REASONS: [string, string, (pod?: Any, d?: Any) => boolean][] = [
  ["crashloop", "app:crashloop", (p) => waiting(p) === "CrashLoopBackOff"],
  ["pullfail", "app:pullfail", (p) => /^(ErrImagePull|ImagePullBackOff)$/.test(waiting(p) ?? "")],
  ["badname", "Not A:Valid Image", (p) => waiting(p) === "InvalidImageName"],
  ["configerror", "app:configerror", (p) => waiting(p) === "CreateContainerConfigError"],
  ["stuck", "app:stuck", (_, d) => cond(d, "Progressing")?.reason === "ProgressDeadlineExceeded"],
  ["replicafailure", "app:replicafailure", (_, d) => cond(d, "ReplicaFailure")?.status === "True"],
  [
    "unschedulable",
    "app:unschedulable",
    (p) => cond(p, "PodScheduled")?.reason === "Unschedulable",
  ],
];
// deno-lint-ignore no-explicit-any
type Any = any;
const waiting = (p: Any): string | undefined =>
  p?.status?.containerStatuses?.[0]?.state?.waiting?.reason;
const cond = (o: Any, type: string): Any =>
  o?.status?.conditions?.find((c: Any) => c.type === type);

/** `kubernetes-failfast`: the double shows a fail-fast reason → our `failed` event. */
export async function benchKubernetesFailFast(
  opts: KubernetesBenchOptions = {},
): Promise<BenchResult> {
  const { runs = 3 } = opts;
  const tmp = tempDir("kubernetes-failfast");
  const api = await startApiDouble({ tls: true, token: "bench" });
  let p: Platform | undefined;
  const cleanup = async () => {
    if (p) await stopServices(p, [], { force: true }).catch(() => {});
    await api.close();
    tmp.remove();
  };
  running.add(cleanup);
  try {
    await api.writeKubeconfig(join(tmp.dir, "kubeconfig"));
    const config = join(tmp.dir, "services.toml");
    writeFileSync(
      config,
      REASONS.map(([n, image]) => k8sService(n, tmp.dir, undefined, image)).join(""),
    );
    p = await Platform.open({
      config,
      home: join(tmp.dir, "home"),
      env: { ...process.env, NO_COLOR: "1" },
    });
    const shown = new Map<string, number>();
    const watches = await Promise.all(
      ["/api/v1/pods?watch=true", "/apis/apps/v1/deployments?watch=true"].map((path) =>
        api.stream(path)
      ),
    );
    for (const w of watches) {
      void (async () => {
        for (let line; (line = await w.next(600_000).catch(() => undefined)) !== undefined;) {
          const o = JSON.parse(line).object;
          const pod = o.kind === "Pod";
          const name = pod ? o.metadata.labels?.app : o.metadata.name;
          const r = REASONS.find(([n]) => n === name);
          if (r && !shown.has(name) && (pod ? r[2](o) : r[2](undefined, o))) {
            shown.set(name, performance.now());
          }
        }
      })();
    }
    const samples: Record<string, number[]> = {};
    for (let i = 0; i <= runs; i++) {
      for (const [name] of REASONS) {
        shown.delete(name);
        let failedAt = NaN;
        const onEvent = (e: LifecycleEvent) => {
          if (e.type === "failed" && e.service === name) failedAt = performance.now();
        };
        const r = await startServices(p, [name], { onEvent });
        const at = shown.get(name);
        if (r.ok || at === undefined || Number.isNaN(failedAt)) {
          throw new Error(`${name}: expected a failed start after the double showed its reason`);
        }
        if (i > 0) (samples[name] ??= []).push(failedAt - at); // run 0 imports the client
      }
    }
    for (const w of watches) w.close();
    const all = Object.values(samples).flat();
    const worst = Math.max(...all);
    return judge({
      name: "kubernetes-failfast",
      label: "kubernetes fail-fast, slowest reason",
      value: worst,
      unit: "ms",
      bound: 2_000,
      boundLabel: "goal",
      goal: 1.0,
      samples: all,
      details: [
        Object.entries(samples).map(([n, xs]) => `${n} ${fmt(median(xs), "ms")}`).join(", ") +
        " (medians: the double shows it → our failed event)",
        `${runs} starts per reason; each includes reading the failed pods' last lines and the scale-back`,
      ],
      data: Object.fromEntries(Object.entries(samples).map(([n, xs]) => [`${n}_ms`, median(xs)])),
    });
  } finally {
    running.delete(cleanup);
    await cleanup();
  }
}

/** `kubernetes-list`: `services list` cold start, kubernetes services vs binary only. */
export async function benchKubernetesList(opts: KubernetesBenchOptions = {}): Promise<BenchResult> {
  const { runs = 15 } = opts;
  const tmp = tempDir("kubernetes-list");
  try {
    const k8s = join(tmp.dir, "k8s.toml"), bin = join(tmp.dir, "binary.toml");
    writeFileSync(
      k8s,
      ["orchestrator", "worker", "scheduler"].map((n) => k8sService(n, tmp.dir)).join("") +
        binaryService("api") + binaryService("web"),
    );
    writeFileSync(
      bin,
      ["orchestrator", "worker", "scheduler", "api", "web"].map(binaryService).join(""),
    );
    const env = { ...process.env, PROVISIONING_HOME: join(tmp.dir, "home"), NO_COLOR: "1" };
    const cli = join(ROOT, "cli.ts");
    const samples: Record<string, number[]> = { k8s: [], bin: [] };
    for (let i = 0; i <= runs; i++) {
      for (const [name, file] of [["k8s", k8s], ["bin", bin]] as const) {
        const ms = await timeCommand(denoBinary(), [
          "run",
          "-A",
          cli,
          "services",
          "list",
          "--config",
          file,
        ], {
          env,
          cwd: ROOT,
        });
        if (i > 0) samples[name].push(ms);
      }
    }
    const m = { k8s: median(samples.k8s), bin: median(samples.bin) };
    return judge({
      name: "kubernetes-list",
      label: "`services list` cold start, kubernetes services",
      value: m.k8s,
      unit: "ms",
      bound: m.bin,
      boundLabel: "binary only",
      goal: 1.1,
      samples: samples.k8s,
      details: [
        `3 kubernetes + 2 binary services: ${fmt(m.k8s, "ms")}; 5 binary services: ${
          fmt(m.bin, "ms")
        } (medians of ${runs}, interleaved)`,
      ],
      data: { kubernetes_ms: m.k8s, binary_ms: m.bin },
    });
  } finally {
    tmp.remove();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { runs: { type: "string" }, json: { type: "boolean" } },
  });
  const runs = values.runs ? Number(values.runs) : undefined;
  const results = [
    await benchKubernetesRollout({ runs }),
    await benchKubernetesFailFast({ runs }),
    await benchKubernetesList({ runs }),
  ];
  if (values.json) console.log(JSON.stringify(results, null, 2));
  else {for (const r of results) {
      console.log([resultLine(r), ...r.details.map((d) => `  ${d}`)].join("\n"));
    }}
  process.exit(0);
}
