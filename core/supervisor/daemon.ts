/**
 * The supervisor: one long-lived, detached process per `$PROVISIONING_HOME` that watches the
 * services which need watching (`restart_on_failure`, or a health check), restarts crashed ones
 * with backoff, restarts or flags services whose liveness check fails, and rotates their logs.
 *
 * It is the parent of the services it starts, so a crash is seen at once (the kernel tells it),
 * not at the next health interval. Services still run in their own process groups: `kill -9` of
 * the supervisor leaves them running, and the next supervisor re-adopts them from
 * `run/watch/<name>.json` (a re-adopted service is not its child: its death is seen by polling
 * its PID every second until the supervisor restarts it, then it is a child again).
 *
 * The CLI talks to it over `run/supervisor.sock` (`_ipc.ts`) and works without it.
 *
 * @module
 */
import { appendFile, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { chmod } from "node:fs/promises";
import { waitHealthy, watch } from "../health/prober.ts";
import { type Listener, serve } from "../runtime/ipc.ts";
import { beat } from "../sleep.ts";
import { rotateIfLarger } from "../state/rotate.ts";
import { nextStreak, restartDelayMs } from "./restart_policy.ts";
import { PluginRegistry } from "../plugins/registry.ts";
import { isAlive, parseProcStat, processStartTime } from "../process/identity.ts";
import {
  ensureDirs,
  logFile,
  readPid,
  readState,
  removePid,
  safeName,
  statePaths,
  writeFileAtomic,
  writeState,
} from "../state/files.ts";
import type { DriverContext, Service, ServiceState, StatePaths } from "../types.ts";

/** What the supervisor keeps of a watched service (also `run/watch/<name>.json`). */
export interface WatchSpec {
  service: Service;
  env: Record<string, string | undefined>;
  cwd: string;
}

interface Entry extends WatchSpec {
  name: string;
  /** starting: the CLI owns the start attempt · running: crashes are ours · backoff/restarting: recovering. */
  phase: "starting" | "running" | "backoff" | "restarting";
  pid?: number;
  pidStart?: string;
  /** Crashes in a row (reset after `restart_window` seconds of uptime). */
  streak: number;
  startedAt: number;
  /** Aborts the health watch, liveness poll and backoff timer of the current incarnation. */
  ac: AbortController;
  lastExit?: { code: number | null; signal: string | null };
  /** Its liveness check failed and the state file says "Unhealthy: ..." (no restart policy). */
  flagged?: boolean;
}

/** Paths of the supervisor's own files. */
export function supervisorFiles(paths: StatePaths) {
  return {
    socket: join(paths.run, "supervisor.sock"),
    pid: join(paths.run, "supervisor.pid"),
    log: join(paths.run, "supervisor.log"),
    watchDir: join(paths.run, "watch"),
  };
}

const LIVENESS_POLL_MS = 1_000;
const ROTATE_EVERY_MS = 10_000;
const IDLE_EXIT_MS = 2_000;
const COMPACT_AFTER_MS = 2_000;

/** One incarnation of a service whose PID is polled (it is not our child). */
interface Polled {
  entry: Entry;
  ac: AbortController;
  pid?: number;
}

/**
 * Whether `pid` (with start time `start`) is alive and not a zombie, from one synchronous read
 * of `/proc/PID/stat`; undefined where there is no /proc (then ask `isAlive`).
 */
function aliveNow(pid: number, start?: string): boolean | undefined {
  if (process.platform !== "linux") return undefined;
  let stat;
  try {
    stat = parseProcStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
  if (!stat || stat.state === "Z" || stat.state === "X") return false;
  return start === undefined || stat.startTime === start;
}

const describe = (e?: { code: number | null; signal: string | null }) =>
  !e
    ? "exited (exit status unknown: it was not our child)"
    : e.signal
    ? `killed by ${e.signal}`
    : `exited with code ${e.code}`;

/** The supervisor daemon. `run()` returns when it shuts down. */
export class Supervisor {
  readonly paths: StatePaths;
  readonly files: ReturnType<typeof supervisorFiles>;
  #entries = new Map<string, Entry>();
  /** Services that are not our children, whose PIDs `#pollTick` checks every second. */
  #polled = new Set<Polled>();
  #poller?: ReturnType<typeof setInterval>;
  /** Per service: the tail of its start / restart / adopt / unwatch queue (see `#serial`). */
  #queue = new Map<string, Promise<void>>();
  #plugins = new Map<string, PluginRegistry>();
  #server?: Listener;
  #idleTimer?: ReturnType<typeof setTimeout>;
  #compactTimer?: ReturnType<typeof setTimeout>;
  /** Ends the rotation loop at shutdown. */
  #stopping = new AbortController();
  #done!: () => void;
  #env: Record<string, string | undefined>;

  constructor(home: string, env: Record<string, string | undefined> = process.env) {
    this.paths = statePaths(home);
    this.files = supervisorFiles(this.paths);
    this.#env = env;
  }

  /** Claim the home (one supervisor each), serve the socket, re-adopt, run until idle. */
  async run(): Promise<void> {
    await ensureDirs(this.paths);
    await mkdir(this.files.watchDir, { recursive: true, mode: 0o700 });
    if (!(await this.#claim())) return;
    const stopped = new Promise<void>((resolve) => (this.#done = resolve));
    await rm(this.files.socket, { force: true });
    this.#server = await serve(this.files.socket, (msg) => this.#handle(msg));
    await chmod(this.files.socket, 0o600);
    for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => this.shutdown());
    this.#tickLoop();
    this.log(`supervisor ${process.pid} serving ${this.files.socket}`);
    await this.#readopt();
    this.#maybeIdle();
    await stopped;
  }

  /** Stop watching everything (services keep running) and exit. */
  async shutdown(): Promise<void> {
    for (const e of this.#entries.values()) e.ac.abort();
    this.#stopping.abort();
    clearInterval(this.#poller);
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#compactTimer);
    await this.#server?.close();
    await rm(this.files.socket, { force: true });
    const owner = await readFile(this.files.pid, "utf8").catch(() => "");
    if (owner.startsWith(`${process.pid} `)) await rm(this.files.pid, { force: true });
    this.log(`supervisor ${process.pid} exiting`);
    this.#done?.();
  }

  /** One timestamped line in the supervisor's log. */
  log(line: string): void {
    console.log(`${new Date().toISOString()} ${line}`);
  }

  /** One timestamped line in a service's log (what the supervisor did to it). */
  async #serviceLog(name: string, line: string): Promise<void> {
    this.log(`${name}: ${line}`);
    await appendFile(
      logFile(this.paths, name),
      `--- ${new Date().toISOString()} supervisor: ${line}\n`,
      { mode: 0o600 },
    )
      .catch(() => {});
  }

  async #claim(): Promise<boolean> {
    const me = `${process.pid} ${await processStartTime(process.pid)}\n`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await writeFile(this.files.pid, me, { flag: "wx", mode: 0o600 });
        return true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        const [pid, start] = (await readFile(this.files.pid, "utf8").catch(() => "")).trim().split(
          " ",
        );
        if (pid && (await isAlive(Number(pid), start))) {
          this.log(`supervisor ${pid} already serves this home; exiting`);
          return false;
        }
        await rm(this.files.pid, { force: true });
      }
    }
    return false;
  }

  #pluginsFor(cwd: string): PluginRegistry {
    let p = this.#plugins.get(cwd);
    if (!p) {
      p = PluginRegistry.discover({ cwd, home: this.paths.home, env: this.#env });
      this.#plugins.set(cwd, p);
    }
    return p;
  }

  #ctx(e: WatchSpec): DriverContext {
    return { paths: this.paths, env: e.env };
  }

  async #handle(msg: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (msg.op === "status") {
      // Read-only: it must not keep an idle supervisor alive (`watch supervisor status`).
      const mem = process.memoryUsage();
      return {
        ok: true,
        pid: process.pid,
        memory: { rss: mem.rss, heap_used: mem.heapUsed, heap_total: mem.heapTotal },
        services: [...this.#entries.values()].map((e) => ({
          name: e.name,
          phase: e.phase,
          pid: e.pid,
          streak: e.streak,
        })),
      };
    }
    clearTimeout(this.#idleTimer);
    try {
      switch (msg.op) {
        case "ping":
          return { ok: true, pid: process.pid, watching: [...this.#entries.keys()] };
        case "start": {
          const spec = msg as unknown as WatchSpec;
          return { ok: true, ...(await this.#serial(spec.service.name, () => this.#start(spec))) };
        }
        case "adopt": {
          const spec = msg as unknown as WatchSpec;
          await this.#serial(spec.service.name, () => this.#adopt(spec, "running"));
          return { ok: true };
        }
        case "settle":
          // Let every start, restart and unwatch in flight finish (their processes are then on
          // record in the state files): a stop plans from settled state.
          await Promise.all([...this.#queue.values()]);
          return { ok: true };
        case "ready": {
          const e = this.#entries.get(String(msg.name));
          if (e && e.phase === "starting") this.#running(e);
          return { ok: !!e };
        }
        case "unwatch":
          await this.#serial(String(msg.name), () => this.#unwatch(String(msg.name)));
          return { ok: true };
        case "shutdown":
          setTimeout(() => this.shutdown(), 10);
          return { ok: true };
        default:
          return { ok: false, error: `Unknown supervisor request "${msg.op}"` };
      }
    } finally {
      this.#maybeIdle();
      this.#compactSoon();
    }
  }

  /**
   * Collect and compact the heap once a burst of requests is over (`COMPACT_AFTER_MS` without
   * one): a bring-up leaves megabytes of garbage behind, and a daemon that then only runs
   * health checks would carry it until V8 next needs room. This is what V8's memory reducer
   * does, but at a time of our choosing; the reducer itself is off (see `_self.ts`). A no-op
   * where the runtime exposes no `gc()`.
   */
  #compactSoon(): void {
    const gc = (globalThis as { gc?: (opts?: Record<string, string>) => void }).gc;
    if (!gc) return;
    clearTimeout(this.#compactTimer);
    // "last-resort": every available garbage, and the freed pages returned to the system.
    this.#compactTimer = setTimeout(
      () => gc({ type: "major", execution: "sync", flavor: "last-resort" }),
      COMPACT_AFTER_MS,
    );
  }

  /**
   * Run `fn` once every earlier start, restart, adoption and unwatch of `name` has finished, so
   * two of them never spawn at once (a start asked for by a CLI that was killed goes on here).
   */
  #serial<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const next = (this.#queue.get(name) ?? Promise.resolve()).then(fn);
    const tail = next.then(() => {}, () => {});
    this.#queue.set(name, tail);
    tail.then(() => this.#queue.get(name) === tail && this.#queue.delete(name));
    return next;
  }

  /** Start a service as our child (the CLI waits for it to become healthy, then says "ready"). */
  async #start(spec: WatchSpec): Promise<{ pid?: number }> {
    const name = safeName(spec.service.name);
    const old = this.#entries.get(name);
    if (old?.pid && old.phase !== "backoff" && (await isAlive(old.pid, old.pidStart))) {
      // Started already (by a CLI killed before it saw the process on record, or a restart):
      // the caller waits for this process instead of spawning a second one.
      return { pid: old.pid };
    }
    if (old) old.ac.abort();
    const entry: Entry = {
      ...spec,
      name,
      phase: "starting",
      streak: old?.streak ?? 0,
      startedAt: Date.now(),
      ac: new AbortController(),
    };
    this.#entries.set(name, entry);
    const watchFile = writeFileAtomic(
      join(this.files.watchDir, `${name}.json`),
      JSON.stringify(spec),
    );
    try {
      // The watch file is written while the service spawns: both are on the start's critical path.
      await Promise.all([this.#spawn(entry), watchFile]);
    } catch (e) {
      await watchFile.catch(() => {});
      this.#entries.delete(name);
      await rm(join(this.files.watchDir, `${name}.json`), { force: true });
      throw e;
    }
    return { pid: entry.pid };
  }

  async #spawn(entry: Entry): Promise<void> {
    const driver = await this.#pluginsFor(entry.cwd).driver(entry.service.deployment.mode);
    const handle = await driver.start(entry.service, this.#ctx(entry));
    entry.pid = handle.pid;
    entry.pidStart = handle.pid ? await processStartTime(handle.pid) : undefined;
    entry.startedAt = Date.now();
    const ac = entry.ac;
    const exited = handle.exited as
      | Promise<{ code: number | null; signal: string | null }>
      | undefined;
    if (exited) {
      exited.then((x) => {
        if (!ac.signal.aborted) this.#exited(entry, handle.pid, x);
      });
    } else this.#pollAlive(entry);
  }

  /** Watch a service that already runs (re-adoption, or started before the supervisor). */
  async #adopt(spec: WatchSpec, phase: Entry["phase"]): Promise<void> {
    const name = safeName(spec.service.name);
    const known = this.#entries.get(name);
    if (known) {
      // Its starter died before saying "ready"; the CLI that found it healthy says so now.
      if (known.phase === "starting" && phase === "running") this.#running(known);
      return;
    }
    const state = await readState(this.paths, name);
    const entry: Entry = {
      ...spec,
      name,
      phase,
      streak: 0,
      pid: state?.pid,
      pidStart: state?.pid_start,
      startedAt: state?.started_at ? Date.parse(state.started_at) : Date.now(),
      ac: new AbortController(),
    };
    this.#entries.set(name, entry);
    await writeFileAtomic(join(this.files.watchDir, `${name}.json`), JSON.stringify(spec));
    if (!entry.pid || !(await isAlive(entry.pid, entry.pidStart))) {
      // It died while nobody watched: status says so; the next start brings it back.
      const message = `Process ${entry.pid ?? "?"} exited while no supervisor watched it`;
      await this.#patch(name, { status: "failed", message, pid: undefined, pid_start: undefined });
      await this.#serviceLog(name, message);
      await this.#forget(name);
      return;
    }
    this.#pollAlive(entry);
    if (phase === "running") this.#running(entry);
  }

  /** Re-adopt every service a previous supervisor watched. */
  async #readopt(): Promise<void> {
    const files = await readdir(this.files.watchDir).catch(() => [] as string[]);
    for (const f of files.filter((x) => x.endsWith(".json"))) {
      try {
        const spec = JSON.parse(await readFile(join(this.files.watchDir, f), "utf8")) as WatchSpec;
        const state = await readState(this.paths, spec.service.name);
        if (state?.status === "stopped") {
          await rm(join(this.files.watchDir, f), { force: true });
          continue;
        }
        this.log(`re-adopting ${spec.service.name}`);
        await this.#adopt(spec, "running");
      } catch (e) {
        this.log(`cannot re-adopt ${f}: ${(e as Error).message}`);
      }
    }
  }

  /**
   * Poll the PID of a service that is not our child. One timer serves them all and reads
   * `/proc/PID/stat` synchronously (procfs never waits for a disk): 50 re-adopted services cost
   * about 0.1 % of a core instead of the 3 % of 50 timers doing async reads.
   */
  #pollAlive(entry: Entry): void {
    const polled: Polled = { entry, ac: entry.ac, pid: entry.pid };
    this.#polled.add(polled);
    polled.ac.signal.addEventListener("abort", () => this.#polled.delete(polled), { once: true });
    this.#poller ??= setInterval(() => this.#pollTick(), LIVENESS_POLL_MS);
  }

  async #pollTick(): Promise<void> {
    for (const w of this.#polled) {
      if (w.ac.signal.aborted) {
        this.#polled.delete(w);
        continue;
      }
      const start = w.entry.pidStart;
      if (w.pid && (aliveNow(w.pid, start) ?? (await isAlive(w.pid, start)))) continue;
      this.#polled.delete(w);
      if (!w.ac.signal.aborted) await this.#exited(w.entry, w.pid, undefined);
    }
    if (this.#polled.size === 0) {
      clearInterval(this.#poller);
      this.#poller = undefined;
    }
  }

  /** The service became healthy: from now on a crash is ours to handle; watch its liveness. */
  #running(entry: Entry): void {
    entry.phase = "running";
    const svc = entry.service;
    if (svc.health_check.type === "none") return;
    const ac = entry.ac;
    this.#pluginsFor(entry.cwd).check(svc.health_check.type).then((check) =>
      watch({
        check,
        cfg: svc.health_check[svc.health_check.type],
        health: svc.health_check,
        service: svc.name,
        env: entry.env,
      }, {
        signal: ac.signal,
        onResult: (r, st) => {
          if (ac.signal.aborted || entry.phase !== "running") return;
          if (st.unhealthy) this.#unhealthy(entry, r.message, st.consecutiveFailures);
          else if (r.healthy && entry.flagged) {
            entry.flagged = false; // healthy again: the "Unhealthy: ..." message no longer holds
            this.#patch(entry.name, { message: undefined });
          }
        },
      })
    ).catch((e) => this.log(`${entry.name}: health watch failed: ${(e as Error).message}`));
  }

  async #unhealthy(entry: Entry, message: string, failures: number): Promise<void> {
    const svc = entry.service;
    const why = `unhealthy after ${failures} failed checks: ${message}`;
    if (!svc.startup.restart_on_failure) {
      entry.flagged = true;
      await this.#patch(entry.name, { message: `Unhealthy: ${message}` });
      return;
    }
    await this.#serviceLog(entry.name, `${why}; restarting`);
    entry.ac.abort();
    entry.ac = new AbortController();
    const driver = await this.#pluginsFor(entry.cwd).driver(svc.deployment.mode);
    await driver.stop(svc, this.#ctx(entry)).catch((e) =>
      this.log(`${entry.name}: ${(e as Error).message}`)
    );
    await this.#crashed(entry, why);
  }

  /** The process of `entry` ended (exit info when it was our child). */
  async #exited(
    entry: Entry,
    pid: number | undefined,
    exit?: { code: number | null; signal: string | null },
  ): Promise<void> {
    if (this.#entries.get(entry.name) !== entry || (pid && entry.pid !== pid)) return;
    entry.ac.abort();
    entry.ac = new AbortController();
    entry.lastExit = exit;
    const last_exit = exit ? { ...exit, at: new Date().toISOString() } : undefined;
    if (entry.phase === "starting") {
      // The CLI owns this start attempt and reports it; we only record how it ended.
      await this.#patch(entry.name, {
        status: "failed",
        message: `Exited during startup: ${describe(exit)}`,
        ...(last_exit ? { last_exit } : {}),
      });
      await this.#forget(entry.name);
      return;
    }
    if (entry.phase === "backoff") return;
    if (entry.phase === "restarting") return; // #restart sees the abort and counts the crash
    if (last_exit) await this.#patch(entry.name, { last_exit });
    await this.#crashed(entry, describe(exit));
  }

  /** Apply the restart policy after a crash or a failed liveness check. */
  async #crashed(entry: Entry, why: string): Promise<void> {
    const s = entry.service.startup;
    if (!(await this.#homeExists())) return void this.shutdown();
    if (!s.restart_on_failure) {
      await this.#patch(entry.name, {
        status: "failed",
        message: `Crashed: ${why}`,
        pid: undefined,
        pid_start: undefined,
      });
      await this.#serviceLog(entry.name, `${why}; restart_on_failure is off`);
      await this.#forget(entry.name);
      return;
    }
    entry.streak = nextStreak(entry.streak, Date.now() - entry.startedAt, s);
    if (entry.streak > s.max_restarts) {
      const message = `Gave up after ${s.max_restarts} restarts: ${why}`;
      await this.#patch(entry.name, {
        status: "failed",
        message,
        pid: undefined,
        pid_start: undefined,
      });
      await this.#serviceLog(entry.name, message);
      await this.#forget(entry.name);
      return;
    }
    const delay = restartDelayMs(entry.streak, s);
    const message =
      `Restarting after crash (${why}): restart ${entry.streak} of ${s.max_restarts} in ${
        (delay / 1000).toFixed(2)
      }s`;
    entry.phase = "backoff";
    await this.#patch(entry.name, {
      status: "starting",
      message,
      pid: undefined,
      pid_start: undefined,
    });
    await this.#serviceLog(entry.name, message);
    const ac = entry.ac;
    const timer = setTimeout(() => !ac.signal.aborted && this.#restart(entry), delay);
    ac.signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
  }

  async #restart(entry: Entry): Promise<void> {
    if (this.#entries.get(entry.name) !== entry) return;
    entry.phase = "restarting";
    const svc = entry.service;
    try {
      const current = await this.#serial(entry.name, async () => {
        if (this.#entries.get(entry.name) !== entry || entry.ac.signal.aborted) return false;
        await this.#spawn(entry);
        return true;
      });
      if (!current) return; // unwatched (stopped by a user) while it waited
    } catch (e) {
      return void this.#crashed(entry, `restart failed: ${(e as Error).message}`);
    }
    const prev = await readState(this.paths, entry.name);
    await this.#patch(entry.name, { restarts: (prev?.restarts ?? 0) + 1 });
    const ac = entry.ac;
    let ok = true;
    let message = "Started (no health check)";
    if (svc.health_check.type !== "none") {
      const check = await this.#pluginsFor(entry.cwd).check(svc.health_check.type);
      const r = await waitHealthy(
        {
          check,
          cfg: svc.health_check[svc.health_check.type],
          health: svc.health_check,
          service: svc.name,
          env: entry.env,
        },
        { deadlineMs: svc.startup.start_timeout * 1000, signal: ac.signal, maxDelayMs: 50 },
      );
      ok = r.healthy;
      message = r.result.message;
    }
    if (ac.signal.aborted) {
      // It died while we waited: #exited saw it in phase "restarting"; count it as another crash.
      if (this.#entries.get(entry.name) === entry && entry.phase === "restarting") {
        entry.ac = new AbortController();
        await this.#crashed(entry, `${describe(entry.lastExit)} during restart`);
      }
      return;
    }
    if (!ok) {
      entry.ac.abort();
      entry.ac = new AbortController();
      const driver = await this.#pluginsFor(entry.cwd).driver(svc.deployment.mode);
      await driver.stop(svc, this.#ctx(entry)).catch(() => {});
      return void this.#crashed(
        entry,
        `not healthy within start_timeout after restart: ${message}`,
      );
    }
    await this.#patch(entry.name, { status: "running", message: undefined });
    await this.#serviceLog(entry.name, `restarted, healthy (pid ${entry.pid})`);
    this.#running(entry);
  }

  /** The user stops the service: its exit is not a crash. */
  async #unwatch(name: string): Promise<void> {
    const e = this.#entries.get(name);
    if (e) e.ac.abort();
    await this.#forget(name);
  }

  async #forget(name: string): Promise<void> {
    this.#entries.delete(name);
    await rm(join(this.files.watchDir, `${safeName(name)}.json`), { force: true });
    this.#maybeIdle();
  }

  async #patch(name: string, patch: Partial<ServiceState>): Promise<void> {
    const prev = await readState(this.paths, name);
    if (!prev) return;
    await writeState(this.paths, { ...prev, ...patch });
    // Its process is gone: a PID file still naming it would make the next `status` report a
    // stale PID ("exited while unwatched") instead of this state's message.
    if ("pid" in patch && patch.pid === undefined && prev.pid) {
      if ((await readPid(this.paths, name).catch(() => undefined)) === prev.pid) {
        await removePid(this.paths, name);
      }
    }
  }

  async #homeExists(): Promise<boolean> {
    return await stat(this.paths.home).then(() => true, () => false);
  }

  /**
   * Every 10 s, on the same shared beat as 10 s health checks (one wake-up for both): is the
   * home still there, and does a log need rotating.
   */
  async #tickLoop(): Promise<void> {
    const signal = this.#stopping.signal;
    while (!signal.aborted) {
      await beat(ROTATE_EVERY_MS, signal);
      if (!signal.aborted) await this.#tick().catch((e) => this.log(`tick: ${e.message}`));
    }
  }

  async #tick(): Promise<void> {
    if (!(await this.#homeExists())) return void this.shutdown();
    for (const e of this.#entries.values()) {
      const logs = e.service.logs;
      if (!logs) continue;
      const file = logFile(this.paths, e.name);
      if (await rotateIfLarger(file, logs.max_size, logs.keep).catch(() => false)) {
        await this.#serviceLog(
          e.name,
          `log rotated (larger than ${logs.max_size} bytes; keeping ${logs.keep})`,
        );
      }
    }
  }

  /** Exit once nothing is left to watch (after a short grace for the next request). */
  #maybeIdle(): void {
    clearTimeout(this.#idleTimer);
    if (this.#entries.size > 0) return;
    this.#idleTimer = setTimeout(() => this.#entries.size === 0 && this.shutdown(), IDLE_EXIT_MS);
  }
}
