/**
 * The core model shared by the registry, the graph, the lifecycle and every plugin.
 *
 * Keys are snake_case, exactly as in `services.toml`, so a validated service is the registry
 * table with its defaults applied and its variables expanded.
 *
 * @module
 */
import type { ZodType } from "zod";

/** `type` of a service, as in the spec. */
export type ServiceType = "platform" | "infrastructure" | "utility";

/** `[services.X.health_check]` after defaults; `type` picks the sub-table. */
export interface HealthCheckConfig {
  /** Check type: `http`, `tcp`, `command`, `file`, `none`, or a plugin's type. */
  type: string;
  /** Seconds between checks once the service is up (default 10). */
  interval: number;
  /** Consecutive failures before a running service counts as unhealthy (default 3). */
  retries: number;
  /** Seconds one attempt may take (default 5). */
  timeout: number;
  /** The sub-table of the chosen type (`[services.X.health_check.http]` ...), validated by the check. */
  [type: string]: unknown;
}

/** `[services.X.startup]` after defaults. */
export interface StartupConfig {
  auto_start: boolean;
  /** Seconds from spawn to healthy before the start counts as failed (default 30). */
  start_timeout: number;
  /** Tiebreak between services whose dependencies allow either order: lower first (default 100). */
  start_order: number;
  restart_on_failure: boolean;
  max_restarts: number;
  /** Delay before the second restart in a row, in seconds; doubles per restart (default 0.5). The first restart is immediate. */
  restart_delay: number;
  /** Cap of the restart delay in seconds (default 30). */
  restart_delay_max: number;
  /** Seconds of uptime after which the restart count and delay reset (default 60). */
  restart_window: number;
  /**
   * `platform reload` restarts it when it restarts a dependency of it (whose deployment
   * changed); by default a dependent keeps running (default false).
   */
  restart_with_dependencies: boolean;
}

/** `[services.X.shutdown]` after defaults. */
export interface ShutdownConfig {
  /** Signal sent first (default `SIGTERM`). */
  signal: string;
  /** Seconds to wait after the signal before SIGKILL (default 10). */
  timeout: number;
}

/** `[services.X.logs]` after defaults. */
export interface LogsConfig {
  /** Rotate the log when it grows past this many bytes (default 10 MiB). */
  max_size: number;
  /** Rotated files kept: `<name>.log.1` ... `<name>.log.<keep>` (default 5). */
  keep: number;
}

/** `[services.X.deployment]`: the mode and its table (`binary`, `docker`, `docker_compose` ...). */
export interface DeploymentConfig {
  mode: string;
  [table: string]: unknown;
}

/** One validated service of the registry. */
export interface Service {
  name: string;
  type: ServiceType;
  category: string;
  description: string;
  required_for: string[];
  dependencies: string[];
  conflicts: string[];
  deployment: DeploymentConfig;
  health_check: HealthCheckConfig;
  startup: StartupConfig;
  shutdown: ShutdownConfig;
  logs: LogsConfig;
}

/** A loaded, validated registry. */
export interface Registry {
  /** The file it came from (absolute), or `<inline>`. */
  file: string;
  /** How the file was found: `--config`, `PROVISIONING_SERVICES`, `project`, `home`, `bundled`. */
  source: string;
  /** Services in file order. */
  services: Service[];
  /** Lookup by name. */
  byName: Map<string, Service>;
}

/** One problem found while loading a registry. */
export interface RegistryIssue {
  /** Dotted TOML path, e.g. `services.api-gateway.health_check.http.endpoint`. */
  path: string;
  message: string;
  /** 1-based line in the file, when known. */
  line?: number;
  column?: number;
  /** The service the issue belongs to, when it belongs to one. */
  service?: string;
}

/** The directories all state lives in, under `$PROVISIONING_HOME`. */
export interface StatePaths {
  home: string;
  pids: string;
  state: string;
  logs: string;
  locks: string;
  run: string;
}

/**
 * Runtime status of one service: one vocabulary for the CLI, the supervisor and JSON.
 * `backoff`: it crashed and waits to be restarted (systemd's "activating (auto-restart)", PM2's
 * "waiting restart"); the restart count and the next attempt's time are in its state.
 */
export type ServiceStatus = "running" | "stopped" | "starting" | "stopping" | "backoff" | "failed";

/** Every {@linkcode ServiceStatus}, in the order status output lists them. */
export const SERVICE_STATUSES: readonly ServiceStatus[] = [
  "running",
  "starting",
  "backoff",
  "stopping",
  "stopped",
  "failed",
];

/** How a process ended: its exit code, or the signal that killed it. */
export interface ExitInfo {
  code: number | null;
  signal: string | null;
}

/** `killed by SIGKILL`, `exited with code 3`, or that we could not see it end. */
export function describeExit(exit?: ExitInfo): string {
  if (!exit) return "exited (exit status unknown: it was not our child)";
  return exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

/** The persisted state of a service: `services/state/<name>.json`. */
export interface ServiceState {
  name: string;
  mode: string;
  status: ServiceStatus;
  pid?: number;
  /** Process start time as the kernel reports it (Linux: clock ticks since boot, field 22 of /proc/PID/stat). */
  pid_start?: string;
  /** Container id or any other handle a driver needs later. */
  handle?: Record<string, unknown>;
  started_at?: string;
  stopped_at?: string;
  restarts: number;
  last_exit?: ExitInfo & { at: string };
  /** Why it is in this status (the reason of a failure, "Unhealthy: ..." of a live one ...). */
  message?: string;
  /** When the status last changed, and who changed it (`cli 1234`, `supervisor 99`). */
  since?: string;
  by?: string;
  /** `backoff`: when the next restart attempt is due (ISO time). */
  next_attempt_at?: string;
  /** `failed`: the last lines of the service's own output when it failed (as systemctl shows). */
  last_log_lines?: string[];
  /**
   * The configuration it was started with (`core/registry/config_hash.ts`): all of it, and its
   * deployment alone. `platform reload` restarts it when the deployment changed.
   */
  config_hash?: string;
  deployment_hash?: string;
}

/** What a driver's `status` returns. A pure read: it never writes state. */
export interface RuntimeStatus {
  status: ServiceStatus;
  pid?: number;
  uptime_s?: number;
  exit_code?: number | null;
  exit_signal?: string | null;
  restarts?: number;
  message?: string;
  /** `backoff`: when the next restart attempt is due (ISO time). */
  next_attempt_at?: string;
  /** `failed`: the last lines of the service's own output. */
  last_log_lines?: string[];
  /**
   * The record disagrees with the facts (its process is gone, a PID belongs to someone else):
   * what `reconcile` would clean up. Reported, not acted on, by a read.
   */
  stale?: boolean;
  /**
   * Processes of the service that still run although its main process is gone (the workers of
   * a crashed master, a daemon its start command forked): not a running service, but not
   * nothing either. A stop kills them, and so does the next start before it spawns.
   */
  leftovers?: number[];
}

/** One pre-flight result. `ok: false` stops a start. */
export interface Finding {
  ok: boolean;
  kind: "prerequisite" | "conflict" | "dependency";
  message: string;
  hint?: string;
}

/**
 * What a started service hands back: facts for the state store (pid, its start time, a
 * container id ...) and, for a child of this process, its exit.
 */
export interface Handle {
  pid?: number;
  /** The process's start time as the kernel reports it (see `ServiceState.pid_start`). */
  pid_start?: string;
  /** When it started (ISO time), when the driver knows better than "now" (a container). */
  started_at?: string;
  /** What `status`/`stop` need later (a container id ...), kept in `ServiceState.handle`. */
  data?: Record<string, unknown>;
  /**
   * Settles when a child of this process exits (never rejects). It does not keep the event
   * loop alive.
   */
  exited?: Promise<ExitInfo>;
}

/**
 * Who recovers a crashed service: this program's supervisor as the process's parent
 * (`child`), the supervisor by polling (`poll`), the engine or cluster that runs it
 * (`engine`), or nobody (`none`). `observe`: nobody here can recover it (it runs elsewhere),
 * but the supervisor watches whether it answers and records each change.
 */
export type Supervision = "child" | "poll" | "engine" | "observe" | "none";

/** What a started service is: a local process group, a container, or something we do not own. */
export type Ownership = "process" | "container" | "external";

/** What a driver declares about its services; core branches on these, never on mode names. */
export interface DriverCapabilities {
  supervision: Supervision;
  owns: Ownership;
  /**
   * `driver`: its `start` returns only once the service is ready by the engine's own measure
   * (a Kubernetes rollout complete), so a service without a health check of ours is healthy,
   * not "health unknown". Default: readiness is ours to check.
   */
  readiness?: "driver";
}

/** Everything a driver may use besides the service itself. */
export interface DriverContext {
  paths: StatePaths;
  /** Environment used for expansion and for children. */
  env: Record<string, string | undefined>;
  /** Directory relative paths of the registry resolve against (never `process.cwd()`). */
  cwd: string;
  signal?: AbortSignal;
  /**
   * A line of progress for the user (a remote agent's own lifecycle events, `host/service:
   * started`): shown among the lifecycle's events. Absent outside a lifecycle operation.
   */
  progress?: (message: string) => void;
}

/** What a driver's `stop` reports. */
export interface StopResult {
  /** The graceful signal was not enough: it took SIGKILL. */
  killed?: boolean;
  /** How its process ended, when the driver saw it. */
  exit?: ExitInfo;
}

export interface StopOptions {
  /** Kill at once (SIGKILL), skip the graceful signal. */
  force?: boolean;
  signal?: AbortSignal;
}

export interface LogOptions {
  /** Last N lines (default 50). */
  lines?: number;
  /** Keep following until the signal aborts. */
  follow?: boolean;
  /**
   * Only lines written at or after this time (ms since the epoch). A driver's `logLines` may
   * use it to read less; `Platform.logLines` filters by it whatever the driver did.
   */
  since?: number;
  signal?: AbortSignal;
}

/**
 * One line of a service's log and, when known, the time it was written (ms since the epoch):
 * the engine's for docker and kubernetes, for a log file the time the line starts with or an
 * upper bound (see `core/state/log_times.ts`).
 */
export interface LogLine {
  line: string;
  time?: number;
}

/** A deployment mode. A plugin module `drivers/<mode>.ts` default-exports one. */
export interface Driver<C = unknown> {
  /** The registry's `deployment.mode`. */
  mode: string;
  /** Schema of `[services.X.deployment.<mode>]` (`-` in the mode becomes `_` in the table name). */
  config: ZodType<C>;
  /** Default: `{ supervision: "none", owns: "process" }`. */
  capabilities?: DriverCapabilities;
  preflight(svc: Service, ctx: DriverContext): Promise<Finding[]>;
  start(svc: Service, ctx: DriverContext): Promise<Handle>;
  stop(svc: Service, ctx: DriverContext, opts?: StopOptions): Promise<StopResult | void>;
  status(svc: Service, ctx: DriverContext): Promise<RuntimeStatus>;
  logs(svc: Service, ctx: DriverContext, opts?: LogOptions): AsyncIterable<string>;
  /**
   * `logs` with the time of each line where the driver knows it. Optional: without it, the lines
   * of `logs` carry no time (and `--since` leaves them out).
   */
  logLines?(svc: Service, ctx: DriverContext, opts?: LogOptions): AsyncIterable<LogLine>;
  /**
   * Where a service this driver does not own runs (`https://host:port`), for messages such as
   * the `not_managed` outcome of a stop. Optional.
   */
  location?(svc: Service): string;
  /**
   * For a driver that owns nothing (`owns: "external"`): whether start and stop of this service
   * are forwarded to whoever runs it (a remote agent) instead of being left alone. Optional.
   */
  forwards?(svc: Service): boolean;
  /**
   * The client an HTTP health check of this service should use for the service's own URLs (a
   * remote endpoint: its TLS settings and token). Optional.
   */
  checkHttp?(svc: Service, ctx: DriverContext): HttpRequester | undefined;
  /**
   * What a start reads besides the registry (the variables of an env file), keyed by the TOML
   * path of the key that names it (`deployment.binary.env_file`): part of the service's
   * `deployment_hash`, so `platform reload` restarts it when they change. Optional.
   */
  configInputs?(svc: Service, ctx: DriverContext): Promise<Record<string, unknown>>;
}

/** The outcome of one check attempt. Unhealthy is a result, not an exception. */
export interface CheckResult {
  healthy: boolean;
  message: string;
  durationMs: number;
}

export interface CheckContext {
  /** Aborted at the check's timeout or when the caller gives up. */
  signal: AbortSignal;
  /** The attempt's timeout in milliseconds. */
  timeoutMs: number;
  /** The service being checked. */
  service: string;
  env: Record<string, string | undefined>;
  /**
   * The service's own HTTP client, from its driver (a remote endpoint's CA, server name, client
   * certificate and token): an HTTP check uses it for URLs it accepts.
   */
  http?: HttpRequester;
}

/**
 * One HTTP request through a driver's client, answering with the status; `undefined` (no
 * promise) when `url` is not the driver's to ask (another origin: its token must not go there).
 */
export type HttpRequester = (
  url: URL,
  init: { method: string; headers: Record<string, string>; body?: string; signal: AbortSignal },
) => Promise<number> | undefined;

/** A health check type. A plugin module `checks/<type>.ts` default-exports one. */
export interface Check<C = unknown> {
  type: string;
  /** Schema of `[services.X.health_check.<type>]`. */
  config: ZodType<C>;
  /** One bounded attempt. */
  run(cfg: C, ctx: CheckContext): Promise<CheckResult>;
  /** The local TCP port this check probes, if any (pre-flight refuses a port already taken). */
  localPort?(cfg: C): number | undefined;
}
