/**
 * Running one command of the `shell` driver: `/bin/sh -c <command>` in its own process group,
 * bounded by a timeout (the whole group is killed when it runs out), its output appended to
 * the service's log file — a real file descriptor, so a daemon the command leaves behind
 * holding stdout never keeps us waiting.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { spawn } from "node:child_process";
import { mkdir, open } from "node:fs/promises";
import { dirname } from "node:path";
import { createInterface } from "node:readline";

/** Where and how a command runs. */
export interface ShellOptions {
  cwd?: string;
  env: Record<string, string>;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Append stdout and stderr to this file (default: discard them). */
  log?: string;
  /** A line written to the log before the command runs. */
  banner?: string;
}

/** How a command ended. */
export interface ShellResult {
  /** Exit code; null when killed by a signal (then `timedOut` or `cancelled` say why). */
  code: number | null;
  timedOut: boolean;
  cancelled: boolean;
  /** The last lines the command wrote to the log (when logging). */
  tail: string[];
}

/** Run `command` to completion (or until the timeout or the signal kills its process group). */
export async function runShell(command: string, opts: ShellOptions): Promise<ShellResult> {
  let out;
  let offset = 0;
  if (opts.log) {
    await mkdir(dirname(opts.log), { recursive: true, mode: 0o700 });
    out = await open(opts.log, "a", 0o600);
    offset = (await out.stat()).size;
    if (opts.banner) {
      const line = `--- ${new Date().toISOString()} ${opts.banner}\n`;
      await out.write(line);
      offset += Buffer.byteLength(line);
    }
  }
  try {
    const child = spawn("/bin/sh", ["-c", command], {
      cwd: opts.cwd,
      env: opts.env,
      detached: true,
      stdio: ["ignore", out?.fd ?? "ignore", out?.fd ?? "ignore"],
    });
    const ended = bounded(child.pid, opts, () =>
      new Promise<number | null>((resolve, reject) => {
        child.once("error", reject);
        child.once("exit", (code) => resolve(code));
      }));
    const { value: code, timedOut, cancelled } = await ended;
    return { code, timedOut, cancelled, tail: opts.log ? await tail(opts.log, offset) : [] };
  } finally {
    await out?.close();
  }
}

/** The lines `command` prints on stdout, as they come, until it exits or the signal aborts. */
export async function* shellLines(
  command: string,
  opts: ShellOptions,
): AsyncGenerator<string> {
  const child = spawn("/bin/sh", ["-c", command], {
    cwd: opts.cwd,
    env: opts.env,
    detached: true,
    stdio: ["ignore", "pipe", "ignore"],
  });
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", () => resolve());
  });
  const stop = () => killGroup(child.pid);
  const timer = setTimeout(stop, opts.timeoutMs);
  opts.signal?.addEventListener("abort", stop, { once: true });
  try {
    yield* createInterface({ input: child.stdout, crlfDelay: Infinity });
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", stop);
    if (child.exitCode === null && child.signalCode === null) stop();
    child.stdout.destroy();
    await exited;
  }
}

/** Await `work` while a timer and the signal may kill the process group `pid`. */
async function bounded<T>(
  pid: number | undefined,
  opts: ShellOptions,
  work: () => Promise<T>,
): Promise<{ value: T; timedOut: boolean; cancelled: boolean }> {
  let timedOut = false;
  let cancelled = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(pid);
  }, opts.timeoutMs);
  const onAbort = () => {
    cancelled = true;
    killGroup(pid);
  };
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    return { value: await work(), timedOut, cancelled };
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onAbort);
  }
}

function killGroup(pid: number | undefined): void {
  if (!pid) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** The last non-empty lines written to `file` after `offset` (at most 3, each at most 300 chars). */
async function tail(file: string, offset: number): Promise<string[]> {
  const handle = await open(file, "r").catch(() => undefined);
  if (!handle) return [];
  try {
    const size = (await handle.stat()).size;
    const from = Math.max(offset, size - 16 * 1024);
    const buf = Buffer.alloc(Math.max(0, size - from));
    await handle.read(buf, 0, buf.length, from);
    return buf.toString("utf8").split("\n").map((l) => l.trim()).filter(Boolean).slice(-3)
      .map((l) => (l.length > 300 ? `${l.slice(0, 300)}…` : l));
  } finally {
    await handle.close();
  }
}
