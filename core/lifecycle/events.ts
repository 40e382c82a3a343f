/**
 * What a start or stop reports: one `LifecycleEvent` per step as it happens (the CLI renders
 * them as progress, tests assert on them), one `Outcome` per service, and the `LifecycleResult`.
 *
 * @module
 */
import type { StartPlan, StopPlan } from "./plan.ts";
import type { Finding } from "../types.ts";

/** One step of a start or stop. */
export interface LifecycleEvent {
  type:
    | "preflight"
    | "starting"
    | "started"
    | "waiting"
    /** Its health check passed: dependents may start. */
    | "healthy"
    /** Started and alive, but it has no health check: dependents may start, health unknown. */
    | "ready"
    /** It was already running. */
    | "running"
    | "failed"
    | "blocked"
    | "stopping"
    | "stopped"
    /** Stop asked for a service this program does not own (a remote endpoint): left running. */
    | "not_managed"
    /** A line from whoever runs it (a remote agent's own events, `host/service: started`). */
    | "progress"
    /**
     * A readiness check failed while it starts (`message`: its result): at most one a second,
     * or when the result changes.
     */
    | "check"
    /** Something the user should know that is no failure (dependents left without it). */
    | "warning";
  service: string;
  /** Milliseconds since the operation began. */
  elapsed_ms: number;
  /** Started only because a requested service needs it. */
  dependency?: boolean;
  pid?: number;
  message?: string;
  findings?: Finding[];
  blocked_by?: string;
  /** `failed`: the last lines of the service's own output. */
  last_log_lines?: string[];
  /** `waiting`, `check`: how long the start may wait (its `start_timeout`). */
  timeout_ms?: number;
}

/** What happened to one service. */
export interface Outcome {
  name: string;
  status: "started" | "already_running" | "failed" | "blocked" | "stopped" | "not_managed";
  pid?: number;
  message?: string;
  blocked_by?: string;
  /** The failure was a pre-flight check (exit code 3). */
  preflight?: boolean;
  /** The failure was a refusal for safety where the service runs (exit code 4). */
  refused?: boolean;
  /** `started`: `healthy` when its check passed, `unknown` when it has none. */
  health?: "healthy" | "unknown";
  /** `failed`: the last lines of the service's own output. */
  last_log_lines?: string[];
  elapsed_ms: number;
}

/** The result of a start, stop or restart. */
export interface LifecycleResult<P = StartPlan | StopPlan> {
  ok: boolean;
  /** 0, 1 (something failed) or 3 (only pre-flight checks failed). */
  exit_code: number;
  plan: P;
  outcomes: Outcome[];
  elapsed_ms: number;
}
