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
 * This module is the daemon: it claims the home, serves `run/supervisor.sock` (`protocol.ts`),
 * routes requests, polls the PIDs of services that are not its children, rotates logs, compacts
 * its heap and exits when idle. Each service's own state machine is a `Watcher` (`watcher.ts`).
 * The CLI talks to it through `client.ts` and works without it.
 *
 * @module
 */
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { closeSync, readFileSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { chmod } from "node:fs/promises";
import { type Listener, serve } from "../runtime/ipc.ts";
import { beat } from "../sleep.ts";
import { rotateIfLarger } from "../state/rotate.ts";
import {
  type LogBound,
  type LogWriter,
  logWriterAlive,
  respawnLogWriter,
} from "../process/log_writer.ts";
import { PluginRegistry } from "../plugins/registry.ts";
import { isAlive, parseProcStat, processStartTime } from "../process/identity.ts";
import {
  ensureDirs,
  logFile,
  openAppend,
  safeName,
  stateFileKey,
  statePaths,
  writeFileAtomic,
} from "../state/files.ts";
import { appendEvent, onJournalError } from "../state/journal.ts";
import { readState, StateStore } from "../state/store.ts";
import type { StatePaths } from "../types.ts";
import { type Request, supervisorFiles, type WatchSpec } from "./protocol.ts";
import { Watcher, type WatcherHost } from "./watcher.ts";

export { supervisorFiles };
export type { WatchSpec };

const LIVENESS_POLL_MS = 1_000;
const ROTATE_EVERY_MS = 10_000;
/**
 * Every this many ticks (60 s) a log writer found alive before is looked at in full again (the
 * state naming it unchanged, its PID with its start time); in between, that its PID exists.
 */
const WRITER_VERIFY_TICKS = 6;
const IDLE_EXIT_MS = 2_000;
const COMPACT_AFTER_MS = 2_000;

/** One incarnation of a service whose PID is polled (it is not our child). */
interface Polled {
  watcher: Watcher;
  signal: AbortSignal;
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

/** Whether a process `pid` exists (a zombie too): one `kill(pid, 0)`. */
function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The supervisor daemon. `run()` returns when it shuts down. */
export class Supervisor implements WatcherHost {
  readonly paths: StatePaths;
  readonly files: ReturnType<typeof supervisorFiles>;
  readonly store: StateStore;
  #watchers = new Map<string, Watcher>();
  /** Services that are not our children, whose PIDs `#pollTick` checks every second. */
  #polled = new Set<Polled>();
  #poller?: ReturnType<typeof setInterval>;
  /** Log writers found alive by the last tick, with the key of the state file naming them. */
  #writersSeen = new Map<string, { key: string; writer: LogWriter }>();
  #ticks = 0;
  /** Per service: the tail of its start / restart / adopt / unwatch queue (see `serial`). */
  #queue = new Map<string, Promise<void>>();
  #plugins = new Map<string, PluginRegistry>();
  #server?: Listener;
  #idleTimer?: ReturnType<typeof setTimeout>;
  #compactTimer?: ReturnType<typeof setTimeout>;
  /** Ends the rotation loop at shutdown. */
  #stopping = new AbortController();
  #done!: () => void;
  #env: Record<string, string | undefined>;
  #diskErrorLoggedAt = 0;
  /** The inode of the socket we listen on (another supervisor's socket is not ours to remove). */
  #socketIno?: number;

  constructor(home: string, env: Record<string, string | undefined> = process.env) {
    this.paths = statePaths(home);
    this.files = supervisorFiles(this.paths);
    // A full or read-only disk must not end supervision: transitions stay in memory and are
    // written again every tick; the problem is logged once a minute.
    this.store = new StateStore(this.paths, {
      by: `supervisor ${process.pid}`,
      onDiskError: (e) => {
        if (Date.now() - this.#diskErrorLoggedAt < 60_000) return;
        this.#diskErrorLoggedAt = Date.now();
        this.log(`cannot write service state (kept in memory, retried every 10 s): ${e.message}`);
      },
    });
    this.#env = env;
    // Like the state: a journal the disk refuses is skipped, and said in our log once a minute.
    onJournalError((e) => this.log(`cannot append to the event journal (skipped): ${e.message}`));
  }

  /** Claim the home (one supervisor each), serve the socket, re-adopt, run until idle. */
  async run(): Promise<void> {
    await ensureDirs(this.paths);
    await mkdir(this.files.watchDir, { recursive: true, mode: 0o700 });
    if (!(await this.#claim())) return;
    const stopped = new Promise<void>((resolve) => (this.#done = resolve));
    await rm(this.files.socket, { force: true });
    this.#server = await serve(this.files.socket, (msg) => this.#handle(msg as Request));
    await chmod(this.files.socket, 0o600);
    this.#socketIno = statSync(this.files.socket).ino;
    for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => this.shutdown());
    this.#tickLoop();
    this.log(`supervisor ${process.pid} serving ${this.files.socket}`);
    await this.#readopt();
    this.#maybeIdle();
    await stopped;
  }

  /** Stop watching everything (services keep running) and exit. */
  async shutdown(): Promise<void> {
    for (const w of this.#watchers.values()) w.ac.abort();
    this.#stopping.abort();
    clearInterval(this.#poller);
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#compactTimer);
    await this.#server?.close();
    // Only our own socket: a supervisor that lost its home must not unlink its successor's.
    const ino = await stat(this.files.socket).then((s) => s.ino, () => undefined);
    if (ino !== undefined && ino === this.#socketIno) await rm(this.files.socket, { force: true });
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
  serviceLog(name: string, line: string): Promise<void> {
    this.log(`${name}: ${line}`);
    try {
      const fd = openAppend(logFile(this.paths, name));
      try {
        writeSync(fd, `--- ${new Date().toISOString()} supervisor: ${line}\n`);
      } finally {
        closeSync(fd);
      }
    } catch { /* a log we cannot write is not worth a crash */ }
    return Promise.resolve();
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

  plugins(spec: WatchSpec): PluginRegistry {
    const overrides = spec.overrides ?? [];
    const key = `${spec.cwd}\0${overrides.join(",")}`;
    let p = this.#plugins.get(key);
    if (!p) {
      p = PluginRegistry.discover({ cwd: spec.cwd, home: this.paths.home, env: this.#env });
      p.allowOverrides(overrides);
      this.#plugins.set(key, p);
    }
    return p;
  }

  async #handle(msg: Request): Promise<Record<string, unknown>> {
    if (msg.op === "status") {
      // Read-only: it must not keep an idle supervisor alive (`watch supervisor status`).
      const mem = process.memoryUsage();
      return {
        ok: true,
        pid: process.pid,
        memory: { rss: mem.rss, heap_used: mem.heapUsed, heap_total: mem.heapTotal },
        services: [...this.#watchers.values()].map((w) => ({
          name: w.name,
          phase: w.phase,
          pid: w.pid,
          streak: w.streak,
        })),
      };
    }
    clearTimeout(this.#idleTimer);
    try {
      switch (msg.op) {
        case "ping":
          return { ok: true, pid: process.pid, watching: [...this.#watchers.keys()] };
        case "start": {
          const { op: _, ...spec } = msg;
          return { ok: true, ...(await this.serial(spec.service.name, () => this.#start(spec))) };
        }
        case "adopt": {
          const { op: _, ...spec } = msg;
          await this.serial(spec.service.name, () => this.#adopt(spec, "running"));
          return { ok: true };
        }
        case "update": {
          const { op: _, ...spec } = msg;
          return {
            ok: true,
            watched: await this.serial(spec.service.name, () => this.#update(spec)),
          };
        }
        case "settle":
          // Let every start, restart and unwatch in flight finish (their processes are then on
          // record in the state files): a stop plans from settled state.
          await Promise.all([...this.#queue.values()]);
          return { ok: true };
        case "ready": {
          const w = this.#watchers.get(String(msg.name));
          if (w && w.phase === "starting") w.running();
          return { ok: !!w };
        }
        case "unwatch":
          await this.serial(String(msg.name), () => this.#unwatch(String(msg.name)));
          return { ok: true };
        case "shutdown":
          setTimeout(() => this.shutdown(), 10);
          return { ok: true };
        default:
          return {
            ok: false,
            error: `Unknown supervisor request "${(msg as { op?: string }).op}"`,
          };
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
   * does, but at a time of our choosing; the reducer itself is off (see `runtime/self.ts`). A
   * no-op where the runtime exposes no `gc()`.
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
  serial<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const next = (this.#queue.get(name) ?? Promise.resolve()).then(fn);
    const tail = next.then(() => {}, () => {});
    this.#queue.set(name, tail);
    tail.then(() => this.#queue.get(name) === tail && this.#queue.delete(name));
    return next;
  }

  /** Start a service as our child (the CLI waits for it to become healthy, then says "ready"). */
  async #start(spec: WatchSpec): Promise<{ pid?: number }> {
    const name = safeName(spec.service.name);
    const old = this.#watchers.get(name);
    if (old?.pid && old.phase !== "backoff" && (await isAlive(old.pid, old.pidStart))) {
      // Started already (by a CLI killed before it saw the process on record, or a restart):
      // the caller waits for this process instead of spawning a second one.
      return { pid: old.pid };
    }
    if (old) old.ac.abort();
    const w = new Watcher(this, spec, "starting");
    w.streak = old?.streak ?? 0;
    this.#watchers.set(name, w);
    const watchFile = writeFileAtomic(
      join(this.files.watchDir, `${name}.json`),
      JSON.stringify(spec),
    );
    try {
      // The watch file is written while the service spawns: both are on the start's critical path.
      await Promise.all([w.spawn(), watchFile]);
    } catch (e) {
      await watchFile.catch(() => {});
      this.#watchers.delete(name);
      await rm(join(this.files.watchDir, `${name}.json`), { force: true });
      throw e;
    }
    return { pid: w.pid };
  }

  /** Watch a service that already runs (re-adoption, or started before the supervisor). */
  async #adopt(spec: WatchSpec, phase: Watcher["phase"]): Promise<void> {
    const name = safeName(spec.service.name);
    const known = this.#watchers.get(name);
    if (known) {
      // Its starter died before saying "ready"; the CLI that found it healthy says so now.
      if (known.phase === "starting" && phase === "running") known.running();
      return;
    }
    const driver = await this.plugins(spec).driver(spec.service.deployment.mode);
    if (driver.capabilities?.supervision === "observe") {
      // It runs elsewhere: watch whether it answers, never restart it.
      const w = new Watcher(this, spec, "running");
      this.#watchers.set(name, w);
      await writeFileAtomic(join(this.files.watchDir, `${name}.json`), JSON.stringify(spec));
      w.observe();
      return;
    }
    const state = await readState(this.paths, name);
    const w = new Watcher(this, spec, phase);
    w.pid = state?.pid;
    w.pidStart = state?.pid_start;
    if (!w.pid) {
      // No usable record, but its driver may still find it (by its cgroup or marker).
      const ctx = { paths: this.paths, env: spec.env, cwd: spec.cwd };
      const rt = await driver.status(spec.service, ctx).catch(() => undefined);
      if (rt?.status === "running" && rt.pid) {
        w.pid = rt.pid;
        w.pidStart = await processStartTime(rt.pid);
        // Record what was found, so its crashes and restarts have a record to move.
        const mode = spec.service.deployment.mode;
        await this.store.starting(name, mode, { pid: w.pid, pid_start: w.pidStart });
        await this.store.running(name);
      }
    }
    w.startedAt = state?.started_at ? Date.parse(state.started_at) : Date.now();
    this.#watchers.set(name, w);
    await writeFileAtomic(join(this.files.watchDir, `${name}.json`), JSON.stringify(spec));
    if (!w.pid || !(await isAlive(w.pid, w.pidStart))) {
      // It died while nobody watched: status says so; the next start brings it back.
      const message = `Process ${w.pid ?? "?"} exited while no supervisor watched it`;
      if (state && state.status !== "stopped" && state.status !== "failed") {
        await this.store.failed(name, message);
      }
      await this.serviceLog(name, message);
      void appendEvent(this.paths, {
        type: "crashed",
        service: name,
        by: "supervisor",
        text: `crashed: ${message}`,
        ...(w.pid ? { pid: w.pid } : {}),
      });
      await this.forget(name);
      return;
    }
    this.poll(w, w.ac.signal);
    if (phase === "running") w.running();
  }

  /**
   * New settings of a watched service whose deployment is unchanged (`platform reload`): the
   * watcher takes them without touching the process. False when it is not watched.
   */
  async #update(spec: WatchSpec): Promise<boolean> {
    const name = safeName(spec.service.name);
    const w = this.#watchers.get(name);
    if (!w) return false;
    await w.update(spec);
    await writeFileAtomic(join(this.files.watchDir, `${name}.json`), JSON.stringify(spec));
    await this.serviceLog(name, "new settings from the registry (reload); the process runs on");
    return true;
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
  poll(watcher: Watcher, signal: AbortSignal): void {
    const polled: Polled = { watcher, signal, pid: watcher.pid };
    this.#polled.add(polled);
    signal.addEventListener("abort", () => this.#polled.delete(polled), { once: true });
    this.#poller ??= setInterval(
      () => this.#pollTick().catch((e) => this.log(`poll: ${(e as Error).message}`)),
      LIVENESS_POLL_MS,
    );
  }

  async #pollTick(): Promise<void> {
    for (const p of this.#polled) {
      if (p.signal.aborted) {
        this.#polled.delete(p);
        continue;
      }
      const start = p.watcher.pidStart;
      if (p.pid && (aliveNow(p.pid, start) ?? (await isAlive(p.pid, start)))) continue;
      this.#polled.delete(p);
      if (!p.signal.aborted && this.#watchers.get(p.watcher.name) === p.watcher) {
        await p.watcher.exited(p.pid, undefined);
      }
    }
    if (this.#polled.size === 0) {
      clearInterval(this.#poller);
      this.#poller = undefined;
    }
  }

  /** The user stops the service: its exit is not a crash. */
  async #unwatch(name: string): Promise<void> {
    const w = this.#watchers.get(name);
    if (w) w.ac.abort();
    await this.forget(name);
  }

  async forget(name: string): Promise<void> {
    this.#watchers.delete(name);
    await rm(join(this.files.watchDir, `${safeName(name)}.json`), { force: true });
    this.#maybeIdle();
  }

  stillOurs(): boolean {
    try {
      if (!readFileSync(this.files.pid, "utf8").startsWith(`${process.pid} `)) return false;
      return statSync(this.files.socket).ino === this.#socketIno;
    } catch {
      return false; // the home, its claim or its socket is gone
    }
  }

  /**
   * Every 10 s, on the same shared beat as 10 s health checks (one wake-up for both): is the
   * home still ours (there, claimed by us, our socket), and does a log need rotating.
   */
  async #tickLoop(): Promise<void> {
    const signal = this.#stopping.signal;
    while (!signal.aborted) {
      await beat(ROTATE_EVERY_MS, signal);
      if (!signal.aborted) await this.#tick().catch((e) => this.log(`tick: ${e.message}`));
    }
  }

  async #tick(): Promise<void> {
    if (!this.stillOurs()) return void this.shutdown();
    this.#ticks++;
    if (this.store.unwritten && (await this.store.flush())) {
      this.log("service state written again: the disk takes writes");
    }
    for (const name of this.#writersSeen.keys()) {
      if (!this.#watchers.has(name)) this.#writersSeen.delete(name);
    }
    for (const w of this.#watchers.values()) {
      const logs = w.service.logs;
      if (!logs) continue;
      const file = logFile(this.paths, w.name);
      if (await this.#logWriterKept(w.name, file, logs)) continue;
      if (await rotateIfLarger(file, logs.max_size, logs.keep).catch(() => false)) {
        await this.serviceLog(
          w.name,
          `log rotated (larger than ${logs.max_size} bytes; keeping ${logs.keep})`,
        );
      }
    }
  }

  /**
   * Whether a log writer keeps `name`'s log within its bound (then it is not rotated here: a
   * truncation under the writer would cut its count). A running service whose writer is gone
   * (killed) gets a new one: the service waits on its full FIFO until then, losing nothing.
   */
  async #logWriterKept(name: string, file: string, bound: LogBound): Promise<boolean> {
    // The writer this found last time, while the state naming it is unchanged and it lives
    // (its PID with its start time): no state read, no look at its environment. A thousand
    // services made these reads a third of the idle supervisor's CPU; and then the stat and the
    // /proc read of each were half of it (35 and 44 us under Deno): between full looks every
    // minute, one kill(pid, 0). Were the writer's PID taken by another process meanwhile, a
    // killed writer is found within that minute instead of ten seconds (its service waits on
    // its full FIFO, losing nothing); a restart's new writer is found once the old one has ended.
    const seen = this.#writersSeen.get(name);
    if (seen && this.#ticks % WRITER_VERIFY_TICKS !== 0 && pidExists(seen.writer.pid)) return true;
    const key = stateFileKey(this.paths, name);
    const { pid, start } = seen?.writer ?? {};
    if (
      seen && key && seen.key === key && pid &&
      (aliveNow(pid, start) ?? (await isAlive(pid, start)))
    ) {
      return true;
    }
    this.#writersSeen.delete(name);
    const st = await readState(this.paths, name);
    const writer = st?.handle?.log_writer as LogWriter | undefined;
    if (!writer) return false;
    if (await logWriterAlive(writer, file)) {
      if (key && writer.start) this.#writersSeen.set(name, { key, writer });
      return true;
    }
    if (st?.status !== "running" || !st.pid || !(await isAlive(st.pid, st.pid_start))) return true;
    const next = await respawnLogWriter(this.paths, name, file, bound);
    await this.store.handle(name, st.pid, { log_writer: next });
    await this.serviceLog(name, `log writer ${writer.pid} was gone: pid ${next.pid} reads on`);
    return true;
  }

  /** Exit once nothing is left to watch (after a short grace for the next request). */
  #maybeIdle(): void {
    clearTimeout(this.#idleTimer);
    if (this.#watchers.size > 0) return;
    this.#idleTimer = setTimeout(() => this.#watchers.size === 0 && this.shutdown(), IDLE_EXIT_MS);
  }
}
