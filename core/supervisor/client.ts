/**
 * The CLI's side of the supervisor: start it on demand, hand it the services that need
 * watching, tell it when a start is complete or a stop is wanted. Everything works without
 * it (status reads the state files); `PROVISIONING_NO_SUPERVISOR=1` turns it off.
 *
 * It takes a {@linkcode SupervisorTarget} (a home, an environment, a directory), not a
 * `Platform`: the supervisor knows nothing of registries.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { closeSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { request } from "../runtime/ipc.ts";
import { supervisorCommand } from "../runtime/self.ts";
import { ProvisioningError } from "../errors.ts";
import { sleep } from "../sleep.ts";
import { ensureDirs, openAppend, safeName, statePaths } from "../state/files.ts";
import { withHomeLock } from "../state/lock.ts";
import type { Driver, Handle, Service, StatePaths } from "../types.ts";
import {
  type ErrorReply,
  type Replies,
  type Request,
  supervisorFiles,
  type WatchSpec,
} from "./protocol.ts";

/** Whose supervisor: the home, the environment services get, and where relative paths resolve. */
export interface SupervisorTarget {
  paths: StatePaths;
  env: Record<string, string | undefined>;
  cwd: string;
  /** The registry's plugins, for the overrides it allows (the supervisor loads the same ones). */
  plugins?: { allowedOverrides(): string[] };
}

/** What the supervisor keeps of `svc` to watch it. */
function spec(t: SupervisorTarget, svc: Service): WatchSpec {
  return { service: svc, env: t.env, cwd: t.cwd, overrides: t.plugins?.allowedOverrides() };
}

/**
 * Whether a service needs a watcher that outlives the CLI: its driver lets us supervise it and
 * it asks for recovery or has a check, or it runs elsewhere and is observed (`observe`).
 */
export function needsSupervisor(
  svc: Service,
  driver: Pick<Driver, "capabilities">,
  env: Record<string, string | undefined>,
): boolean {
  if (env.PROVISIONING_NO_SUPERVISOR === "1") return false;
  const supervision = driver.capabilities?.supervision ?? "none";
  if (supervision === "observe") return true;
  return (supervision === "child" || supervision === "poll") &&
    (svc.startup.restart_on_failure || svc.health_check.type !== "none");
}

/** Whether the supervisor spawns the service (as its child) rather than only watching it. */
export function spawnedBySupervisor(driver: Pick<Driver, "capabilities">): boolean {
  const supervision = driver.capabilities?.supervision ?? "none";
  return supervision === "child" || supervision === "poll";
}

/** Ask the running supervisor; undefined when none runs. */
export function askSupervisor<R extends Request>(
  paths: StatePaths,
  msg: R,
  timeoutMs?: number,
): Promise<Replies[R["op"]] | ErrorReply | undefined> {
  return request(
    supervisorFiles(paths).socket,
    msg as unknown as Record<string, unknown>,
    timeoutMs,
  );
}

/** Start the supervisor of this home unless it runs; resolves once it answers. */
export async function ensureSupervisor(t: SupervisorTarget): Promise<void> {
  if (await askSupervisor(t.paths, { op: "ping" })) return;
  // Its own lock namespace: a service may be called "supervisor" too.
  await withHomeLock(t.paths, "supervisor", async () => {
    if (await askSupervisor(t.paths, { op: "ping" })) return;
    await ensureDirs(t.paths);
    const files = supervisorFiles(t.paths);
    const out = openAppend(files.log);
    try {
      const self = supervisorCommand(t.env);
      const child = spawn(self.command, self.args, {
        detached: true,
        stdio: ["ignore", out, out],
        // A CLI run from inside a service must not hand the supervisor that service's marker:
        // the service's stop would end the supervisor with it.
        env: {
          ...withoutMarker(t.env),
          PROVISIONING_HOME: t.paths.home,
          ...self.env,
        } as Record<string, string>,
      });
      child.on("error", () => {});
      child.unref();
    } finally {
      closeSync(out);
    }
    const deadline = Date.now() + 15_000;
    for (let delay = 10; Date.now() < deadline; delay = Math.min(delay * 2, 200)) {
      if (await askSupervisor(t.paths, { op: "ping" }).catch(() => undefined)) return;
      await sleep(delay);
    }
    throw new ProvisioningError(`Cannot start the supervisor: no answer on ${files.socket}`, {
      hints: [`See ${files.log}`],
    });
  }, { waitMs: 30_000 });
}

/** Start `svc` as a child of the supervisor (so its crash is seen at once). */
export async function superviseStart(t: SupervisorTarget, svc: Service): Promise<Handle> {
  // A start may wait for its pid_file up to start_timeout.
  const timeoutMs = svc.startup.start_timeout * 1000 + 30_000;
  const r = await askRunning(t, { op: "start", ...spec(t, svc) }, timeoutMs);
  if (!r?.ok) {
    throw new ProvisioningError(
      (r as ErrorReply | undefined)?.error ??
        `Cannot start "${svc.name}": the supervisor went away`,
      { exitCode: (r as ErrorReply | undefined)?.exit_code ?? 1 },
    );
  }
  return { pid: (r as Replies["start"]).pid };
}

/** The start completed (healthy): crashes from now on are the supervisor's to recover. */
export async function superviseReady(t: SupervisorTarget, svc: Service): Promise<void> {
  await askSupervisor(t.paths, { op: "ready", name: svc.name });
}

/** Make sure a running service is watched (it may predate the supervisor). */
export async function superviseAdopt(t: SupervisorTarget, svc: Service): Promise<void> {
  await askRunning(t, { op: "adopt", ...spec(t, svc) });
}

/**
 * Hand a watched service its new settings (restart policy, health check, logs) without touching
 * its process. False when the supervisor does not watch it (or none runs).
 */
export async function superviseUpdate(t: SupervisorTarget, svc: Service): Promise<boolean> {
  const r = await askSupervisor(t.paths, { op: "update", ...spec(t, svc) });
  return !!(r?.ok && (r as Replies["update"]).watched);
}

/**
 * The definition the supervisor keeps of a watched service (`run/watch/<name>.json`): the
 * registry's service as it was when it was started, adopted or last updated. Undefined when
 * it is not watched. A pure read.
 */
export async function watchedSpec(
  paths: StatePaths,
  name: string,
): Promise<WatchSpec | undefined> {
  const file = join(supervisorFiles(paths).watchDir, `${safeName(name)}.json`);
  try {
    const spec = JSON.parse(await readFile(file, "utf8")) as WatchSpec;
    return spec?.service?.name === name ? spec : undefined;
  } catch {
    return undefined;
  }
}

/** Ask the supervisor, starting it first only when none answers (no ping on the hot path). */
async function askRunning<R extends Request>(
  t: SupervisorTarget,
  msg: R,
  timeoutMs?: number,
): Promise<Replies[R["op"]] | ErrorReply | undefined> {
  const r = await askSupervisor(t.paths, msg, timeoutMs);
  if (r) return r;
  await ensureSupervisor(t);
  return await askSupervisor(t.paths, msg, timeoutMs);
}

/**
 * Wait until the supervisor has finished every start, restart and unwatch in flight (a start
 * asked for by a CLI that was killed may still be spawning): a stop then plans from state that
 * names every process. Returns at once when no supervisor runs.
 */
export async function settleSupervisor(t: Pick<SupervisorTarget, "paths">): Promise<void> {
  await askSupervisor(t.paths, { op: "settle" });
}

/** The user stops the service: its exit is not a crash. */
export async function unwatch(t: Pick<SupervisorTarget, "paths">, name: string): Promise<void> {
  await askSupervisor(t.paths, { op: "unwatch", name });
}

/** What the supervisor of `home` watches, or undefined when none runs. */
export async function supervisorStatus(home: string): Promise<Replies["status"] | undefined> {
  const r = await askSupervisor(statePaths(home), { op: "status" });
  return r?.ok ? r as Replies["status"] : undefined;
}

/** Ask the supervisor of `home` to exit (services keep running); false when none runs. */
export async function stopSupervisor(home: string): Promise<boolean> {
  return !!(await askSupervisor(statePaths(home), { op: "shutdown" }));
}

/**
 * Services are watched (`run/watch/*.json`) but no supervisor answers — it was killed: start a
 * new one, which re-adopts them. Cheap when there is nothing to do (one readdir). An explicit
 * step of the commands that need a watcher (start, status), never a side effect of a read.
 */
export async function reviveSupervisor(t: SupervisorTarget): Promise<void> {
  if (t.env.PROVISIONING_NO_SUPERVISOR === "1") return;
  const watched = await readdir(supervisorFiles(t.paths).watchDir).catch(() => [] as string[]);
  if (!watched.some((f) => f.endsWith(".json"))) return;
  if (await askSupervisor(t.paths, { op: "ping" }).catch(() => undefined)) return;
  await ensureSupervisor(t);
}

/** `env` without the process-tracking marker of a service (`PROVISIONING_SERVICE_ID`). */
function withoutMarker(
  env: Record<string, string | undefined>,
): Record<string, string | undefined> {
  const { PROVISIONING_SERVICE_ID: _, ...rest } = env;
  return rest;
}
