/**
 * Reload: apply an edited registry to the platform that runs, as `docker compose up` after an
 * edit or `supervisorctl update` do. The registry is compared with what the home runs — each
 * service's state records the hashes of the configuration it was started with
 * (`core/registry/config_hash.ts`) — and then, in dependency order:
 *
 * - services no longer in the registry that the home still runs are stopped (dependents first),
 *   through their driver with the definition they were started with (the supervisor's copy,
 *   `run/watch/<name>.json`; the state record alone for a service nobody watched);
 * - running services whose deployment changed (its table, or its env file) are restarted, and
 *   with them the dependents that ask for it (`startup.restart_with_dependencies`);
 * - added `auto_start` services are started, with what they need;
 * - running services whose other settings changed keep their process: the supervisor takes the
 *   new restart policy, health check and log bounds (`update`), and stop reads `shutdown` from
 *   the registry anyway.
 *
 * Unchanged services are not touched. Added means unknown to the home (no state record);
 * removed means a record that is not `stopped` under a name the registry no longer has.
 *
 * @module
 */
import { readdir } from "node:fs/promises";
import type { Platform } from "../platform.ts";
import {
  canonicalJson,
  type ConfigHashes,
  configHashes,
  configInputs,
} from "../registry/config_hash.ts";
import { serviceSchema, tomlPath } from "../registry/schema.ts";
import type { RequestedBy } from "../state/journal.ts";
import { withLock } from "../state/lock.ts";
import { readState } from "../state/store.ts";
import {
  askSupervisor,
  needsSupervisor,
  settleSupervisor,
  superviseAdopt,
  superviseUpdate,
  unwatch,
  watchedSpec,
} from "../supervisor/client.ts";
import type { Driver, Service, ServiceState, ServiceStatus } from "../types.ts";
import type { LifecycleEvent, LifecycleResult, Outcome } from "./events.ts";
import { runtimeStatuses } from "./plan.ts";
import { reconcile } from "./reconcile.ts";
import { startWithin } from "./start.ts";
import { clock, type Emit, journaled, onPlatform, result, schedule } from "./_schedule.ts";

/** One service whose configuration differs from the one it was started with. */
export interface ReloadChange {
  name: string;
  /**
   * What changed, as TOML paths (`deployment.binary.args`, `health_check.interval`). Without
   * the old definition (a service the supervisor does not watch) only the group is known:
   * `deployment`, or `settings` for anything else.
   */
  keys: string[];
  /** Its deployment changed: a running service is restarted. */
  deployment: boolean;
}

/** The registry against what the home runs. */
export interface ReloadDiff {
  /** In the registry, unknown to the home (no state record). */
  added: string[];
  /** Not stopped in the home, no longer in the registry. */
  removed: string[];
  changed: ReloadChange[];
  unchanged: string[];
}

/** What a reload does, as data (`--dry-run` prints it). */
export interface ReloadPlan {
  action: "reload";
  diff: ReloadDiff;
  /** Removed services to stop, dependents first. */
  stop: string[];
  /**
   * Running services to restart, in start order: their deployment changed, or a dependency of
   * theirs restarts and they set `restart_with_dependencies`.
   */
  restart: string[];
  /** Added `auto_start` services to start (with the dependencies they need). */
  start: string[];
  /** Running services whose new settings apply without a restart. */
  update: string[];
}

export interface ReloadOptions {
  onEvent?: (event: LifecycleEvent) => void;
  /** Who asked (default: this process, as a CLI): the journal records it. */
  requestedBy?: RequestedBy;
  /** Told the plan once the platform is held, before anything changes. */
  onPlan?: (plan: ReloadPlan) => void;
  signal?: AbortSignal;
}

/** What the home and the registry say of the services, for a plan and its execution. */
interface Survey {
  plan: ReloadPlan;
  /** Per service to stop: the definition it runs with. */
  running: Map<string, Service>;
  /** Per registry service: the hashes of its configuration now. */
  hashes: Map<string, ConfigHashes>;
}

/** The diff and the plan of a reload, without changing anything. */
export async function planReload(p: Platform): Promise<ReloadPlan> {
  return (await survey(p)).plan;
}

/** Apply the registry to the platform (see the module doc); holds the platform meanwhile. */
export function reloadPlatform(
  p: Platform,
  opts: ReloadOptions = {},
): Promise<LifecycleResult<ReloadPlan>> {
  return onPlatform(
    p,
    () => journaled(p, "reload", [], opts, (o) => reloadWithin(p, o)),
    opts.signal,
  );
}

async function reloadWithin(
  p: Platform,
  opts: ReloadOptions,
): Promise<LifecycleResult<ReloadPlan>> {
  const { elapsed, emit } = clock(opts.onEvent);
  await settleSupervisor(p);
  const s = await survey(p);
  const plan = s.plan;
  opts.onPlan?.(plan);
  const outcomes = new Map<string, Outcome>();
  const done = (o: Omit<Outcome, "elapsed_ms">) =>
    outcomes.set(o.name, { ...o, elapsed_ms: elapsed() });

  if (plan.update.length) {
    const ping = await askSupervisor(p.paths, { op: "ping" }).catch(() => undefined);
    const watching = new Set(ping?.ok ? (ping as { watching: string[] }).watching : []);
    for (const name of plan.update) {
      done(await applySettings(p, p.service(name), s.hashes.get(name)!, watching, emit));
    }
  }

  const removed = new Set(plan.stop);
  const stopping = [...plan.stop, ...plan.restart];
  const defs = (n: string) => s.running.get(n) ?? p.service(n);
  const dependentsOf = (n: string) =>
    stopping.filter((m) => m !== n && defs(m).dependencies.includes(n));
  const stopIt = async (name: string) => {
    const o = await stopOne(p, defs(name), {
      emit,
      removed: removed.has(name),
      signal: opts.signal,
    });
    done(o);
    return o.status !== "failed";
  };
  await schedule(
    stopping,
    dependentsOf,
    stopIt,
    (name, by) =>
      done({ name, status: "blocked", blocked_by: by, message: `not stopped: blocked by ${by}` }),
  );
  // Definitions of different ages may disagree on the order (a cycle between them): the rest
  // one at a time.
  for (const name of stopping.filter((n) => !outcomes.has(n))) await stopIt(name);

  const again = plan.restart.filter((n) => outcomes.get(n)?.status === "stopped");
  const toStart = [...again, ...plan.start];
  if (toStart.length) {
    const r = await startWithin(p, toStart, { onEvent: opts.onEvent, signal: opts.signal });
    for (const o of r.outcomes) {
      // Dependencies that were running already are not the reload's doing.
      if (o.status === "already_running" && !toStart.includes(o.name)) continue;
      outcomes.set(o.name, o);
    }
  }
  return result(plan, outcomes, elapsed());
}

/** Compare the registry with the home's records, and plan. A pure read. */
async function survey(p: Platform): Promise<Survey> {
  const known = await recordedNames(p);
  const records = new Map<string, ServiceState>();
  await Promise.all(known.map(async (n) => {
    const st = await readState(p.paths, n).catch(() => undefined);
    if (st) records.set(n, st);
  }));
  const inRegistry = new Set(p.services.map((s) => s.name));
  const hashes = new Map<string, ConfigHashes>();
  const inputs = new Map<string, Record<string, unknown>>();
  const drivers = new Map<string, Driver | undefined>();
  await Promise.all(p.services.map(async (svc) => {
    const driver = await p.plugins.driver(svc.deployment.mode).catch(() => undefined);
    const i = driver ? await configInputs(svc, driver, p.context()) : {};
    drivers.set(svc.name, driver);
    inputs.set(svc.name, i);
    hashes.set(svc.name, configHashes(svc, i));
  }));
  const specs = new Map<string, Service>();
  await Promise.all([...records.keys()].map(async (n) => {
    const spec = await watchedSpec(p.paths, n);
    if (spec) specs.set(n, spec.service);
  }));

  const diff: ReloadDiff = { added: [], removed: [], changed: [], unchanged: [] };
  for (const svc of p.services) {
    const st = records.get(svc.name);
    if (!st) {
      diff.added.push(svc.name);
      continue;
    }
    const change = compare(svc, st, specs.get(svc.name), hashes.get(svc.name)!, inputs);
    if (change) diff.changed.push(change);
    else diff.unchanged.push(svc.name);
  }
  const running = new Map<string, Service>();
  for (const [name, st] of records) {
    if (inRegistry.has(name) || st.status === "stopped") continue;
    diff.removed.push(name);
    running.set(name, specs.get(name) ?? stub(name, st.mode));
  }
  diff.removed.sort();

  const withRecord = p.services.map((s) => s.name).filter((n) => records.has(n));
  const statuses = await runtimeStatuses(p, withRecord);
  const runs = (n: string) => RUNS.includes(statuses.get(n) as ServiceStatus);
  // Nothing of a service run elsewhere is ours to restart: its new endpoint is watched instead.
  const external = (n: string) => {
    const d = drivers.get(n);
    return d?.capabilities?.owns === "external" && !d.forwards?.(p.service(n));
  };
  const changed = new Map(diff.changed.map((c) => [c.name, c]));
  const restart = new Set(
    diff.changed.filter((c) => c.deployment && runs(c.name) && !external(c.name)).map((c) =>
      c.name
    ),
  );
  const order = p.graph.order();
  for (const name of order) {
    const svc = p.service(name);
    if (!svc.startup.restart_with_dependencies || !runs(name) || external(name)) continue;
    if (svc.dependencies.some((d) => restart.has(d))) restart.add(name);
  }
  for (const name of restart) {
    // Stopped with the definition it runs with, when the supervisor kept it.
    const old = specs.get(name);
    if (old && old.deployment.mode === records.get(name)?.mode) running.set(name, old);
    else if (records.get(name)?.mode !== p.service(name).deployment.mode) {
      running.set(name, stub(name, records.get(name)!.mode));
    }
  }
  const byOrder = (names: Iterable<string>) => {
    const set = new Set(names);
    return order.filter((n) => set.has(n));
  };
  const plan: ReloadPlan = {
    action: "reload",
    diff,
    stop: diff.removed,
    restart: byOrder(restart),
    start: diff.added.filter((n) => p.service(n).startup.auto_start),
    update: byOrder([...changed.keys()].filter((n) => runs(n) && !restart.has(n))),
  };
  return { plan, running, hashes };
}

/** Statuses in which a service has something running that a restart would replace. */
const RUNS: readonly ServiceStatus[] = ["running", "starting", "backoff"];

/** How `svc` differs from what it was started with (`st`, and the old definition if kept). */
function compare(
  svc: Service,
  st: ServiceState,
  old: Service | undefined,
  now: ConfigHashes,
  inputs: Map<string, Record<string, unknown>>,
): ReloadChange | undefined {
  const moved = st.mode !== svc.deployment.mode;
  let deployment: boolean;
  let keys = old ? changedKeys(old, svc) : [];
  if (st.config_hash) {
    if (st.config_hash === now.config_hash && !moved) return undefined;
    deployment = moved || st.deployment_hash !== now.deployment_hash;
  } else {
    // Started before hashes were recorded: only the kept definition can tell.
    if (!old || (!keys.length && !moved)) return undefined;
    deployment = moved || keys.some(isDeployment);
  }
  if (deployment && !keys.some(isDeployment)) {
    // Its table is as it was: what the driver reads besides (the env file) changed.
    const read = Object.keys(inputs.get(svc.name) ?? {});
    keys = [...keys, ...(old && read.length ? read : ["deployment"])];
  }
  if (!keys.length) keys = ["settings"];
  return { name: svc.name, keys, deployment };
}

const isDeployment = (key: string) => key === "deployment" || key.startsWith("deployment.");

/**
 * The TOML paths whose values differ between two definitions of a service. Tables are walked
 * down to their values; an array is one value (`deployment.binary.args`).
 */
export function changedKeys(before: Service, after: Service): string[] {
  const a = leaves(before);
  const b = leaves(after);
  return [...new Set([...b.keys(), ...a.keys()])].filter((k) => a.get(k) !== b.get(k));
}

function leaves(
  value: unknown,
  path: string[] = [],
  out = new Map<string, string>(),
): Map<string, string> {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) if (v !== undefined) leaves(v, [...path, k], out);
  } else out.set(tomlPath(path), canonicalJson(value));
  return out;
}

/**
 * A definition of a service of which only the state record is known (`mode`): the defaults.
 * Enough for a driver that stops from the record (binary: its PID, cgroup and marker).
 */
function stub(name: string, mode: string): Service {
  return { ...serviceSchema.parse({ deployment: { mode } }), name } as Service;
}

/** Names that have a state file in the home. */
async function recordedNames(p: Platform): Promise<string[]> {
  const files = await readdir(p.paths.state).catch(() => [] as string[]);
  return files.filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -".json".length));
}

type Result = Omit<Outcome, "elapsed_ms">;

/** New settings for a running service whose deployment is unchanged: its process stays. */
async function applySettings(
  p: Platform,
  svc: Service,
  hashes: ConfigHashes,
  watching: ReadonlySet<string>,
  emit: Emit,
): Promise<Result> {
  const name = svc.name;
  try {
    return await withLock(p.paths, name, async () => {
      const driver = await p.plugins.driver(svc.deployment.mode);
      if (needsSupervisor(svc, driver, p.env)) {
        if (!(await superviseUpdate(p, svc))) await superviseAdopt(p, svc);
      } else if (watching.has(name)) {
        await unwatch(p, name); // nothing left to watch for: it runs on, unwatched
      }
      const st = await p.store.configured(name, hashes);
      const message = "new settings applied; kept running";
      emit({ type: "running", service: name, pid: st?.pid, message });
      return { name, status: "already_running" as const, pid: st?.pid, message };
    }, { waitMs: 60_000 });
  } catch (e) {
    const message = `Cannot apply the new settings of "${name}": ${(e as Error).message}`;
    emit({ type: "failed", service: name, message });
    return { name, status: "failed", message };
  }
}

/**
 * Stop one service with the definition it runs with (`svc`), as a stop does: through its
 * driver, which ends every process of it (its cgroup and marker, not only its group) and its
 * log writer. A removed service's record says so.
 */
async function stopOne(
  p: Platform,
  svc: Service,
  o: { emit: Emit; removed: boolean; signal?: AbortSignal },
): Promise<Result> {
  const name = svc.name;
  const mode = svc.deployment.mode;
  const why = o.removed ? { message: "Removed from the registry" } : {};
  try {
    return await withLock(p.paths, name, async () => {
      const driver = await p.plugins.driver(mode);
      if (driver.capabilities?.owns === "external" && !driver.forwards?.(svc)) {
        const where = driver.location?.(svc);
        const message = `${name} runs at ${where ?? "another host"}; left running`;
        await unwatch(p, name);
        if (o.removed) await p.store.stopped(name, mode, { message: `Removed: ${message}` });
        o.emit({ type: "not_managed", service: name, message });
        return { name, status: "not_managed" as const, message };
      }
      o.emit({ type: "stopping", service: name });
      await unwatch(p, name);
      const ctx = {
        ...p.context(o.signal),
        progress: (message: string) => o.emit({ type: "progress", service: name, message }),
      };
      const rt = await reconcile(p, svc, driver, await driver.status(svc, ctx));
      if (rt.status !== "stopped" && (await p.store.read(name))) await p.store.stopping(name);
      const r = await driver.stop(svc, ctx, { signal: o.signal }) ?? {};
      await p.store.stopped(name, mode, { exit: r.exit, ...why });
      o.emit({ type: "stopped", service: name, ...why });
      return { name, status: "stopped" as const, ...why };
    }, { waitMs: (svc.shutdown.timeout + 30) * 1000 });
  } catch (e) {
    const message = `Cannot stop "${name}"${o.removed ? " (removed from the registry)" : ""}: ${
      (e as Error).message
    }`;
    o.emit({ type: "failed", service: name, message });
    return { name, status: "failed", message };
  }
}
