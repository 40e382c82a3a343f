/**
 * Plans: what `platform start` / `platform stop` would do, as data, without touching anything.
 * `--dry-run` prints them; the lifecycle executes them.
 *
 * @module
 */
import type { Platform } from "../platform.ts";
import type { ServiceStatus } from "../types.ts";

/** What a start would do. */
export interface StartPlan {
  action: "start";
  /** The names asked for (the auto-start services when none were named). */
  requested: string[];
  /** Services to start, in start order (dependencies first). */
  services: string[];
  /** Running services that will be stopped and started again (`--force`). */
  restart: string[];
  /** Needed services already running, left alone. */
  already_running: string[];
  /** Start waves: a service's dependencies are all in earlier waves. */
  waves: string[][];
  /** The longest dependency chain among the services to start. */
  critical_path: string[];
}

/** What a stop would do. */
export interface StopPlan {
  action: "stop";
  requested: string[];
  /** Services to stop, in stop order (dependents first). */
  services: string[];
  /** Requested services that are not running. */
  not_running: string[];
  /** Stop waves: a service's running dependents are all in earlier waves. */
  waves: string[][];
  /** Running dependents outside the request, per requested service: the stop is refused unless forced. */
  blocked: { service: string; dependents: string[] }[];
  /** Forced: the same dependents, which go on running without the service (a warning). */
  orphaned: { service: string; dependents: string[] }[];
}

/** Current status of services, without health checks. */
export async function runtimeStatuses(
  p: Platform,
  names: Iterable<string>,
): Promise<Map<string, ServiceStatus>> {
  const list = [...names];
  const rts = await Promise.all(list.map((n) => p.runtime(n)));
  // A service whose main process is gone while others of its processes still run is not
  // running, but a stop has something to end: it counts as stopping.
  return new Map(
    list.map((n, i) => [n, rts[i].leftovers?.length ? "stopping" : rts[i].status]),
  );
}

const isUp = (s: ServiceStatus | undefined) => s === "running" || s === "starting";

/** Plan a start of `names` (default: every auto-start service) with their dependencies. */
export async function planStart(
  p: Platform,
  names: string[] = [],
  opts: { force?: boolean; statuses?: Map<string, ServiceStatus> } = {},
): Promise<StartPlan> {
  names.forEach((n) => p.service(n));
  const requested = names.length
    ? [...new Set(names)]
    : p.services.filter((s) => s.startup.auto_start).map((s) => s.name);
  const needed = p.graph.order(requested);
  const statuses = opts.statuses ?? await runtimeStatuses(p, needed);
  // A "starting" service is not running yet: it goes through startOne, which waits for the lock
  // its starter holds until it is healthy (or failed), so its dependents wait too.
  const running = needed.filter((n) => statuses.get(n) === "running");
  const restart = opts.force ? running.filter((n) => requested.includes(n)) : [];
  const services = needed.filter((n) => statuses.get(n) !== "running" || restart.includes(n));
  return {
    action: "start",
    requested,
    services,
    restart,
    already_running: running.filter((n) => !restart.includes(n)),
    waves: services.length ? p.graph.waves(services).filter((w) => w.length) : [],
    critical_path: services.length ? p.graph.criticalPath(services).path : [],
  };
}

/** Plan a stop of `names` (default: everything running), dependents first. */
export async function planStop(
  p: Platform,
  names: string[] = [],
  opts: { force?: boolean; statuses?: Map<string, ServiceStatus> } = {},
): Promise<StopPlan> {
  names.forEach((n) => p.service(n));
  const all = p.services.map((s) => s.name);
  const statuses = opts.statuses ?? await runtimeStatuses(p, all);
  const up = all.filter((n) => isUp(statuses.get(n)) || statuses.get(n) === "stopping");
  const requested = names.length ? [...new Set(names)] : up;
  const services = p.graph.stopOrder(requested.filter((n) => up.includes(n)));
  const held = requested.filter((n) => up.includes(n)).map((service) => ({
    service,
    dependents: p.graph.dependents(service, { transitive: true })
      .filter((d) => up.includes(d) && !requested.includes(d)),
  })).filter((b) => b.dependents.length);
  return {
    action: "stop",
    requested,
    services,
    not_running: requested.filter((n) => !up.includes(n)),
    waves: stopWaves(p, services),
    blocked: opts.force ? [] : held,
    orphaned: opts.force ? held : [],
  };
}

/** Waves of a stop: a service goes once every dependent of it in the set has gone. */
function stopWaves(p: Platform, services: string[]): string[][] {
  if (!services.length) return [];
  const startWaves = p.graph.waves(services).filter((w) => w.length);
  return startWaves.reverse();
}
