/**
 * The log writer of a service: a tiny process (POSIX `sh` with GNU `head` and `stdbuf`, well
 * under a MiB) that owns the way from a service's stdout and stderr to `services/logs/<name>.log` and rotates
 * that file by bytes written, as supervisord and PM2 do — so at any moment the service's logs
 * stay within `max_size × (keep + 1)` (the few `---` lines the CLI and the supervisor append
 * themselves come on top), supervised or not, at any write rate.
 *
 * The service writes into a FIFO (`run/logs/<name>.pipe`). Its stdout and stderr are that FIFO
 * opened read-write, so the service itself holds a read end: a writer that dies (even `kill -9`)
 * never costs the service a SIGPIPE. The FIFO then fills and the service waits on its next write
 * until a new writer reads the FIFO again ({@linkcode respawnLogWriter}, which the
 * supervisor runs for the services it watches), and nothing is lost. A writer reads with
 * `head -c <room>`, which takes exactly the bytes that fit, then renames `.log` → `.log.1` (and
 * `.1` → `.2` … up to `keep`): no copy, no truncation, no lost lines. It ends when the service
 * and everything it forked have closed the FIFO, after writing what they wrote last.
 *
 * Where `head` or `stdbuf` is not GNU's (busybox reads ahead through stdio and would drop bytes), the
 * writer appends with `cat` and the size is kept by the supervisor's periodic rotation instead.
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { closeSync, constants, lstatSync, mkdirSync, openSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import type { StatePaths } from "../types.ts";
import { isAlive, processStartTime } from "./identity.ts";
import { tagOf } from "./tree.ts";

/** Set in a log writer's environment to the log file it writes (finds it, proves it ours). */
export const LOG_WRITER_VARIABLE = "PROVISIONING_LOG_WRITER";

/**
 * The writer, `sh -c SCRIPT log-writer <log> <max> <keep>`, its stdin the FIFO. `head -c N` reads at most N
 * bytes (GNU reads with `read(2)` of the bytes still wanted), and `stdbuf -o0` has it write
 * each read at once (not when its stdio buffer fills), so a file is never longer than
 * `max`; `head` ending short means end of input (or a note appended meanwhile: then one more
 * round reads nothing and ends). A write that fails (disk full) loses what that `head` had read,
 * and is tried again a second later.
 */
const SCRIPT = `
log=$1 max=$2 keep=$3
case $(head --version 2>/dev/null; stdbuf --version 2>/dev/null) in
  *GNU*GNU*) ;;
  *) exec cat >>"$log" ;;
esac
size() { stat -c %s "$log" 2>/dev/null || echo 0; }
rotate() {
  if [ "$keep" -eq 0 ]; then : >"$log"; return; fi
  i=$keep
  while [ "$i" -gt 1 ]; do
    j=$((i - 1)); [ -e "$log.$j" ] && mv -f "$log.$j" "$log.$i"; i=$j
  done
  mv -f "$log" "$log.1"
}
while :; do
  room=$((max - $(size)))
  if [ "$room" -le 0 ]; then rotate; continue; fi
  if stdbuf -o0 head -c "$room" >>"$log"; then
    [ "$(size)" -lt "$max" ] && exit 0
  else
    sleep 1
  fi
done
`;

/** The size bound of a service's logs: `[services.X.logs]`. */
export interface LogBound {
  max_size: number;
  keep: number;
}

/** The FIFO a service of `paths` named `name` writes its output into. */
export function logPipe(paths: StatePaths, name: string): string {
  return join(paths.run, "logs", `${name}.pipe`);
}

/** The FIFO, made (mode 0600, in a 0700 folder) where it is missing or is not a FIFO. */
function ensurePipe(paths: StatePaths, name: string): string {
  const fifo = logPipe(paths, name);
  try {
    if (lstatSync(fifo).isFIFO()) return fifo;
    unlinkSync(fifo); // a file or a link where our FIFO belongs is never written through
  } catch { /* missing */ }
  mkdirSync(join(paths.run, "logs"), { recursive: true, mode: 0o700 });
  const r = spawnSync("mkfifo", ["-m", "600", fifo], { stdio: ["ignore", "ignore", "pipe"] });
  if (r.status !== 0) {
    throw new Error(`cannot make the log pipe ${fifo}: ${r.error?.message ?? r.stderr}`.trim());
  }
  return fifo;
}

/** A writer's PID and start time, as recorded in the service's state. */
export interface LogWriter {
  pid: number;
  start: string;
}

/**
 * Start a writer into `log` reading the FIFO `fifo`; returns it and the FIFO opened read-write.
 * The read-write open comes first: it never blocks (Linux), and with it held the read-only open
 * for the writer cannot block either, nor can the writer see the end of input before the service
 * has the FIFO.
 */
async function spawnWriter(
  fifo: string,
  log: string,
  bound: LogBound,
  home: string,
): Promise<{ writer: LogWriter; fd: number }> {
  const fd = openSync(fifo, constants.O_RDWR | constants.O_NOFOLLOW);
  let input: number | undefined;
  try {
    input = openSync(fifo, constants.O_RDONLY | constants.O_NOFOLLOW);
    return { writer: await spawnReading(input, log, bound, home), fd };
  } catch (error) {
    closeSync(fd);
    throw error;
  } finally {
    if (input !== undefined) closeSync(input);
  }
}

async function spawnReading(
  input: number,
  log: string,
  bound: LogBound,
  home: string,
): Promise<LogWriter> {
  const child = spawn(
    "/bin/sh",
    ["-c", SCRIPT, "log-writer", log, String(bound.max_size), String(bound.keep)],
    {
      detached: true, // its own session: a Ctrl+C of the CLI or a stop of the group spares it
      stdio: [input, "ignore", "ignore"],
      env: {
        PATH: "/usr/local/bin:/usr/bin:/bin",
        LC_ALL: "C",
        [LOG_WRITER_VARIABLE]: log,
        PROVISIONING_HOME: home,
      },
    },
  );
  const error = await new Promise<Error | undefined>((resolve) => {
    child.once("spawn", () => resolve(undefined));
    child.once("error", resolve);
  });
  if (error) throw new Error(`cannot start the log writer of ${log}: ${error.message}`);
  child.unref();
  const pid = child.pid!;
  return { pid, start: (await processStartTime(pid)) ?? "" };
}

/** The output of a service about to start: where its stdout and stderr go, and its writer. */
export interface LogOutput {
  /** The FIFO opened read-write: give it to the child as stdout and stderr, then `close()`. */
  fd: number;
  writer: LogWriter;
  close(): void;
}

/**
 * Open the way from a new start of `name` to its log: the FIFO (read-write) and a fresh writer
 * reading it. Call after whatever an earlier start left has ended (see {@linkcode endLogWriter}).
 */
export async function openLogOutput(
  paths: StatePaths,
  name: string,
  log: string,
  bound: LogBound,
): Promise<LogOutput> {
  // Read-write for the service too: it holds a read end of its own output (no SIGPIPE ever).
  const { writer, fd } = await spawnWriter(ensurePipe(paths, name), log, bound, paths.home);
  return { fd, writer, close: () => closeSync(fd) };
}

/** Whether the recorded writer of `log` still runs (the PID is that very writer). */
export async function logWriterAlive(writer: LogWriter | undefined, log: string): Promise<boolean> {
  if (!writer?.pid) return false;
  if (!(await isAlive(writer.pid, writer.start || undefined))) return false;
  return tagOf(writer.pid, LOG_WRITER_VARIABLE) === log;
}

/**
 * Wait up to `ms` for the recorded writer of `log` to end on its own (it does once every process
 * of the service has closed the FIFO, after writing their last lines), then end it. Returns
 * whether it had to be killed.
 */
export async function endLogWriter(
  writer: LogWriter | undefined,
  log: string,
  ms = 1_000,
): Promise<boolean> {
  if (!writer || (await drainedLog(writer, log, ms))) return false;
  try {
    process.kill(-writer.pid, "SIGKILL"); // its session: the writer and its `head`
  } catch { /* gone meanwhile */ }
  return true;
}

/**
 * Wait up to `ms` for the writer of a service that has ended to write what is left and end; it
 * is never killed here (a service may still hold the FIFO). Returns whether it ended.
 */
export async function drainedLog(writer: LogWriter, log: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  let delay = 2;
  while (await logWriterAlive(writer, log)) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 50);
  }
  return true;
}

/**
 * A new writer for a running service whose writer is gone (killed): it opens the FIFO by its
 * path, and the service, which waited on a full FIFO meanwhile, goes on where it stopped. (Had
 * the service ended meanwhile, the writer finds the end of input at once and ends.)
 */
export async function respawnLogWriter(
  paths: StatePaths,
  name: string,
  log: string,
  bound: LogBound,
): Promise<LogWriter> {
  const { writer, fd } = await spawnWriter(ensurePipe(paths, name), log, bound, paths.home);
  closeSync(fd);
  return writer;
}
