/**
 * Simulated pods of the API double: each container is a small state machine (creating, waiting
 * with a reason, running, backing off after a crash) driven by the pod's behaviour, writing log
 * lines per run (so `previous` and `follow` work), and rendered into a Pod status the way the
 * kubelet reports it (phase, conditions, containerStatuses with state/lastState/restartCount).
 */

import { randomBytes } from "node:crypto";
import type { ResolvedBehaviour } from "./_behaviour.ts";
import { type Obj, timestamp } from "./_patch.ts";

/** One run of a container program: its log lines, and who follows them. */
export type Run = {
  startedAt: number;
  finishedAt?: number;
  exitCode?: number;
  lines: { at: number; text: string }[];
  listeners: Set<() => void>;
};

type State = "creating" | "waiting" | "running" | "backoff";

export class ContainerSim {
  state: State = "creating";
  since = 0;
  restartCount = 0;
  runs: Run[] = [];
  waiting?: { reason: string; message: string };
  private beats = 0;
  readonly id = randomBytes(32).toString("hex");

  constructor(readonly name: string, readonly image: string) {}

  get current(): Run | undefined {
    const last = this.runs[this.runs.length - 1];
    return last && last.finishedAt === undefined ? last : undefined;
  }

  write(text: string, now = Date.now()): void {
    const run = this.current;
    if (!run) return;
    run.lines.push({ at: now, text });
    for (const fn of [...run.listeners]) fn();
  }

  end(now: number, exitCode: number): void {
    const run = this.current;
    if (!run) return;
    run.finishedAt = now;
    run.exitCode = exitCode;
    for (const fn of [...run.listeners]) fn();
  }

  private start(now: number, b: ResolvedBehaviour): void {
    this.runs.push({ startedAt: now, lines: [], listeners: new Set() });
    this.state = "running";
    this.since = now;
    this.waiting = undefined;
    this.beats = 0;
    const lines = b.logLines ??
      [`starting ${this.name} (image ${this.image})`, `${this.name} is ready`];
    for (const l of lines) this.write(l, now);
    if (b.failure === "CrashLoopBackOff") {
      this.write(`fatal: ${this.name} exited with code ${b.exitCode}`, now);
    }
  }

  /** Advances the state machine to `now`. */
  step(now: number, age: number, b: ResolvedBehaviour): void {
    const f = b.failure;
    if (this.state === "running") {
      if (f === "CrashLoopBackOff" && now - this.since >= b.crashAfterMs) {
        this.end(now, b.exitCode);
        this.state = "backoff";
        this.since = now;
      } else if (b.logEveryMs && now - this.since >= (this.beats + 1) * b.logEveryMs) {
        this.write(`heartbeat ${++this.beats}`, now);
      }
      return;
    }
    if (this.state === "backoff") {
      if (now - this.since >= b.backoffMs) {
        this.restartCount++;
        this.start(now, b);
      }
      return;
    }
    if (f === "Unschedulable" || f === "ProgressDeadlineExceeded" || age < b.readyAfterMs) return;
    const waiting = waitingFor(f, this.image, age - b.readyAfterMs, b);
    if (waiting) {
      this.state = "waiting";
      this.waiting = waiting;
    } else this.start(now, b);
  }

  /** The entry of `status.containerStatuses`. */
  status(b: ResolvedBehaviour, podName: string): Obj {
    const lastRun = this.runs.filter((r) => r.finishedAt !== undefined).at(-1);
    const lastState = lastRun ? { terminated: terminated(lastRun, this.id) } : {};
    const ready = this.state === "running" && b.failure !== "NeverReady" &&
      b.failure !== "CrashLoopBackOff";
    let state: Obj;
    if (this.state === "running") state = { running: { startedAt: timestamp(this.since) } };
    else if (this.state === "backoff") {
      state = {
        waiting: {
          reason: "CrashLoopBackOff",
          message: `back-off 10s restarting failed container=${this.name} pod=${podName}_(${
            this.id.slice(0, 8)
          })`,
        },
      };
    } else if (this.state === "waiting" && this.waiting) state = { waiting: { ...this.waiting } };
    else state = { waiting: { reason: "ContainerCreating" } };
    const started = this.runs.length > 0;
    return {
      name: this.name,
      image: this.image,
      imageID: started ? `docker.io/library/${this.image}@sha256:${this.id}` : "",
      ...(started ? { containerID: `containerd://${this.id}` } : {}),
      ready,
      started: this.state === "running",
      restartCount: this.restartCount,
      state,
      lastState,
    };
  }
}

function terminated(run: Run, id: string): Obj {
  return {
    exitCode: run.exitCode,
    reason: run.exitCode === 0 ? "Completed" : "Error",
    startedAt: timestamp(run.startedAt),
    finishedAt: timestamp(run.finishedAt),
    containerID: `containerd://${id}`,
  };
}

function waitingFor(
  f: string | undefined,
  image: string,
  sinceReady: number,
  b: ResolvedBehaviour,
) {
  if (f === "ErrImagePull") {
    return Math.floor(sinceReady / b.backoffMs) % 2 === 0
      ? {
        reason: "ErrImagePull",
        message: b.message ??
          `rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/library/${image}": not found`,
      }
      : { reason: "ImagePullBackOff", message: `Back-off pulling image "${image}"` };
  }
  if (f === "InvalidImageName") {
    return {
      reason: "InvalidImageName",
      message: b.message ??
        `Failed to apply default image tag "${image}": couldn't parse image name "${image}": invalid reference format`,
    };
  }
  if (f === "CreateContainerConfigError") {
    return {
      reason: "CreateContainerConfigError",
      message: b.message ?? 'secret "missing-secret" not found',
    };
  }
  return undefined;
}

/** A simulated pod: its containers and its deletion schedule. */
export class PodSim {
  readonly createdAt = Date.now();
  deleteAt?: number;
  readonly containers: ContainerSim[];
  private readonly since = new Map<string, [string, string]>();

  constructor(
    readonly namespace: string,
    readonly name: string,
    readonly deployment: string,
    containers: Obj[],
  ) {
    this.containers = containers.map((c) => new ContainerSim(String(c.name), String(c.image)));
  }

  step(now: number, b: ResolvedBehaviour): void {
    for (const c of this.containers) c.step(now, now - this.createdAt, b);
  }

  /** Ends every run (the pod is gone). */
  end(now: number): void {
    for (const c of this.containers) c.end(now, 137);
  }

  ready(b: ResolvedBehaviour): boolean {
    return this.containers.every((c) => c.status(b, this.name).ready === true);
  }

  /** `status` of the Pod. */
  status(b: ResolvedBehaviour, podIP: string): Obj {
    const scheduled = b.failure !== "Unschedulable";
    const containerStatuses = this.containers.map((c) => c.status(b, this.name));
    const ready = containerStatuses.every((s) => s.ready);
    const notReady = containerStatuses.filter((s) => !s.ready).map((s) => s.name);
    const cond = (type: string, ok: boolean, reason?: string, message?: string): Obj => {
      const status = ok ? "True" : "False";
      const prev = this.since.get(type);
      const at = prev && prev[0] === status ? prev[1] : timestamp();
      this.since.set(type, [status, at]);
      return {
        type,
        status,
        lastProbeTime: null,
        lastTransitionTime: at,
        ...(reason ? { reason } : {}),
        ...(message ? { message } : {}),
      };
    };
    if (!scheduled) {
      return {
        phase: "Pending",
        qosClass: "BestEffort",
        conditions: [
          cond(
            "PodScheduled",
            false,
            "Unschedulable",
            b.message ??
              "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.",
          ),
        ],
      };
    }
    const running = this.containers.some((c) => c.runs.length > 0);
    const why = `containers with unready status: [${notReady.join(" ")}]`;
    return {
      phase: running ? "Running" : "Pending",
      conditions: [
        cond("Initialized", true),
        cond("Ready", ready, ready ? undefined : "ContainersNotReady", ready ? undefined : why),
        cond(
          "ContainersReady",
          ready,
          ready ? undefined : "ContainersNotReady",
          ready ? undefined : why,
        ),
        cond("PodScheduled", true),
      ],
      hostIP: "10.0.0.1",
      hostIPs: [{ ip: "10.0.0.1" }],
      podIP,
      podIPs: [{ ip: podIP }],
      startTime: timestamp(this.createdAt),
      containerStatuses,
      qosClass: "BestEffort",
    };
  }
}

/** Options of a log request (the query of `GET .../pods/NAME/log`). */
export type LogOptions = {
  previous: boolean;
  timestamps: boolean;
  tailLines?: number;
  sinceSeconds?: number;
  limitBytes?: number;
};

/** The text of `run` for a log request. */
export function formatLines(lines: Run["lines"], o: LogOptions): string {
  let picked = lines;
  if (o.sinceSeconds !== undefined) {
    picked = picked.filter((l) => l.at >= Date.now() - o.sinceSeconds! * 1000);
  }
  if (o.tailLines !== undefined) picked = o.tailLines === 0 ? [] : picked.slice(-o.tailLines);
  const text = picked.map((l) => formatLine(l, o.timestamps)).join("");
  return o.limitBytes !== undefined ? text.slice(0, o.limitBytes) : text;
}

export function formatLine(l: { at: number; text: string }, timestamps: boolean): string {
  const ts = new Date(l.at).toISOString().replace(/Z$/, "000000Z");
  return `${timestamps ? ts + " " : ""}${l.text}\n`;
}
