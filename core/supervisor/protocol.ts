/**
 * The supervisor's protocol: the typed requests the CLI sends over `run/supervisor.sock`, their
 * replies, and the paths of the supervisor's own files. Shared by the client and the daemon.
 *
 * @module
 */
import { join } from "node:path";
import type { Service, StatePaths } from "../types.ts";

/** What the supervisor keeps of a watched service (also `run/watch/<name>.json`). */
export interface WatchSpec {
  service: Service;
  env: Record<string, string | undefined>;
  /** The directory the registry's relative paths resolve against. */
  cwd: string;
  /** Built-in plugins the registry lets plugin files override (`[plugins] override`). */
  overrides?: string[];
}

/** Every request, by `op`. */
export type Request =
  | { op: "ping" }
  | { op: "status" }
  | ({ op: "start" } & WatchSpec)
  | ({ op: "adopt" } & WatchSpec)
  /** New settings of a watched service whose deployment did not change (`platform reload`). */
  | ({ op: "update" } & WatchSpec)
  | { op: "settle" }
  | { op: "ready"; name: string }
  | { op: "unwatch"; name: string }
  | { op: "shutdown" };

/** One watched service in a `status` reply. */
export interface WatchedService {
  name: string;
  phase: string;
  pid?: number;
  streak: number;
}

/** The reply to each request, by `op`. */
export interface Replies {
  ping: { ok: true; pid: number; watching: string[] };
  status: {
    ok: true;
    pid: number;
    /** Bytes: resident set, and the JS heap used / reserved. */
    memory?: { rss: number; heap_used: number; heap_total: number };
    services: WatchedService[];
  };
  start: { ok: boolean; pid?: number; error?: string; exit_code?: number };
  adopt: { ok: boolean; error?: string };
  /** `watched`: false when the service was not watched (nothing was updated). */
  update: { ok: true; watched: boolean };
  settle: { ok: true };
  ready: { ok: boolean };
  unwatch: { ok: true };
  shutdown: { ok: true };
}

/** A failed request's reply (any `op`). */
export interface ErrorReply {
  ok: false;
  error: string;
  exit_code?: number;
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
