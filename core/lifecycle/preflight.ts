/**
 * Pre-flight checks before a start: the driver's prerequisites (binary found, engine running),
 * conflicts (registry services and foreign processes named in `conflicts`), and dependencies.
 *
 * @module
 */
import type { Platform } from "../platform.ts";
import { findProcessesByName, listeningPids, portInUse } from "../process/identity.ts";
import type { Finding, Service } from "../types.ts";

/** Every pre-flight finding of `svc`; failed ones have `ok: false`. */
export async function preflight(
  p: Platform,
  svc: Service,
  opts: { healthy?: ReadonlySet<string> } = {},
): Promise<Finding[]> {
  const driver = await p.plugins.driver(svc.deployment.mode);
  const [prereq, conflicts, ports, deps] = await Promise.all([
    driver.preflight(svc, p.context()),
    conflictFindings(p, svc),
    portFindings(p, svc),
    dependencyFindings(p, svc, opts),
  ]);
  return [...prereq, ...conflicts, ...ports, ...deps];
}

/** Registry services or foreign processes named in `conflicts` that are running. */
export async function conflictFindings(p: Platform, svc: Service): Promise<Finding[]> {
  const running = await Promise.all(svc.conflicts.map(async (name) => {
    if (p.registry.byName.has(name)) {
      const rt = await p.runtime(name);
      return rt.status === "running" || rt.status === "starting" ? [name] : [];
    }
    const found = await findProcessesByName(name);
    return found.length ? [`${name} (pid ${found.map((f) => f.pid).join(", ")})`] : [];
  }));
  const names = running.flat();
  if (names.length === 0) return [{ ok: true, kind: "conflict", message: "No conflicts detected" }];
  return [{
    ok: false,
    kind: "conflict",
    message: `Conflicting services running: ${names.join(", ")}`,
    hint: `Stop ${names.join(", ")} first; "${svc.name}" lists ${
      names.length > 1 ? "them" : "it"
    } in conflicts`,
  }];
}

/**
 * A service about to start must not find its port taken: another process answering its health
 * check would make it look healthy when it is not.
 */
export async function portFindings(p: Platform, svc: Service): Promise<Finding[]> {
  const driver = await p.plugins.driver(svc.deployment.mode);
  if ((driver.capabilities?.owns ?? "process") !== "process") return [];
  if (svc.health_check.type === "none") return [];
  const check = await p.plugins.check(svc.health_check.type).catch(() => undefined);
  const port = check?.localPort?.(svc.health_check[svc.health_check.type]);
  if (port === undefined) return [];
  const busy = await portInUse(port).catch(() => false);
  if (!busy) return [];
  const pids = await listeningPids(port).catch(() => [] as number[]);
  return [{
    ok: false,
    kind: "conflict",
    message: `Port ${port} already in use${pids.length ? ` (pid ${pids.join(", ")})` : ""}`,
    hint: `Find the process with: lsof -i :${port}`,
  }];
}

/** Dependencies of `svc` that are not running. */
export async function dependencyFindings(
  p: Platform,
  svc: Service,
  opts: { healthy?: ReadonlySet<string> } = {},
): Promise<Finding[]> {
  // Dependencies the caller has just seen healthy need no second look (their state file may
  // still be on its way).
  const unknown = svc.dependencies.filter((d) => !opts.healthy?.has(d));
  const statuses = await Promise.all(unknown.map((d) => p.runtime(d)));
  const missing = unknown.filter((_, i) => statuses[i].status !== "running");
  if (missing.length === 0) {
    return [{ ok: true, kind: "dependency", message: "All dependencies available" }];
  }
  return [{
    ok: false,
    kind: "dependency",
    message: `Dependencies not running: ${missing.join(", ")}`,
    hint: `Start them first: provisioning services start ${svc.name} (starts dependencies too)`,
  }];
}

/** One line of the readiness report. */
export interface ReadinessEntry {
  name: string;
  type: string;
  category: string;
  /** `running`, `ready` (can start now), or `issues` (a pre-flight check fails). */
  state: "running" | "ready" | "issues";
  issues: string[];
}

/** `services readiness`: which services run, which could start now, and what stops the others. */
export async function readiness(p: Platform): Promise<{
  total: number;
  running: number;
  ready_to_start: number;
  services: ReadinessEntry[];
}> {
  const services = await Promise.all(p.services.map(async (svc): Promise<ReadinessEntry> => {
    const base = { name: svc.name, type: svc.type, category: svc.category };
    const rt = await p.runtime(svc.name);
    if (rt.status === "running") return { ...base, state: "running", issues: [] };
    const driver = await p.plugins.driver(svc.deployment.mode);
    const findings = [
      ...await driver.preflight(svc, p.context()),
      ...await conflictFindings(p, svc),
      ...await portFindings(p, svc),
    ];
    const issues = findings.filter((f) => !f.ok).map((f) => f.message);
    return { ...base, state: issues.length ? "issues" : "ready", issues };
  }));
  return {
    total: services.length,
    running: services.filter((s) => s.state === "running").length,
    ready_to_start: services.filter((s) => s.state !== "issues").length,
    services,
  };
}
