/**
 * The CLI's side of the supervisor: start it on demand, hand it the services that need
 * watching, tell it when a start is complete or a stop is wanted. Everything works without
 * it (status reads the state files); `PROVISIONING_NO_SUPERVISOR=1` turns it off.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { request } from "../runtime/ipc.ts";
import { sleep } from "../sleep.ts";
import { supervisorCommand } from "../runtime/self.ts";
import { ProvisioningError } from "../errors.ts";
import type { Platform } from "../platform.ts";
import { ensureDirs, statePaths, withLock } from "../state/files.ts";
import { supervisorFiles, type WatchSpec } from "./daemon.ts";
import type { Handle, Service, StatePaths } from "../types.ts";

/** Whether a service needs a watcher that outlives the CLI. */
export function needsSupervisor(svc: Service, env: Record<string, string | undefined>): boolean {
  if (env.PROVISIONING_NO_SUPERVISOR === "1") return false;
  return svc.deployment.mode === "binary" &&
    (svc.startup.restart_on_failure || svc.health_check.type !== "none");
}

/** Ask the running supervisor; undefined when none runs. */
export function askSupervisor<T = Record<string, unknown>>(
  paths: StatePaths,
  msg: Record<string, unknown>,
): Promise<T | undefined> {
  return request<T>(supervisorFiles(paths).socket, msg);
}

/** Start the supervisor of this home unless it runs; resolves once it answers. */
export async function ensureSupervisor(p: Platform): Promise<void> {
  if (await askSupervisor(p.paths, { op: "ping" })) return;
  await withLock(p.paths, "supervisor", async () => {
    if (await askSupervisor(p.paths, { op: "ping" })) return;
    await ensureDirs(p.paths);
    const files = supervisorFiles(p.paths);
    const out = openSync(files.log, "a", 0o600);
    try {
      const self = supervisorCommand();
      const child = spawn(self.command, self.args, {
        detached: true,
        stdio: ["ignore", out, out],
        env: { ...p.env, PROVISIONING_HOME: p.paths.home, ...self.env } as Record<string, string>,
      });
      child.on("error", () => {});
      child.unref();
    } finally {
      closeSync(out);
    }
    const deadline = Date.now() + 15_000;
    for (let delay = 10; Date.now() < deadline; delay = Math.min(delay * 2, 200)) {
      if (await askSupervisor(p.paths, { op: "ping" }).catch(() => undefined)) return;
      await sleep(delay);
    }
    throw new ProvisioningError(`Cannot start the supervisor: no answer on ${files.socket}`, {
      hints: [`See ${files.log}`],
    });
  }, { waitMs: 30_000 });
}

function spec(p: Platform, svc: Service): WatchSpec {
  return { service: svc, env: p.env, cwd: process.cwd() };
}

/** Start `svc` as a child of the supervisor (so its crash is seen at once). */
export async function superviseStart(p: Platform, svc: Service): Promise<Handle> {
  const r = await askRunning<{ ok: boolean; pid?: number; error?: string; exit_code?: number }>(
    p,
    { op: "start", ...spec(p, svc) },
  );
  if (!r?.ok) {
    throw new ProvisioningError(
      r?.error ?? `Cannot start "${svc.name}": the supervisor went away`,
      {
        exitCode: r?.exit_code ?? 1,
      },
    );
  }
  return { pid: r.pid };
}

/** The start completed (healthy): crashes from now on are the supervisor's to recover. */
export async function superviseReady(p: Platform, svc: Service): Promise<void> {
  await askSupervisor(p.paths, { op: "ready", name: svc.name });
}

/** Make sure a running service is watched (it may predate the supervisor). */
export async function superviseAdopt(p: Platform, svc: Service): Promise<void> {
  await askRunning(p, { op: "adopt", ...spec(p, svc) });
}

/** Ask the supervisor, starting it first only when none answers (no ping on the hot path). */
async function askRunning<T>(p: Platform, msg: Record<string, unknown>): Promise<T | undefined> {
  const r = await askSupervisor<T>(p.paths, msg);
  if (r) return r;
  await ensureSupervisor(p);
  return await askSupervisor<T>(p.paths, msg);
}

/**
 * Wait until the supervisor has finished every start, restart and unwatch in flight (a start
 * asked for by a CLI that was killed may still be spawning): a stop then plans from state files
 * that name every process. Returns at once when no supervisor runs.
 */
export async function settleSupervisor(p: Platform): Promise<void> {
  await askSupervisor(p.paths, { op: "settle" });
}

/** The user stops the service: its exit is not a crash. */
export async function unwatch(p: Platform, name: string): Promise<void> {
  await askSupervisor(p.paths, { op: "unwatch", name });
}

/** What the supervisor of `home` watches, or undefined when none runs. */
export function supervisorStatus(home: string): Promise<
  | {
    ok: boolean;
    pid: number;
    /** Bytes: resident set, and the JS heap used / reserved. */
    memory?: { rss: number; heap_used: number; heap_total: number };
    services: { name: string; phase: string; pid?: number; streak: number }[];
  }
  | undefined
> {
  return askSupervisor(statePaths(home), { op: "status" });
}

/** Ask the supervisor of `home` to exit (services keep running); false when none runs. */
export async function stopSupervisor(home: string): Promise<boolean> {
  return !!(await askSupervisor(statePaths(home), { op: "shutdown" }));
}

/**
 * Services are watched (`run/watch/*.json`) but no supervisor answers — it was killed: start a
 * new one, which re-adopts them. Cheap when there is nothing to do (one readdir).
 */
export async function reviveSupervisor(p: Platform): Promise<void> {
  if (p.env.PROVISIONING_NO_SUPERVISOR === "1") return;
  const watched = await readdir(supervisorFiles(p.paths).watchDir).catch(() => [] as string[]);
  if (!watched.some((f) => f.endsWith(".json"))) return;
  if (await askSupervisor(p.paths, { op: "ping" }).catch(() => undefined)) return;
  await ensureSupervisor(p);
}
