/**
 * The state store: the only code that writes a service's state (`services/state/<name>.json`
 * and `services/pids/<name>.pid`). Drivers report facts (pid, start time, handle, exit); the
 * lifecycle and the supervisor turn them into named transitions here:
 *
 * ```
 *             ┌──────────── backoff ◄─────────┐ crash (restart policy)
 *             ▼                               │
 * stopped → starting ──► running ─────────────┤
 *    ▲         │            │                 │
 *    │         ▼            ▼                 ▼
 *    └──── stopping ◄───────┘               failed (with the reason)
 * ```
 *
 * Each transition checks that it is allowed from the recorded status (as supervisord's
 * `_assertInState`), and records when it happened, who made it and why. Reading is pure:
 * {@linkcode readState} never writes, moves or deletes anything (a corrupt file reads as no state
 * and is moved aside by the next transition).
 *
 * @module
 */
import { readFileSync, renameSync, rmSync } from "node:fs";
import { z } from "zod";
import type { ConfigHashes } from "../registry/config_hash.ts";
import type { ExitInfo, ServiceState, ServiceStatus, StatePaths } from "../types.ts";
import { diskError, ensureDirs, pidFile, stateFile, writeFileAtomic } from "./files.ts";

/** A transition that the recorded status does not allow: a bug in the caller, not a user error. */
export class StateTransitionError extends Error {
  override name = "StateTransitionError";
  constructor(service: string, from: ServiceStatus | "none", to: string) {
    super(`Cannot move "${service}" from ${from} to ${to}`);
  }
}

type From = ServiceStatus | "none";

/** Which recorded statuses each transition may leave from. */
const ALLOWED: Record<string, readonly From[]> = {
  starting: ["none", "stopped", "failed", "backoff", "starting"],
  running: ["starting", "running"],
  backoff: ["starting", "running", "backoff"],
  stopping: ["starting", "running", "backoff", "stopping", "failed", "stopped"],
  stopped: ["none", "starting", "running", "backoff", "stopping", "stopped", "failed"],
  failed: ["none", "stopped", "starting", "running", "backoff", "stopping", "failed"],
  /** A fact about a live service (its liveness message) or a process's exit: no status change. */
  note: ["starting", "running", "backoff", "stopping", "stopped", "failed"],
};

const stateSchema = z.object({
  name: z.string(),
  mode: z.string(),
  status: z.enum(["running", "stopped", "starting", "stopping", "backoff", "failed"]),
  pid: z.number().int().positive().optional(),
  pid_start: z.string().optional(),
  handle: z.record(z.string(), z.unknown()).optional(),
  started_at: z.string().optional(),
  stopped_at: z.string().optional(),
  restarts: z.number().int().nonnegative(),
  last_exit: z.object({
    code: z.number().nullable(),
    signal: z.string().nullable(),
    at: z.string(),
  }).optional(),
  message: z.string().optional(),
  since: z.string().optional(),
  by: z.string().optional(),
  next_attempt_at: z.string().optional(),
  last_log_lines: z.array(z.string()).optional(),
  config_hash: z.string().optional(),
  deployment_hash: z.string().optional(),
});

/** What {@linkcode readStateFile} found. */
type Read =
  | { kind: "none" }
  | { kind: "ok"; state: ServiceState }
  | { kind: "corrupt"; reason: string };

function readStateFile(paths: StatePaths, name: string): Read {
  let text: string;
  try {
    // Synchronous: a state file is a few hundred bytes on a local disk, and under Deno each
    // async fs call costs several times the CPU on the path of every start.
    text = readFileSync(stateFile(paths, name), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { kind: "none" };
    throw error;
  }
  try {
    const parsed = stateSchema.safeParse(JSON.parse(text));
    if (parsed.success && parsed.data.name === name) {
      return { kind: "ok", state: parsed.data as ServiceState };
    }
    return {
      kind: "corrupt",
      reason: parsed.success
        ? `it belongs to "${parsed.data.name}"`
        : parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`)
          .join("; "),
    };
  } catch (error) {
    return { kind: "corrupt", reason: (error as Error).message };
  }
}

/** Corrupt files already reported by this process (one warning each, not one per read). */
const reported = new Set<string>();

/** What `readState` does with a file it cannot understand. */
export interface ReadStateOptions {
  /** Told about a corrupt state file. Default: one `process.emitWarning` line per file. */
  onCorrupt?: (file: string, reason: string) => void;
}

/**
 * The recorded state of `name`, or undefined when there is none. A pure read: a corrupt file
 * reads as no state (reported once), and is left where it is until the next transition moves it
 * aside to `<name>.json.corrupt`.
 */
export function readState(
  paths: StatePaths,
  name: string,
  opts: ReadStateOptions = {},
): Promise<ServiceState | undefined> {
  try {
    const r = readStateFile(paths, name);
    if (r.kind === "ok") return Promise.resolve(r.state);
    if (r.kind === "corrupt") {
      const file = stateFile(paths, name);
      if (opts.onCorrupt) opts.onCorrupt(file, r.reason);
      else if (!reported.has(file)) {
        reported.add(file);
        process.emitWarning(`Ignoring corrupt state file "${file}": ${r.reason}`);
      }
    }
    return Promise.resolve(undefined);
  } catch (error) {
    return Promise.reject(error);
  }
}

/** The PID recorded for `name`, or undefined when there is no (readable, numeric) PID file. */
export function readPid(paths: StatePaths, name: string): Promise<number | undefined> {
  try {
    const text = readFileSync(pidFile(paths, name), "utf8").trim();
    const pid = Number(text);
    return Promise.resolve(
      /^\d+$/.test(text) && pid > 0 && Number.isSafeInteger(pid) ? pid : undefined,
    );
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return Promise.resolve(undefined);
    return Promise.reject(error);
  }
}

/** Facts of a start, from the driver's handle. */
export interface StartFacts {
  pid?: number;
  pid_start?: string;
  handle?: Record<string, unknown>;
  started_at?: string;
  /** Count this start as a restart (the supervisor's recoveries). */
  restart?: boolean;
  /** The configuration it starts with (`config_hash`, `deployment_hash`). */
  config?: ConfigHashes;
}

/** Facts of a failure. */
export interface FailFacts {
  exit?: ExitInfo;
  last_log_lines?: string[];
  /** The deployment mode, for a service that has no record yet. */
  mode?: string;
}

/**
 * The writer of service state for one home. `by` names who makes the transitions
 * (`cli 1234`, `supervisor 99`); it is recorded with each of them.
 */
export class StateStore {
  readonly paths: StatePaths;
  readonly by: string;

  /** Transitions the disk refused, by service: the truth until {@linkcode flush} writes them. */
  #pending = new Map<string, { prev?: ServiceState; next: ServiceState }>();
  #onDiskError?: (error: Error) => void;

  /**
   * `onDiskError`: keep a transition the disk refuses (full, read-only, no permission) in
   * memory instead of throwing — later transitions build on it, `flush()` retries the writes —
   * and tell this callback (the supervisor, which must outlive a full disk).
   */
  constructor(
    paths: StatePaths,
    opts: { by?: string; onDiskError?: (error: Error) => void } = {},
  ) {
    this.paths = paths;
    this.by = opts.by ?? `cli ${process.pid}`;
    this.#onDiskError = opts.onDiskError;
  }

  /** How many services have a transition waiting to be written. */
  get unwritten(): number {
    return this.#pending.size;
  }

  /** Retry the writes the disk refused; true when none is left. */
  async flush(): Promise<boolean> {
    for (const [name, { prev, next }] of [...this.#pending]) {
      if (this.#pending.get(name)?.next !== next) continue;
      await this.#write(prev, next);
    }
    return this.#pending.size === 0;
  }

  /** The recorded state, or the transition waiting to be written. */
  #current(name: string): Read {
    const pending = this.#pending.get(name);
    return pending ? { kind: "ok", state: pending.next } : readStateFile(this.paths, name);
  }

  /** The recorded state (a pure read). */
  read(name: string): Promise<ServiceState | undefined> {
    return readState(this.paths, name);
  }

  /** A process was launched for `name` (or, without a pid, the start began). */
  starting(name: string, mode: string, facts: StartFacts = {}): Promise<ServiceState> {
    return this.#move(name, "starting", (prev) => ({
      name,
      mode,
      status: "starting",
      ...(facts.pid ? { pid: facts.pid, pid_start: facts.pid_start } : {}),
      ...(facts.handle ? { handle: facts.handle } : prev?.handle ? { handle: prev.handle } : {}),
      started_at: facts.started_at ?? now(),
      restarts: (prev?.restarts ?? 0) + (facts.restart ? 1 : 0),
      ...(prev?.last_exit ? { last_exit: prev.last_exit } : {}),
      ...facts.config,
    }));
  }

  /** It became ready (its check passed, or it has none and is alive). */
  running(name: string): Promise<ServiceState> {
    return this.#move(name, "running", (prev) => ({ ...fresh(prev!), status: "running" }));
  }

  /** It crashed and waits `delayMs` for its next restart (restart `attempt` in a row). */
  backoff(
    name: string,
    o: { message: string; delayMs: number; exit?: ExitInfo },
  ): Promise<ServiceState> {
    return this.#move(name, "backoff", (prev) => ({
      ...gone(prev!),
      status: "backoff",
      message: o.message,
      next_attempt_at: new Date(Date.now() + o.delayMs).toISOString(),
      ...(o.exit ? { last_exit: stamp(o.exit) } : {}),
    }));
  }

  /** A stop began (its process is still on record). */
  stopping(name: string): Promise<ServiceState> {
    return this.#move(name, "stopping", (prev) => ({ ...fresh(prev!), status: "stopping" }));
  }

  /** It is stopped: nothing of it runs. `message` says why when it was not a plain stop. */
  stopped(name: string, mode: string, o: { exit?: ExitInfo; message?: string } = {}) {
    return this.#move(name, "stopped", (prev) => ({
      ...gone(prev ?? { name, mode, status: "stopped", restarts: 0 }),
      status: "stopped",
      stopped_at: now(),
      ...(o.message ? { message: o.message } : {}),
      ...(o.exit ? { last_exit: stamp(o.exit) } : {}),
    }));
  }

  /** It failed: nothing of it runs, and `message` is the reason. */
  failed(name: string, message: string, facts: FailFacts = {}): Promise<ServiceState> {
    return this.#move(name, "failed", (prev) => ({
      ...gone(prev ?? { name, mode: facts.mode ?? "unknown", status: "failed", restarts: 0 }),
      status: "failed",
      message,
      stopped_at: now(),
      ...(facts.exit ? { last_exit: stamp(facts.exit) } : {}),
      ...(facts.last_log_lines?.length ? { last_log_lines: facts.last_log_lines } : {}),
    }));
  }

  /** How its process `pid` ended (recorded by whoever saw it end); the status is unchanged. */
  exited(name: string, pid: number | undefined, exit: ExitInfo): Promise<ServiceState | undefined> {
    return this.#note(
      name,
      (prev) =>
        pid && prev.pid && prev.pid !== pid ? undefined : { ...prev, last_exit: stamp(exit) },
    );
  }

  /** The word on a live service (`Unhealthy: ...`), or none; the status is unchanged. */
  note(name: string, message: string | undefined): Promise<ServiceState | undefined> {
    return this.#note(name, (prev) => {
      if (prev.message === message) return undefined;
      const { message: _, ...rest } = prev;
      return message ? { ...rest, message } : rest;
    });
  }

  /**
   * It runs under `config` now: a reload applied settings that need no restart. The status is
   * unchanged; nothing when it has no record.
   */
  configured(name: string, config: ConfigHashes): Promise<ServiceState | undefined> {
    return this.#note(
      name,
      (prev) =>
        prev.config_hash === config.config_hash && prev.deployment_hash === config.deployment_hash
          ? undefined
          : { ...prev, ...config },
    );
  }

  /**
   * A driver fact of the live start `pid` changed (its log writer was replaced): `patch` is
   * merged into its `handle`; the status is unchanged. Nothing when another start runs now.
   */
  handle(
    name: string,
    pid: number,
    patch: Record<string, unknown>,
  ): Promise<ServiceState | undefined> {
    return this.#note(
      name,
      (prev) => prev.pid === pid ? { ...prev, handle: { ...prev.handle, ...patch } } : undefined,
    );
  }

  #note(
    name: string,
    change: (prev: ServiceState) => ServiceState | undefined,
  ): Promise<ServiceState | undefined> {
    const r = this.#current(name);
    if (r.kind !== "ok") return Promise.resolve(undefined);
    const next = change(r.state);
    if (!next) return Promise.resolve(r.state);
    return this.#write(r.state, next).then(() => next);
  }

  async #move(
    name: string,
    to: ServiceStatus,
    build: (prev: ServiceState | undefined) => ServiceState,
  ): Promise<ServiceState> {
    const r = this.#current(name);
    const prev = r.kind === "ok" ? r.state : undefined;
    const from: From = prev?.status ?? "none";
    if (!ALLOWED[to].includes(from)) throw new StateTransitionError(name, from, to);
    if (r.kind === "corrupt") {
      // Kept for inspection, out of the way of this write.
      const file = stateFile(this.paths, name);
      try {
        renameSync(file, `${file}.corrupt`);
      } catch { /* gone meanwhile */ }
    }
    const next: ServiceState = { ...build(prev), since: now(), by: this.by };
    await this.#write(prev, next);
    return next;
  }

  /** Write the state file, then make the PID file agree with it. */
  async #write(prev: ServiceState | undefined, next: ServiceState): Promise<void> {
    try {
      await this.#writeFiles(prev, next);
      if (this.#pending.get(next.name)?.next === next) this.#pending.delete(next.name);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (!this.#onDiskError || !code || !DISK_CODES.has(code)) throw error;
      const first = this.#pending.get(next.name)?.prev ?? prev;
      this.#pending.set(next.name, { prev: first, next });
      this.#onDiskError(error as Error);
    }
  }

  async #writeFiles(prev: ServiceState | undefined, next: ServiceState): Promise<void> {
    const text = JSON.stringify(next, null, 2) + "\n";
    await writeCreatingDirs(this.paths, stateFile(this.paths, next.name), text);
    if (next.pid && next.pid !== prev?.pid) {
      await writeCreatingDirs(this.paths, pidFile(this.paths, next.name), `${next.pid}\n`);
    } else if (!next.pid) {
      // Its process is gone: a PID file still naming a pid would be a stale record.
      try {
        rmSync(pidFile(this.paths, next.name), { force: true });
      } catch (error) {
        throw diskError(error, pidFile(this.paths, next.name));
      }
    }
  }
}

/** `state` without a process and without the reason of its previous status. */
function gone(state: ServiceState): ServiceState {
  const { pid: _p, pid_start: _s, ...rest } = fresh(state);
  return rest;
}

/** `state` without the reason of its previous status (a new status brings its own). */
function fresh(state: ServiceState): ServiceState {
  const { message: _m, next_attempt_at: _n, last_log_lines: _l, ...rest } = state;
  return rest;
}

const now = () => new Date().toISOString();

/** Errno codes of a disk that refuses writes (see `diskError` in files.ts). */
const DISK_CODES = new Set(["ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM"]);

function stamp(exit: ExitInfo): ServiceState["last_exit"] {
  return { code: exit.code, signal: exit.signal, at: now() };
}

async function writeCreatingDirs(paths: StatePaths, file: string, data: string): Promise<void> {
  try {
    await writeFileAtomic(file, data);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    await ensureDirs(paths, { force: true });
    await writeFileAtomic(file, data);
  }
}
