/**
 * One watched service's state machine inside the supervisor: spawn it as our child, see it
 * exit, apply the restart policy with backoff, restart it, watch its liveness. Every change of
 * its status goes through the state store.
 *
 * ```
 * starting ──ready──► running ──crash / unhealthy──► backoff ──timer──► restarting ──healthy──► running
 *    │ (the CLI owns this attempt)                      │ gave up, or no restart policy: failed
 * ```
 *
 * @module
 */
import { type ProbeTarget, probeTargetOf, waitHealthy, watch } from "../health/prober.ts";
import { lastOutput, launch } from "../lifecycle/launch.ts";
import type { PluginRegistry } from "../plugins/registry.ts";
import { appendEvent, type JournalEvent } from "../state/journal.ts";
import type { StateStore } from "../state/store.ts";
import {
  describeExit,
  type DriverContext,
  type ExitInfo,
  type Service,
  type StatePaths,
} from "../types.ts";
import { nextStreak, restartDelayMs } from "./restart_policy.ts";
import type { WatchSpec } from "./protocol.ts";

/** What a watcher needs of the daemon that hosts it. */
export interface WatcherHost {
  paths: StatePaths;
  store: StateStore;
  /** The plugins a watched service's registry sees (its directory and its override opt-ins). */
  plugins(spec: WatchSpec): PluginRegistry;
  /** A timestamped line in the service's log and the supervisor's. */
  serviceLog(name: string, line: string): Promise<void>;
  log(line: string): void;
  /** Poll this watcher's PID (it is not our child) until the signal aborts. */
  poll(w: Watcher, signal: AbortSignal): void;
  /** Run `fn` after every earlier start/restart/unwatch of the service. */
  serial<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** Stop watching (the service failed for good, or the user stopped it). */
  forget(name: string): Promise<void>;
  /**
   * False once the home is gone or another supervisor has claimed it (the home was deleted
   * and made anew): this one then exits, and never restarts anything again.
   */
  stillOurs(): boolean;
  shutdown(): void;
}

/** One service under watch. */
export class Watcher {
  readonly name: string;
  spec: WatchSpec;
  /** starting: the CLI owns the start attempt · running: crashes are ours · backoff/restarting: recovering. */
  phase: "starting" | "running" | "backoff" | "restarting";
  pid?: number;
  pidStart?: string;
  /** Crashes in a row (reset after `restart_window` seconds of uptime). */
  streak = 0;
  startedAt = Date.now();
  /** Aborts the health watch, liveness poll and backoff timer of the current incarnation. */
  ac = new AbortController();
  /** Aborts the current health watch alone (an `update` starts another; see `#healthWatch`). */
  #health = new AbortController();
  lastExit?: ExitInfo;
  /** Its liveness check failed and its state says "Unhealthy: ..." (no restart policy). */
  #flagged = false;
  readonly #host: WatcherHost;

  constructor(host: WatcherHost, spec: WatchSpec, phase: Watcher["phase"]) {
    this.#host = host;
    this.spec = spec;
    this.name = spec.service.name;
    this.phase = phase;
  }

  get service(): Service {
    return this.spec.service;
  }

  #ctx(): DriverContext {
    return { paths: this.#host.paths, env: this.spec.env, cwd: this.spec.cwd };
  }

  #renew(): void {
    this.ac.abort();
    this.ac = new AbortController();
  }

  /** One event of this service in the home's journal, by the supervisor. */
  #journal(type: JournalEvent["type"], text: string, extra: Partial<JournalEvent> = {}): void {
    void appendEvent(this.#host.paths, {
      type,
      service: this.name,
      text,
      by: "supervisor",
      ...extra,
    });
  }

  /** A `crashed` event: how it ended. */
  #crashEvent(exit: ExitInfo | undefined, suffix = ""): void {
    this.#journal("crashed", `crashed (${describeExit(exit)})${suffix}`, {
      ...(this.pid ? { pid: this.pid } : {}),
      ...(exit ? { exit_code: exit.code, signal: exit.signal } : {}),
    });
  }

  /** Spawn the service as our child and record it; watch for its exit. */
  async spawn(opts: { restart?: boolean } = {}): Promise<void> {
    const driver = await this.#host.plugins(this.spec).driver(this.service.deployment.mode);
    const handle = await launch(this.#host.store, driver, this.service, this.#ctx(), opts);
    this.pid = handle.pid;
    this.pidStart = handle.pid_start;
    this.startedAt = Date.now();
    const ac = this.ac;
    if (handle.exited) {
      handle.exited.then((x) => {
        if (!ac.signal.aborted) return this.exited(handle.pid, x);
      }).catch((e) => this.#host.log(`${this.name}: ${(e as Error).message}`));
    } else this.#host.poll(this, ac.signal);
  }

  /** Its process `pid` ended (exit info when it was our child). */
  async exited(pid: number | undefined, exit?: ExitInfo): Promise<void> {
    if (pid && this.pid !== pid) return;
    this.#renew();
    this.lastExit = exit;
    if (exit) await this.#host.store.exited(this.name, pid, exit).catch(() => undefined);
    // The CLI owns a start attempt and reports it; we only recorded how it ended.
    if (this.phase === "starting") return void (await this.#host.forget(this.name));
    if (this.phase === "backoff") return;
    if (this.phase === "restarting") return; // restart() sees the abort and counts the crash
    this.#crashEvent(exit);
    await this.crashed(describeExit(exit), exit);
  }

  /** Apply the restart policy after a crash or a failed liveness check. */
  async crashed(why: string, exit?: ExitInfo): Promise<void> {
    const s = this.service.startup;
    const host = this.#host;
    if (!host.stillOurs()) return void host.shutdown();
    if (!s.restart_on_failure) {
      await this.#fail(`Crashed: ${why}`, exit);
      await host.serviceLog(this.name, `${why}; restart_on_failure is off`);
      this.#journal("failed", `failed: ${why}; not restarted (restart_on_failure is off)`);
      return;
    }
    this.streak = nextStreak(this.streak, Date.now() - this.startedAt, s);
    if (this.streak > s.max_restarts) {
      const message = `Gave up after ${s.max_restarts} restarts: ${why}`;
      await this.#fail(message, exit);
      await host.serviceLog(this.name, message);
      this.#journal("gave_up", `gave up after ${s.max_restarts} restarts: ${why}`, {
        attempt: this.streak,
        max_attempts: s.max_restarts,
      });
      return;
    }
    const delay = restartDelayMs(this.streak, s);
    const message = `Crashed (${why}); restart ${this.streak} of ${s.max_restarts} in ${
      (delay / 1000).toFixed(2)
    }s`;
    this.phase = "backoff";
    await host.store.backoff(this.name, { message, delayMs: delay, exit });
    await host.serviceLog(this.name, message);
    this.#journal(
      "backoff",
      `backoff: restart ${this.streak} of ${s.max_restarts} in ${
        (delay / 1000).toFixed(2)
      }s (${why})`,
      { attempt: this.streak, max_attempts: s.max_restarts, delay_ms: delay },
    );
    const ac = this.ac;
    const timer = setTimeout(() => {
      if (ac.signal.aborted) return;
      this.restart().catch((e) => host.log(`${this.name}: restart: ${(e as Error).message}`));
    }, delay);
    ac.signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
  }

  async #fail(message: string, exit?: ExitInfo): Promise<void> {
    const driver = await this.#host.plugins(this.spec).driver(this.service.deployment.mode);
    const lines = await lastOutput(driver, this.service, this.#ctx());
    await this.#host.store.failed(this.name, message, { exit, last_log_lines: lines });
    await this.#host.forget(this.name);
  }

  async restart(): Promise<void> {
    this.phase = "restarting";
    const host = this.#host;
    const svc = this.service;
    const max = svc.startup.max_restarts;
    this.#journal("restarting", `restarting (restart ${this.streak} of ${max})`, {
      attempt: this.streak,
      max_attempts: max,
    });
    try {
      const current = await host.serial(this.name, async () => {
        if (this.ac.signal.aborted) return false;
        // What the crashed incarnation left (the workers of a killed master) must be gone before
        // the new one spawns: else it keeps the port and answers the new one's health check.
        const driver = await host.plugins(this.spec).driver(svc.deployment.mode);
        await driver.stop(svc, this.#ctx());
        await this.spawn({ restart: true });
        return true;
      });
      if (!current) return; // unwatched (stopped by a user) while it waited
    } catch (e) {
      return void this.crashed(`restart failed: ${(e as Error).message}`);
    }
    const ac = this.ac;
    let ok = true;
    let message = "Started (no health check)";
    if (svc.health_check.type !== "none") {
      const check = await host.plugins(this.spec).check(svc.health_check.type);
      const driver = await host.plugins(this.spec).driver(svc.deployment.mode);
      const r = await waitHealthy(
        probeTargetOf(svc, check, this.spec.env, driver, this.#ctx()),
        { deadlineMs: svc.startup.start_timeout * 1000, signal: ac.signal, maxDelayMs: 50 },
      );
      ok = r.healthy;
      message = r.result.message;
    }
    if (ac.signal.aborted) {
      // It died while we waited: exited() saw it in phase "restarting"; another crash.
      if (this.phase === "restarting") {
        this.ac = new AbortController();
        this.#crashEvent(this.lastExit, " during restart");
        await this.crashed(`${describeExit(this.lastExit)} during restart`, this.lastExit);
      }
      return;
    }
    if (!ok) {
      this.#renew();
      const driver = await host.plugins(this.spec).driver(svc.deployment.mode);
      await driver.stop(svc, this.#ctx()).catch(() => {});
      return void this.crashed(`not healthy within start_timeout after restart: ${message}`);
    }
    await host.store.running(this.name);
    await host.serviceLog(this.name, `restarted, healthy (pid ${this.pid})`);
    this.#journal("healthy", `restarted, healthy (pid ${this.pid})`, { pid: this.pid });
    this.running();
  }

  /** It became healthy: from now on a crash is ours to handle; watch its liveness. */
  running(): void {
    this.phase = "running";
    const svc = this.service;
    if (svc.health_check.type === "none") return;
    const ac = this.#healthWatch();
    const plugins = this.#host.plugins(this.spec);
    Promise.all([plugins.check(svc.health_check.type), plugins.driver(svc.deployment.mode)]).then((
      [check, driver],
    ) =>
      watch(probeTargetOf(svc, check, this.spec.env, driver, this.#ctx()), {
        signal: ac.signal,
        onResult: (r, st) => {
          if (ac.signal.aborted || this.phase !== "running") return;
          const log = (e: unknown) => this.#host.log(`${this.name}: ${(e as Error).message}`);
          if (st.unhealthy) this.#unhealthy(r.message, st.consecutiveFailures).catch(log);
          else if (r.healthy && this.#flagged) {
            this.#flagged = false; // healthy again: the "Unhealthy: ..." message no longer holds
            this.#host.store.note(this.name, undefined).catch(log);
            this.#journal("healthy", `healthy again: ${r.message}`);
          }
        },
      })
    ).catch((e) => this.#host.log(`${this.name}: health watch failed: ${(e as Error).message}`));
  }

  /**
   * A new health watch of this incarnation, replacing the one before: it ends with `ac` (a
   * crash, a stop) or when the next one starts (an `update`). Liveness and the exit of the
   * process stay on `ac`.
   */
  #healthWatch(): AbortController {
    this.#health.abort();
    const own = this.#health = new AbortController();
    if (this.ac.signal.aborted) own.abort();
    else this.ac.signal.addEventListener("abort", () => own.abort(), { once: true });
    return own;
  }

  /**
   * New settings of the same deployment (`platform reload`): its restart policy, health check
   * and log bounds apply from now on, and a running service's health watch starts again with
   * the new check. The process is not touched. In another phase the next start (or `ready`)
   * takes the new settings.
   */
  async update(spec: WatchSpec): Promise<void> {
    this.spec = spec;
    if (this.phase !== "running") return;
    this.#health.abort();
    if (this.#flagged) {
      // The old check's verdict; the new one gives its own.
      this.#flagged = false;
      await this.#host.store.note(this.name, undefined);
    }
    const driver = await this.#host.plugins(spec).driver(spec.service.deployment.mode);
    if (driver.capabilities?.supervision === "observe") this.observe();
    else this.running();
  }

  /**
   * A service that runs elsewhere (`supervision: "observe"`, a remote endpoint): every
   * `health_check.interval` seconds ask whether it answers — its health check when it has one,
   * else its driver's status probe — and record each change, after `health_check.retries`
   * failures in a row, in its state (`Unreachable: …`, then cleared) and its log. Never restarted.
   */
  observe(): void {
    this.phase = "running";
    const svc = this.service;
    const host = this.#host;
    const ac = this.#healthWatch();
    const log = (e: unknown) => host.log(`${this.name}: ${(e as Error).message}`);
    const target = async (): Promise<ProbeTarget> => {
      const driver = await host.plugins(this.spec).driver(svc.deployment.mode);
      if (svc.health_check.type !== "none") {
        const check = await host.plugins(this.spec).check(svc.health_check.type);
        return probeTargetOf(svc, check, this.spec.env, driver, this.#ctx());
      }
      const common = { health: svc.health_check, service: svc.name, env: this.spec.env };
      const check = {
        type: "status",
        config: undefined as never,
        run: async () => {
          const started = performance.now();
          const rt = await driver.status(svc, { ...this.#ctx(), signal: ac.signal });
          const durationMs = performance.now() - started;
          return { healthy: rt.status === "running", message: rt.message ?? rt.status, durationMs };
        },
      };
      return { ...common, check, cfg: undefined };
    };
    let down = false;
    target().then((t) =>
      watch(t, {
        signal: ac.signal,
        onResult: (r, st) => {
          if (ac.signal.aborted) return;
          if (st.unhealthy && !down) {
            down = true;
            host.store.note(this.name, `Unreachable: ${r.message}`).catch(log);
            host.serviceLog(this.name, `unreachable: ${r.message}`).catch(log);
            this.#journal("unhealthy", `unreachable: ${r.message}`);
          } else if (r.healthy && down) {
            down = false;
            host.store.note(this.name, undefined).catch(log);
            host.serviceLog(this.name, `reachable again: ${r.message}`).catch(log);
            this.#journal("healthy", `reachable again: ${r.message}`);
          }
        },
      })
    ).catch((e) => host.log(`${this.name}: watch failed: ${(e as Error).message}`));
  }

  async #unhealthy(message: string, failures: number): Promise<void> {
    const svc = this.service;
    const why = `unhealthy after ${failures} failed checks: ${message}`;
    if (!svc.startup.restart_on_failure) {
      // Journaled once when it turns unhealthy (the check goes on failing every interval).
      if (!this.#flagged) {
        this.#journal("unhealthy", `${why}; not restarted (restart_on_failure is off)`);
      }
      this.#flagged = true;
      await this.#host.store.note(this.name, `Unhealthy: ${message}`);
      return;
    }
    await this.#host.serviceLog(this.name, `${why}; restarting`);
    this.#journal("unhealthy", `${why}; restarting`);
    this.#renew();
    const driver = await this.#host.plugins(this.spec).driver(svc.deployment.mode);
    await driver.stop(svc, this.#ctx()).catch((e) =>
      this.#host.log(`${this.name}: ${(e as Error).message}`)
    );
    await this.crashed(why);
  }
}
