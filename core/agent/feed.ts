/**
 * The agent's live view of a home: every service's status, PID, restarts and health, kept
 * current from the state directory (inotify: a transition the supervisor or a CLI writes is seen
 * within milliseconds), a slow poll as a safety net (a crash nobody records), and the agent's own
 * health checks on each service's interval. A change is announced to listeners once. It also
 * follows the home's event journal (one reader for every listener) and announces each record.
 *
 * @module
 */
import { type FSWatcher, watch } from "node:fs";
import type { Platform } from "../platform.ts";
import { type JournalEntry, readJournal } from "../state/journal.ts";
import type { ServiceStatus } from "../types.ts";
import { HealthStats } from "./metrics.ts";

/** What `/v1/events` sends for a service (and the dashboard shows). */
export interface StatusEvent {
  name: string;
  status: ServiceStatus;
  pid: number | null;
  restarts: number;
  /** Its last health check: true, false, or null (none, or not running). */
  healthy: boolean | null;
  uptime_s: number | null;
  started_at?: string;
}

const POLL_MS = 5_000;
const STALE_RECHECK_MS = 250;

/** The live view; `start()` begins watching, `close()` ends it. */
export class Feed {
  readonly current = new Map<string, StatusEvent>();
  readonly health = new HealthStats();
  #listeners = new Set<(e: StatusEvent) => void>();
  #watcher?: FSWatcher;
  #poll?: ReturnType<typeof setTimeout>;
  #checks = new Map<string, ReturnType<typeof setTimeout>>();
  #dirty = new Set<string>();
  #flushing?: Promise<void>;
  #closed = false;
  /** Services whose last read was a stale record, looked at again before it is announced. */
  #stale = new Set<string>();
  #journalListeners = new Set<(e: JournalEntry) => void>();
  #journalAc = new AbortController();

  constructor(private platform: () => Platform) {}

  /** Announce each change to `fn`; returns the unsubscribe. */
  listen(fn: (e: StatusEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Announce each record appended to the journal from now on to `fn`; returns the unsubscribe. */
  listenJournal(fn: (e: JournalEntry) => void): () => void {
    this.#journalListeners.add(fn);
    return () => this.#journalListeners.delete(fn);
  }

  async #followJournal(): Promise<void> {
    const entries = readJournal(this.platform().paths, {
      limit: 0,
      follow: true,
      signal: this.#journalAc.signal,
    });
    for await (const e of entries) for (const fn of this.#journalListeners) fn(e);
  }

  async start(): Promise<void> {
    const p = this.platform();
    this.#followJournal().catch(() => {}); // a journal that cannot be read is no status
    await this.refresh(p.services.map((s) => s.name));
    try {
      this.#watcher = watch(p.paths.state, (_event, file) => {
        const name = typeof file === "string" ? /^(.+)\.json$/.exec(file)?.[1] : undefined;
        if (name) this.#mark(name);
      });
      this.#watcher.on("error", () => {}); // the poll goes on
    } catch { /* no state directory yet: the poll finds the first start */ }
    const poll = () => {
      if (this.#closed) return;
      const t = setTimeout(async () => {
        await this.refresh(this.platform().services.map((s) => s.name)).catch(() => {});
        poll();
      }, POLL_MS);
      this.#poll = t;
    };
    poll();
    for (const svc of p.services) this.#checkLoop(svc.name);
  }

  close(): void {
    this.#closed = true;
    this.#journalAc.abort();
    this.#watcher?.close();
    clearTimeout(this.#poll);
    for (const t of this.#checks.values()) clearTimeout(t);
  }

  #mark(name: string): void {
    this.#dirty.add(name);
    this.#flushing ??= Promise.resolve().then(async () => {
      while (this.#dirty.size) {
        const names = [...this.#dirty];
        this.#dirty.clear();
        await this.refresh(names).catch(() => {});
      }
      this.#flushing = undefined;
    });
  }

  /** Read the status of `names` now; announce what changed. */
  async refresh(names: string[]): Promise<void> {
    const p = this.platform();
    await Promise.all(names.map(async (name) => {
      if (!p.registry.byName.has(name)) return;
      const rt = await p.runtime(name).catch(() => undefined);
      if (!rt) return;
      const prev = this.current.get(name);
      // A record whose process just died (a crash the supervisor is recording right now) reads
      // `failed` for a moment: look again shortly, and announce it only if it stays so.
      if (rt.stale && !this.#stale.has(name) && prev?.status !== rt.status) {
        this.#stale.add(name);
        this.#staleTimer(name);
        return;
      }
      this.#stale.delete(name);
      const running = rt.status === "running";
      const next: StatusEvent = {
        name,
        status: rt.status,
        pid: rt.pid ?? null,
        restarts: rt.restarts ?? 0,
        healthy: running && prev?.status === "running" && prev.pid === (rt.pid ?? null)
          ? prev.healthy
          : null,
        uptime_s: running ? rt.uptime_s ?? null : null,
        ...(running && rt.uptime_s !== undefined
          ? { started_at: new Date(Date.now() - rt.uptime_s * 1000).toISOString() }
          : {}),
      };
      this.#set(next, prev);
    }));
  }

  #staleTimer(name: string): void {
    const t = setTimeout(() => {
      if (this.#closed) return;
      this.refresh([name]).catch(() => {});
    }, STALE_RECHECK_MS);
    (t as { unref?: () => void }).unref?.();
  }

  #set(next: StatusEvent, prev = this.current.get(next.name)): void {
    this.current.set(next.name, next);
    const changed = !prev || prev.status !== next.status || prev.pid !== next.pid ||
      prev.restarts !== next.restarts || prev.healthy !== next.healthy;
    if (changed) { for (const fn of this.#listeners) fn(next); }
  }

  /** The agent's own check of `name` on its interval, while it runs. */
  #checkLoop(name: string): void {
    const tick = async () => {
      if (this.#closed) return;
      const p = this.platform();
      const svc = p.registry.byName.get(name);
      if (!svc) return; // gone from the registry
      const now = this.current.get(name);
      if (svc.health_check.type !== "none" && now?.status === "running") {
        const r = await p.probe(svc).catch(() => undefined);
        if (r) {
          this.health.observe({
            service: name,
            check: svc.health_check.type,
            seconds: r.durationMs / 1000,
            ok: r.healthy,
          });
          const latest = this.current.get(name);
          if (latest?.status === "running") this.#set({ ...latest, healthy: r.healthy });
        }
      }
      if (!this.#closed) {
        this.#checks.set(name, setTimeout(tick, Math.max(1, svc.health_check.interval) * 1000));
      }
    };
    this.#checks.set(name, setTimeout(tick, 0));
  }
}
