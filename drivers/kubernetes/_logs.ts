/**
 * Logs of a kubernetes service: its Deployment's pods, found by the Deployment's selector. The
 * container is the service's `container`, else the pod's `kubectl.kubernetes.io/default-container`
 * annotation, else its first. `lines` is each pod's `tailLines`; with several pods the tails
 * are merged by time and every line is prefixed `[pod/NAME] `. `follow` streams every pod and
 * attaches new ones as a rollout creates them (and a container again when it restarts), until
 * the caller's signal aborts. Every request asks for `timestamps=true`: `podLogLines` keeps the
 * cluster's time of each line, `podLogs` strips it.
 *
 * A failed start scales the Deployment back before the lifecycle asks for the service's last
 * output, so the start keeps the failed pods' last lines (`rememberFailure`) and the next
 * `logs` call in the same process — the lifecycle's — gets them once.
 *
 * @module
 */
import type { LogLine } from "../../core/types.ts";
import { type Kube, KubeError } from "./_client.ts";
import {
  DEFAULT_CONTAINER,
  type Deployment,
  type List,
  logPath,
  type Pod,
  podPath,
  selectorString,
} from "./_objects.ts";

/** What to read. */
export interface PodLogOptions {
  namespace: string;
  deployment: Deployment;
  container?: string;
  lines: number;
  follow?: boolean;
  /** Only lines since then (ms since the epoch; the API takes whole seconds back from now). */
  since?: number;
  signal?: AbortSignal;
}

/** The container whose log `kubectl logs` would show for `pod`. */
export function containerOf(pod: Pod, wanted?: string): string | undefined {
  return wanted ?? pod.metadata.annotations?.[DEFAULT_CONTAINER] ?? pod.spec?.containers?.[0]?.name;
}

const byAge = (a: Pod, b: Pod) =>
  String(a.metadata.creationTimestamp).localeCompare(String(b.metadata.creationTimestamp)) ||
  a.metadata.name.localeCompare(b.metadata.name);

/** The last lines of one pod's container (its previous run when the current one has none). */
async function tail(
  kube: Kube,
  o: PodLogOptions,
  pod: Pod,
): Promise<{ at: string; text: string }[]> {
  const container = containerOf(pod, o.container);
  const path = logPath(o.namespace, pod.metadata.name);
  const query = { container, tailLines: o.lines, timestamps: true, ...sinceOf(o) };
  for (const previous of [undefined, true]) {
    try {
      const res = await kube.open("GET", path, { query: { ...query, previous }, signal: o.signal });
      let text = "";
      for await (const c of res) text += c;
      return text.split("\n").filter(Boolean).map(stamped);
    } catch (e) {
      if (!(e instanceof KubeError && e.status === 400)) throw e; // 400: waiting, no such run
    }
  }
  return [];
}

function stamped(line: string): { at: string; text: string } {
  const m = /^(\d{4}-\d\d-\d\dT\S+Z) (.*)$/.exec(line);
  return m ? { at: m[1], text: m[2] } : { at: "", text: line };
}

/** A line as `LogLine`: its text and the cluster's time of it. */
function timed(l: { at: string; text: string }): LogLine {
  const time = l.at ? Date.parse(l.at) : NaN;
  return Number.isNaN(time) ? { line: l.text } : { line: l.text, time };
}

/** `sinceSeconds` for `since` (rounded up: the caller cuts to the millisecond). */
function sinceOf(o: PodLogOptions): { sinceSeconds?: number } {
  if (o.since === undefined) return {};
  return { sinceSeconds: Math.max(1, Math.ceil((Date.now() - o.since) / 1000)) };
}

/** The pods of the Deployment, oldest first. */
async function podsOf(kube: Kube, o: PodLogOptions): Promise<Pod[]> {
  const labelSelector = selectorString(o.deployment.spec.selector);
  const list = await kube.json<List<Pod>>("GET", podPath(o.namespace), {
    query: { labelSelector },
    signal: o.signal,
  });
  return list.items.sort(byAge);
}

/** The service's log lines; see the module doc. */
export async function* podLogs(kube: Kube, o: PodLogOptions): AsyncGenerator<string> {
  for await (const l of podLogLines(kube, o)) yield l.line;
}

/** `podLogs` with the cluster's time of every line (`timestamps=true`). */
export async function* podLogLines(kube: Kube, o: PodLogOptions): AsyncGenerator<LogLine> {
  if (o.signal?.aborted) return;
  if (o.follow) return yield* follow(kube, o);
  const pods = await podsOf(kube, o);
  const tails = await Promise.all(pods.map((p) => tail(kube, o, p)));
  if (pods.length === 1) return yield* tails[0].map(timed);
  const merged = tails.flatMap((lines, i) =>
    lines.map((l) => ({ ...l, pod: pods[i].metadata.name }))
  )
    .sort((a, b) => a.at.localeCompare(b.at));
  yield* merged.slice(-o.lines).map((l) => timed({ at: l.at, text: `[pod/${l.pod}] ${l.text}` }));
}

/** Follow every pod (and the ones a rollout adds) until the signal aborts. */
async function* follow(kube: Kube, o: PodLogOptions): AsyncGenerator<LogLine> {
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  o.signal?.addEventListener("abort", onAbort, { once: true });
  const queue: LogLine[] = [];
  let wake: (() => void) | undefined;
  const push = (line: LogLine) => {
    queue.push(line);
    wake?.();
  };
  const attached = new Map<string, string>(); // pod name → container id streamed
  let seen = 0;
  const attach = (pod: Pod, fromStart: boolean) => {
    const container = containerOf(pod, o.container);
    const status = pod.status?.containerStatuses?.find((c) => c.name === container);
    const id = status?.containerID;
    if (!id || !status?.state?.running || attached.get(pod.metadata.name) === id) return;
    attached.set(pod.metadata.name, id);
    seen++;
    const name = pod.metadata.name;
    const query = {
      container,
      follow: true,
      tailLines: fromStart ? undefined : o.lines,
      timestamps: true,
      ...sinceOf(o),
    };
    void (async () => {
      try {
        for await (
          const line of kube.lines(logPath(o.namespace, name), {
            query,
            signal: stop.signal,
          })
        ) {
          const l = stamped(line);
          push(timed(seen > 1 ? { at: l.at, text: `[pod/${name}] ${l.text}` } : l));
        }
      } catch { /* the pod went away */ }
    })();
  };
  const labelSelector = selectorString(o.deployment.spec.selector);
  const watchPods = async () => {
    let first = true;
    while (!stop.signal.aborted) {
      try {
        for (const p of await podsOf(kube, { ...o, signal: stop.signal })) attach(p, !first);
        const events = kube.lines(podPath(o.namespace), {
          query: { labelSelector, watch: "true" },
          signal: stop.signal,
        });
        first = false;
        for await (const line of events) {
          const e = JSON.parse(line) as { type: string; object: Pod };
          if (e.type === "ADDED" || e.type === "MODIFIED") attach(e.object, true);
        }
      } catch { /* lost the API: try again below */ }
      await pause(500, stop.signal);
    }
  };
  const watching = watchPods();
  try {
    while (!stop.signal.aborted) {
      if (queue.length) {
        yield queue.shift()!;
        continue;
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          wake = undefined;
          stop.signal.removeEventListener("abort", done);
          resolve();
        };
        wake = done;
        stop.signal.addEventListener("abort", done, { once: true });
      });
    }
  } finally {
    o.signal?.removeEventListener("abort", onAbort);
    stop.abort();
    await watching.catch(() => {});
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

const failures = new Map<string, { lines: string[]; at: number }>();

/** Keep the last lines of a failed start for the next `logs` call (within 30 s). */
export function rememberFailure(key: string, lines: string[]): void {
  failures.set(key, { lines, at: Date.now() });
}

/** The lines a failed start kept, once. */
export function takeFailure(key: string): string[] | undefined {
  const f = failures.get(key);
  failures.delete(key);
  return f && Date.now() - f.at < 30_000 ? f.lines : undefined;
}
