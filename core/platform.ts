/**
 * `Platform`: one registry, its graph, its plugins and its state directory — the object the CLI
 * and users' scripts talk to. Read-only questions live here (status, health, dependencies,
 * operations); starting and stopping live in `lifecycle.ts`.
 *
 * @module
 */
import { probeOnce, probeTargetOf } from "./health/prober.ts";
import { UsageError } from "./errors.ts";
import { Graph } from "./graph/graph.ts";
import { PluginRegistry } from "./plugins/registry.ts";
import { type DiscoverOptions, loadRegistry } from "./registry/load.ts";
import { suggest } from "./suggest.ts";
import { statePaths, whereFrom } from "./state/files.ts";
import { StateStore } from "./state/store.ts";
import type {
  CheckResult,
  DriverContext,
  LogLine,
  LogOptions,
  Registry,
  RuntimeStatus,
  Service,
  ServiceStatus,
  StatePaths,
} from "./types.ts";

export interface OpenOptions extends DiscoverOptions {
  /** State directory (default `$PROVISIONING_HOME`, else `~/.provisioning`). */
  home?: string;
  /** Plugins to use (default: discovered from the plugin directories). */
  plugins?: PluginRegistry;
}

/** Health of one service: a check result, or why there is none. */
export interface HealthReport {
  name: string;
  /**
   * `healthy`, `unhealthy`, `unknown` (no check), `not_running` (stopped), or `failed`: it should
   * run but does not (it failed, or waits to be restarted) — as bad as unhealthy.
   */
  state: "healthy" | "unhealthy" | "unknown" | "not_running" | "failed";
  healthy: boolean;
  message: string;
  check_type: string;
  duration_ms: number;
}

/** Everything `services status` shows of one service. */
export interface StatusReport extends RuntimeStatus {
  name: string;
  type: string;
  category: string;
  description: string;
  deployment_mode: string;
  auto_start: boolean;
  dependencies: string[];
  health: "healthy" | "unhealthy" | "unknown";
  health_message?: string;
  /** Where a service this host does not run runs (a remote endpoint: `https://host:port`). */
  location?: string;
}

/** One row of `services list --json` and of the agent's `GET /v1/services`. */
export interface ListEntry {
  name: string;
  type: string;
  category: string;
  status: ServiceStatus;
  deployment_mode: string;
  auto_start: boolean;
  pid: number | null;
  uptime_s: number | null;
  restarts: number;
  health: StatusReport["health"];
  dependencies: string[];
}

/** A status report as a list row. */
export function listEntry(r: StatusReport): ListEntry {
  return {
    name: r.name,
    type: r.type,
    category: r.category,
    status: r.status,
    deployment_mode: r.deployment_mode,
    auto_start: r.auto_start,
    pid: r.pid ?? null,
    uptime_s: r.status === "running" ? r.uptime_s ?? null : null,
    restarts: r.restarts ?? 0,
    health: r.health,
    dependencies: r.dependencies,
  };
}

/** A registry, its dependency graph, its plugins and its state directory. */
export class Platform {
  readonly registry: Registry;
  readonly graph: Graph;
  readonly plugins: PluginRegistry;
  readonly paths: StatePaths;
  readonly env: Record<string, string | undefined>;
  /** The directory the registry's relative paths resolve against. */
  readonly cwd: string;
  /** The writer of this home's service state. */
  readonly store: StateStore;

  constructor(
    registry: Registry,
    opts: {
      plugins: PluginRegistry;
      paths: StatePaths;
      env: Record<string, string | undefined>;
      cwd?: string;
    },
  ) {
    this.registry = registry;
    this.graph = new Graph(
      registry.services.map((s) => ({ ...s, start_order: s.startup.start_order })),
    );
    this.plugins = opts.plugins;
    this.paths = opts.paths;
    this.env = opts.env;
    this.cwd = opts.cwd ?? process.cwd();
    this.store = new StateStore(this.paths);
  }

  /** Discover and load the registry (throws `RegistryError` listing every problem). */
  static async open(opts: OpenOptions = {}): Promise<Platform> {
    const { env, cwd, home } = whereFrom(opts);
    const plugins = opts.plugins ?? PluginRegistry.discover({ cwd, home, env });
    const registry = await loadRegistry({ ...opts, env, cwd, plugins });
    return new Platform(registry, { plugins, paths: statePaths(home), env, cwd });
  }

  /** The driver context handed to plugins. */
  context(signal?: AbortSignal): DriverContext {
    return { paths: this.paths, env: this.env, cwd: this.cwd, signal };
  }

  /** A service by name; an unknown name is a usage error with a hint. */
  service(name: string): Service {
    const svc = this.registry.byName.get(name);
    if (svc) return svc;
    const hint = suggest(name, [...this.registry.byName.keys()]);
    throw new UsageError(`Unknown service "${name}"`, hint ? [`Did you mean "${hint}"?`] : []);
  }

  /** Every service, in registry order. */
  get services(): Service[] {
    return this.registry.services;
  }

  /** Runtime status from the service's driver (state files, PIDs, the engine ...). */
  async runtime(name: string): Promise<RuntimeStatus> {
    const svc = this.service(name);
    const driver = await this.plugins.driver(svc.deployment.mode).catch(unusable);
    if ("unusable" in driver) return { status: "failed", message: driver.unusable };
    return driver.status(svc, this.context());
  }

  /** One health check attempt, or `not_running` / `unknown` without one. */
  async health(name: string, runtime?: RuntimeStatus): Promise<HealthReport> {
    const svc = this.service(name);
    const rt = runtime ?? await this.runtime(name);
    const base = { name, check_type: svc.health_check.type, duration_ms: 0 };
    if (rt.status === "failed" || rt.status === "backoff") {
      const why = rt.message ?? "its process is gone";
      const message = rt.status === "backoff" ? `Waiting to restart: ${why}` : why;
      return { ...base, state: "failed", healthy: false, message };
    }
    if (rt.status !== "running" && rt.status !== "starting") {
      return { ...base, state: "not_running", healthy: false, message: "Not running" };
    }
    if (svc.health_check.type === "none") {
      const driver = await this.plugins.driver(svc.deployment.mode).catch(() => undefined);
      if (driver?.capabilities?.readiness === "driver" && rt.status === "running") {
        // Its engine's own readiness (a rollout's available replicas) is its health.
        const message = rt.message ?? "Ready by its engine's own readiness";
        return { ...base, state: "healthy", healthy: true, message };
      }
      return { ...base, state: "unknown", healthy: false, message: "No health check configured" };
    }
    const r: CheckResult = await this.probe(svc);
    return {
      ...base,
      state: r.healthy ? "healthy" : "unhealthy",
      healthy: r.healthy,
      message: r.message,
      duration_ms: Math.round(r.durationMs),
    };
  }

  /** One attempt of the service's check (whether or not it runs). */
  async probe(svc: Service, signal?: AbortSignal): Promise<CheckResult> {
    const check = await this.plugins.check(svc.health_check.type).catch(unusable);
    if ("unusable" in check) return { healthy: false, message: check.unusable, durationMs: 0 };
    const driver = await this.plugins.driver(svc.deployment.mode).catch(() => undefined);
    return probeOnce(probeTargetOf(svc, check, this.env, driver, this.context()), { signal });
  }

  /** Status, health and registry facts of one service. */
  async status(name: string, opts: { health?: boolean } = {}): Promise<StatusReport> {
    const svc = this.service(name);
    const [rt, driver] = await Promise.all([
      this.runtime(name),
      this.plugins.driver(svc.deployment.mode).catch(() => undefined),
    ]);
    const location = driver?.location?.(svc);
    let health: StatusReport["health"] = "unknown";
    let health_message: string | undefined;
    if (opts.health !== false && (rt.status === "running" || rt.status === "starting")) {
      const h = await this.health(name, rt);
      health = h.state === "healthy" || h.state === "unhealthy" ? h.state : "unknown";
      health_message = h.message;
    }
    return {
      ...rt,
      name,
      type: svc.type,
      category: svc.category,
      description: svc.description,
      deployment_mode: svc.deployment.mode,
      auto_start: svc.startup.auto_start,
      dependencies: svc.dependencies,
      health,
      health_message,
      ...(location ? { location } : {}),
    };
  }

  /** Status of many services at once (all by default), in registry order. A pure read. */
  async statusAll(opts: { names?: string[]; health?: boolean } = {}): Promise<StatusReport[]> {
    const names = opts.names ?? this.services.map((s) => s.name);
    return await Promise.all(names.map((n) => this.status(n, opts)));
  }

  /** `services check OP`: what an operation requires and whether it all runs. */
  async operation(
    op: string,
  ): Promise<{ operation: string; required: string[]; running: string[]; all_running: boolean }> {
    const known = this.graph.operations();
    if (!known.includes(op)) {
      const hint = suggest(op, known);
      throw new UsageError(
        `Unknown operation "${op}": no service lists it in required_for`,
        [hint ? `Did you mean "${hint}"?` : `Known operations: ${known.join(", ") || "(none)"}`],
      );
    }
    const required = this.graph.requiredFor(op);
    const statuses = await Promise.all(required.map((n) => this.runtime(n)));
    const running = required.filter((_, i) => statuses[i].status === "running");
    return { operation: op, required, running, all_running: running.length === required.length };
  }

  /** The service's log lines (last `lines`, then new ones with `follow` until the signal aborts). */
  async *logs(name: string, opts: LogOptions = {}): AsyncIterable<string> {
    const svc = this.service(name);
    const driver = await this.plugins.driver(svc.deployment.mode);
    yield* driver.logs(svc, this.context(opts.signal), opts);
  }

  /**
   * `logs` with the time each line was written where its driver knows it (`LogLine`: the
   * engine's for docker and kubernetes; for a log file of ours see `core/state/log_times.ts`).
   * With `since`, only lines of that time or later: a line without a time is left out.
   */
  async *logLines(name: string, opts: LogOptions = {}): AsyncIterable<LogLine> {
    const svc = this.service(name);
    const driver = await this.plugins.driver(svc.deployment.mode);
    const ctx = this.context(opts.signal);
    const lines = driver.logLines
      ? driver.logLines(svc, ctx, opts)
      : untimed(driver.logs(svc, ctx, opts));
    const { since } = opts;
    for await (const l of lines) {
      if (since === undefined || (l.time !== undefined && l.time >= since)) yield l;
    }
  }

  /** Direct and transitive dependencies and dependents of a service. */
  dependencies(name: string): {
    name: string;
    type: string;
    category: string;
    dependencies: string[];
    required_by: string[];
    all_dependencies: string[];
    all_required_by: string[];
  } {
    const svc = this.service(name);
    return {
      name,
      type: svc.type,
      category: svc.category,
      dependencies: [...svc.dependencies],
      required_by: this.graph.dependents(name),
      all_dependencies: this.graph.dependencies(name, { transitive: true }),
      all_required_by: this.graph.dependents(name, { transitive: true }),
    };
  }
}

async function* untimed(lines: AsyncIterable<string>): AsyncIterable<LogLine> {
  for await (const line of lines) yield { line };
}

/** A plugin that cannot load makes its services `failed` / unhealthy, not the whole platform. */
function unusable(e: unknown): { unusable: string } {
  if (e instanceof Error && e.name === "PluginError") return { unusable: e.message };
  throw e;
}
