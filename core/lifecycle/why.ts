/**
 * `why NAME`: why a service is not running and healthy, in a few facts — its own state and last
 * events (crashes, a restart limit reached, an exit code), its last log lines, what pre-flight
 * finds in its way now (a binary missing, its port taken by pid N, a conflicting service
 * running) and, when the cause is upstream, the chain of dependencies down to the root cause.
 * For a healthy service: since when. A pure read: nothing is started, stopped or written.
 *
 * @module
 */
import type { Platform } from "../platform.ts";
import { type JournalRecord, readJournal } from "../state/journal.ts";
import { readState } from "../state/store.ts";
import type { Finding } from "../types.ts";
import { preflight } from "./preflight.ts";

const pad = (n: number) => String(n).padStart(2, "0");
/** Local `14:03:07` of an ISO time. */
const clockOf = (iso: string) => {
  const d = new Date(iso);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
};
/** Local `2026-12-02 14:03:07` of an ISO time. */
const dateOf = (iso: string) => {
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clockOf(iso)}`;
};

/** How many of its last journal events and log lines an explanation carries. */
const EVENTS = 5;
const LOG_LINES = 5;

/** Journal events worth showing: what happened to it, not every step of a start. */
const TELLING = new Set<JournalRecord["type"]>([
  "crashed",
  "backoff",
  "restarting",
  "gave_up",
  "failed",
  "unhealthy",
  "blocked",
  "refused",
  "stopped",
  "healthy",
  "reloaded",
  "warning",
]);

/** One service's part in an explanation. */
export interface Reason {
  service: string;
  /** Running and healthy (or running without a check: health unknown). */
  ok: boolean;
  status: string;
  health: string;
  /** One sentence: `exited with code 1 at 14:03:07`, `is not healthy: HTTP 503`. */
  text: string;
  pid?: number;
  /** ISO time its status last changed (for a healthy service: since when it runs). */
  since?: string;
  exit_code?: number | null;
  exit_signal?: string | null;
  restarts?: number;
  /** Its last telling journal events, oldest first. */
  events: JournalRecord[];
  /** Pre-flight findings that stop it now (its dependencies aside: see `chain`). */
  blockers: Finding[];
  /** Its last log lines (not ok only). */
  log_tail: string[];
}

/** Why `service` is (not) running and healthy. */
export interface Explanation {
  service: string;
  ok: boolean;
  /** The requested service first, then each dependency in the way, down to the root cause. */
  chain: Reason[];
  /** The last of the chain: the first thing to fix. */
  root_cause: string;
  /** The chain as one line (`a is blocked: b is not healthy: c exited with code 1 ...`). */
  summary: string;
}

/** Explain `name` (see the module doc). */
export async function explain(p: Platform, name: string): Promise<Explanation> {
  p.service(name);
  const seen = new Map<string, Promise<Reason>>();
  const reasonOf = (n: string) => {
    let r = seen.get(n);
    if (!r) seen.set(n, r = reason(p, n));
    return r;
  };
  const first = await reasonOf(name);
  if (first.ok) {
    return {
      service: name,
      ok: true,
      chain: [first],
      root_cause: name,
      summary: `${name} ${first.text}`,
    };
  }
  // Down through the first dependency that is not ok, as long as there is one (no cycles: the
  // registry has none).
  const chain = [first];
  for (let at = name;;) {
    const deps = await Promise.all(p.service(at).dependencies.map(reasonOf));
    const bad = deps.find((r) => !r.ok);
    if (!bad) break;
    chain.push(bad);
    at = bad.service;
  }
  return {
    service: name,
    ok: false,
    chain,
    root_cause: chain.at(-1)!.service,
    summary: summarize(chain),
  };
}

/** `a is blocked: b is not healthy: c exited with code 1 at 14:03 (see: provisioning logs c)`. */
function summarize(chain: Reason[]): string {
  const parts = chain.map((r, i) => {
    const last = i === chain.length - 1;
    if (!last && r.status !== "running") return `${r.service} is blocked`;
    if (!last) return `${r.service} ${r.text}`;
    return `${r.service} ${r.text}${
      r.log_tail.length ? ` (see: provisioning logs ${r.service})` : ""
    }`;
  });
  return parts.join(": ");
}

async function reason(p: Platform, name: string): Promise<Reason> {
  const [st, rec, events] = await Promise.all([
    p.status(name, { health: true }),
    readState(p.paths, name).catch(() => undefined),
    lastEvents(p, name),
  ]);
  const running = st.status === "running";
  const ok = running && st.health !== "unhealthy";
  const base = {
    service: name,
    ok,
    status: st.status,
    health: st.health,
    pid: st.pid,
    since: rec?.since ?? rec?.started_at,
    exit_code: st.exit_code,
    exit_signal: st.exit_signal,
    restarts: st.restarts,
    events,
  };
  if (ok) {
    const up = rec?.started_at ? ` since ${dateOf(rec.started_at)}` : "";
    const health = st.health === "healthy" ? "running and healthy" : "running (no health check)";
    return { ...base, text: `is ${health}${up}`, blockers: [], log_tail: [] };
  }
  const [blockers, log_tail] = await Promise.all([
    running ? Promise.resolve([]) : blocking(p, name),
    tail(p, name),
  ]);
  return { ...base, text: own(st, rec?.last_exit?.at, events, blockers), blockers, log_tail };
}

/** The service's own state in a few words. */
function own(
  st: Awaited<ReturnType<Platform["status"]>>,
  exitAt: string | undefined,
  events: JournalRecord[],
  blockers: Finding[],
): string {
  const at = exitAt ? ` at ${clockOf(exitAt)}` : "";
  const exit = st.exit_signal
    ? `was killed by ${st.exit_signal}${at}`
    : st.exit_code !== undefined && st.exit_code !== null
    ? `exited with code ${st.exit_code}${at}`
    : undefined;
  const crashes = events.filter((e) => e.type === "crashed").length;
  const gaveUp = events.some((e) => e.type === "gave_up");
  const history = gaveUp
    ? `; gave up after ${st.restarts ?? crashes} restart(s) (max_restarts)`
    : crashes > 1
    ? `; crashed ${crashes} times`
    : "";
  switch (st.status) {
    case "running":
      return `is not healthy: ${st.health_message ?? st.message ?? "its check fails"}`;
    case "starting":
      return `is still starting${st.message ? `: ${st.message}` : ""}`;
    case "backoff":
      return `${exit ?? "crashed"}; restarting${
        st.next_attempt_at ? ` at ${st.next_attempt_at}` : ""
      }${history}`;
    case "failed":
      // The message says more than the exit only when it is not about the exit.
      return `${exit ?? `failed: ${st.message ?? "unknown reason"}`}${history}${
        exit && st.message && !/code \d+|killed by|Gave up/.test(st.message)
          ? ` (${st.message})`
          : ""
      }`;
    default: {
      const blocked = blockers.length ? `; ${blockers.map((b) => b.message).join("; ")}` : "";
      return `is ${st.status}${blocked}`;
    }
  }
}

/** Failed pre-flight findings of a service that does not run, its dependencies aside. */
async function blocking(p: Platform, name: string): Promise<Finding[]> {
  const findings = await preflight(p, p.service(name)).catch((e) => [{
    ok: false,
    kind: "prerequisite" as const,
    message: (e as Error).message,
  }]);
  return findings.filter((f) => !f.ok && f.kind !== "dependency");
}

/** Its last telling journal events, oldest first. */
async function lastEvents(p: Platform, name: string): Promise<JournalRecord[]> {
  const out: JournalRecord[] = [];
  try {
    for await (const { record } of readJournal(p.paths, { services: [name] })) {
      if (record.service === name && TELLING.has(record.type)) out.push(record);
      if (out.length > EVENTS * 4) out.splice(0, out.length - EVENTS);
    }
  } catch { /* no journal yet, or unreadable: the state says enough */ }
  return out.slice(-EVENTS);
}

async function tail(p: Platform, name: string): Promise<string[]> {
  const lines: string[] = [];
  try {
    for await (const line of p.logs(name, { lines: LOG_LINES })) lines.push(line);
  } catch { /* its logs are elsewhere, or none */ }
  return lines.slice(-LOG_LINES);
}
