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
 * supervisor runs for the services it watches), and nothing is lost. Where the machine has
 * `setsid`, the service's own launcher starts its writer ({@linkcode launchWithWriter}):
 * one spawn a start instead of two (the writer then a child of init, not of the supervisor). A
 * writer reads with `head -c <room>`, which takes exactly the bytes that fit, then renames `.log` → `.log.1` (and
 * `.1` → `.2` … up to `keep`): no copy, no truncation, no lost lines. It ends when the service
 * and everything it forked have closed the FIFO, after writing what they wrote last.
 *
 * Where `head` or `stdbuf` is not GNU's (busybox reads ahead through stdio and would drop bytes), the
 * writer appends with `cat` and the size is kept by the supervisor's periodic rotation instead.
 *
 * @module
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { closeSync, constants, lstatSync, mkdirSync, openSync, unlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import type { StatePaths } from "../types.ts";
import { isAlive, processStartTime } from "./identity.ts";
import { tagOf } from "./tree.ts";
import { ENTER_STEP } from "./cgroup.ts";

/** Set in a log writer's environment to the log file it writes (finds it, proves it ours). */
export const LOG_WRITER_VARIABLE = "PROVISIONING_LOG_WRITER";

/**
 * The writer, `sh -c SCRIPT log-writer <log> <max> <keep> <size now> <exact>`, its stdin the
 * FIFO. `head -c N` reads at most N bytes (GNU reads with `read(2)` of the bytes still wanted),
 * and `stdbuf -o0` has it write each read at once (not when its stdio buffer fills), so a file
 * is never longer than `max`; `head` ending short means end of input (or a note appended
 * meanwhile: then one more round reads nothing and ends). A write that fails (disk full) loses
 * what that `head` had read, and is tried again a second later. Starting costs one exec (`head`)
 * besides `sh`: the size and how to copy (see {@linkcode writerTools}) come as arguments.
 */
const SCRIPT = `
log=$1 max=$2 keep=$3 size=$4
[ "$5" = exact ] || exec cat >>"$log"
unbuffered=$6
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
  room=$((max - size))
  if [ "$room" -le 0 ]; then rotate; size=0; continue; fi
  if $unbuffered head -c "$room" >>"$log"; then
    size=$(size)
    [ "$size" -lt "$max" ] && exit 0
  else
    sleep 1; size=$(size)
  fi
done
`;

/**
 * How this machine's writer copies: `exact` with GNU `head` (exact byte counts) made unbuffered
 * either by preloading GNU's `libstdbuf.so` into the writer (no extra exec per `head`) or through
 * `stdbuf -o0`; `append` (`cat`) without them. Asked once per process.
 */
let tools: Promise<WriterTools> | undefined;

/** What a writer runs with on this machine (see {@linkcode writerTools}). */
interface WriterTools {
  exact: boolean;
  unbuffered: string;
  preload?: string;
  /** `setsid`: its service's launcher starts it ({@linkcode launchWithWriter}). */
  launcher?: { setsid: string };
}
const LIBSTDBUF = [
  "/usr/libexec/coreutils/libstdbuf.so",
  "/usr/lib/coreutils/libstdbuf.so",
  "/usr/lib64/coreutils/libstdbuf.so",
  "/usr/local/libexec/coreutils/libstdbuf.so",
];
function writerTools(): Promise<WriterTools> {
  const gnu = (cmd: string) =>
    new Promise<boolean>((resolve) =>
      execFile(cmd, ["--version"], (error, stdout) => resolve(!error && /GNU/.test(stdout)))
    );
  const file = (paths: string[]) =>
    paths.find((f) => {
      try {
        return lstatSync(f).isFile();
      } catch {
        return false;
      }
    });
  return tools ??= Promise.all([gnu("head"), gnu("stdbuf")]).then(([head, stdbuf]) => {
    const setsid = file(["/usr/bin/setsid", "/bin/setsid", "/usr/sbin/setsid"]);
    const launcher = setsid ? { setsid } : undefined;
    if (!head || !stdbuf) return { exact: false, unbuffered: "", launcher };
    const preload = file(LIBSTDBUF);
    return preload
      ? { exact: true, unbuffered: "", preload, launcher }
      : { exact: true, unbuffered: "stdbuf -o0", launcher };
  });
}

/** The size bound of a service's logs: `[services.X.logs]`. */
export interface LogBound {
  max_size: number;
  keep: number;
}

/** The FIFO a service of `paths` named `name` writes its output into. */
export function logPipe(paths: StatePaths, name: string): string {
  return join(paths.run, "logs", `${name}.pipe`);
}

/**
 * FIFOs asked for in the same tick, made by one `mkfifo` (a wave of starts pays one process,
 * and never blocks the event loop: the supervisor starts many services at once).
 */
let batch: { paths: string[]; made: Promise<void> } | undefined;

function mkfifos(path: string): Promise<void> {
  if (!batch) {
    const b: { paths: string[]; made: Promise<void> } = { paths: [], made: Promise.resolve() };
    b.made = new Promise((resolve) =>
      setImmediate(() => {
        if (batch === b) batch = undefined;
        execFile("mkfifo", ["-m", "600", ...b.paths], () => resolve()); // each checked below
      })
    );
    batch = b;
  }
  batch.paths.push(path);
  return batch.made;
}

/** The FIFO, made (mode 0600, in a 0700 folder) where it is missing or is not a FIFO. */
async function ensurePipe(paths: StatePaths, name: string): Promise<string> {
  const fifo = logPipe(paths, name);
  try {
    if (lstatSync(fifo).isFIFO()) return fifo;
    unlinkSync(fifo); // a file or a link where our FIFO belongs is never written through
  } catch { /* missing */ }
  mkdirSync(join(paths.run, "logs"), { recursive: true, mode: 0o700 });
  await mkfifos(fifo);
  let made = false;
  try {
    made = lstatSync(fifo).isFIFO();
  } catch { /* not made */ }
  if (!made) throw new Error(`cannot make the log pipe ${fifo} (mkfifo failed)`);
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
  const t = await writerTools();
  const child = spawn("/bin/sh", ["-c", SCRIPT, ...writerArgs(t, log, bound)], {
    detached: true, // its own session: a Ctrl+C of the CLI or a stop of the group spares it
    stdio: [input, "ignore", "ignore"],
    env: writerEnv(t, log, home),
  });
  // Spawning is synchronous (fork and exec happen within `spawn`): its pid is known now, and
  // the caller may close its copy of the FIFO at once; not waiting for the "spawn" event saves
  // a turn of the event loop on every start.
  child.on("error", () => {});
  const pid = child.pid;
  if (!pid) throw new Error(`cannot start the log writer of ${log}`);
  child.unref();
  return { pid, start: (await processStartTime(pid)) ?? "" };
}

/** The arguments after `sh -c SCRIPT`. */
function writerArgs(t: WriterTools, log: string, bound: LogBound): string[] {
  return [
    "log-writer",
    log,
    String(bound.max_size),
    String(bound.keep),
    String(sizeOf(log)),
    t.exact ? "exact" : "append",
    t.unbuffered,
  ];
}

/** A writer's whole environment: nothing of the service's (no secrets, no marker). */
function writerEnv(t: WriterTools, log: string, home: string): Record<string, string> {
  return {
    PATH: "/usr/local/bin:/usr/bin:/bin",
    LC_ALL: "C",
    [LOG_WRITER_VARIABLE]: log,
    PROVISIONING_HOME: home,
    // What `stdbuf -o0` sets up, without its exec on every `head`.
    ...(t.preload ? { LD_PRELOAD: t.preload, _STDBUF_O: "0" } : {}),
  };
}

/** The writer as the launcher forks it: it says its PID once it is itself, then writes. */
const REPORTING = `echo $$; exec >/dev/null\n${SCRIPT}`;

/**
 * `setsid sh -c LAUNCH launch <fifo> <cgroup.procs or ""> <names> <setsid> <writer script> <n>
 * <the writer's n variables, K=V> <the writer's 7 arguments> <command> <args...>`, its stdout a
 * pipe, in a session of its own (`setsid` execs: the PID stays); `names` are the names of the
 * environment it was given (the service's), separated by spaces. It makes the FIFO where there
 * is none (a file or a link in its place is removed, never written through), opens it read-write
 * as stderr, starts the writer (`setsid sh -c <writer script>`: a session of its own, exactly its
 * variables, not in the service's cgroup) reading the FIFO from a subshell that exits at once,
 * enters the cgroup, points stdout at the FIFO, and becomes the command. The writer's
 * environment is made by builtins: `unset` of every name (and `PWD`, `OLDPWD`, which `sh`
 * exports itself), then `export` of its own (no `env -i`: one exec less a start). So the writer
 * is no child of the service (a service that waits for all its children, or reaps any, never
 * meets it); init reaps it. The writer prints its PID on the pipe once it is itself (its
 * environment and session its own), and closes it: the pipe ends when both have let go of it,
 * and by then the service is where it will be tracked (its session, its cgroup) and the writer
 * is no part of it. The writer's read-only open cannot block (the launcher holds the FIFO
 * read-write), and it holds no write end (it would never see the end). A failure of the
 * launcher is one line on the pipe instead of a PID. Its own variables are `__pv_*`: a
 * variable it sets that the service's environment has would reach the service with its value.
 */
const LAUNCH = `__pv_fifo=$1 __pv_procs=$2 __pv_names=$3 __pv_setsid=$4 __pv_writer=$5 __pv_n=$6
shift 6
if [ -h "$__pv_fifo" ] || { [ -e "$__pv_fifo" ] && [ ! -p "$__pv_fifo" ]; }; then rm -f "$__pv_fifo"; fi
[ -p "$__pv_fifo" ] || mkfifo -m 600 "$__pv_fifo" 2>/dev/null || { echo "mkfifo failed"; exit 126; }
exec 2<>"$__pv_fifo" || { echo "cannot open it"; exit 126; }
( { IFS=' '; unset $__pv_names PWD OLDPWD
    while [ "$__pv_n" -gt 0 ]; do export "$1"; shift; __pv_n=$((__pv_n - 1)); done
    exec "$__pv_setsid" /bin/sh -c "$__pv_writer" "$1" "$2" "$3" "$4" "$5" "$6" "$7"
  } <"$__pv_fifo" 2>/dev/null & )
shift $((__pv_n + 7))
${ENTER_STEP}
exec 1>&2
exec "$@"`;

/** A name `sh` can `unset` (and `export`): what the launcher's environment names must be. */
const SHELL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The size of `file` now (0 when missing), never through a link. */
function sizeOf(file: string): number {
  try {
    return lstatSync(file).size;
  } catch {
    return 0;
  }
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
  const { writer, fd } = await spawnWriter(await ensurePipe(paths, name), log, bound, paths.home);
  return { fd, writer, close: () => closeSync(fd) };
}

/**
 * A start whose launcher forks the writer ({@linkcode launchWithWriter}): spawn
 * `command`/`args(…)` with `stdio` (not detached: the launcher makes its session), then ask
 * `writer(child)`.
 */
export interface LaunchWithWriter {
  command: string;
  /** The launcher's arguments that end in `command` and `args`. */
  args(command: string, args: string[]): string[];
  /**
   * The child's stdin, stdout (the pipe the PID comes back on) and stderr. No more: under Deno a
   * fourth descriptor, like `detached`, costs a fork of the whole runtime instead of a
   * `posix_spawn` (4 ms instead of 1 with a 150 MiB heap, measured here); the launcher makes
   * its own session instead.
   */
  stdio: ["ignore", "pipe", "ignore"];
  /** The writer the launcher forked, once it has said which; rejects when it said nothing. */
  writer(child: ChildProcess): Promise<LogWriter>;
}

/**
 * Open the way from a new start of `name` to its log with a writer that the service's own
 * launcher forks (`sh`, before it becomes the service): one spawn for the two, and the fork of
 * the writer happens in that small `sh`, not in our runtime (a spawn from the supervisor, a
 * dozen threads and tens of MiB, blocks its event loop a millisecond and more; with two a start
 * the spawns were most of its time in a 200-service bring-up, `deno task bench scale`). `procs`:
 * the `cgroup.procs` the launcher enters after forking the writer (see `childEntry`), or none.
 * `names`: the names of the environment the launcher is spawned with. Undefined where the
 * machine lacks `setsid`, or a name is none `sh` can unset ({@linkcode openLogOutput} then).
 */
export async function launchWithWriter(
  paths: StatePaths,
  name: string,
  log: string,
  bound: LogBound,
  procs: string | undefined,
  names: string[],
): Promise<LaunchWithWriter | undefined> {
  const t = await writerTools();
  if (!t.launcher || !names.every((n) => SHELL_NAME.test(n))) return undefined;
  const fifo = logPipe(paths, name);
  mkdirSync(dirname(fifo), { recursive: true, mode: 0o700 });
  const vars = Object.entries(writerEnv(t, log, paths.home)).map(([k, v]) => `${k}=${v}`);
  const head = [fifo, procs ?? "", names.join(" "), t.launcher.setsid, REPORTING];
  head.push(String(vars.length), ...vars);
  return {
    command: t.launcher.setsid,
    args: (command, args) => [
      "/bin/sh",
      "-c",
      LAUNCH,
      "launch",
      ...head,
      ...writerArgs(t, log, bound),
      command,
      ...args,
    ],
    stdio: ["ignore", "pipe", "ignore"],
    writer: (child) =>
      new Promise<LogWriter>((resolve, reject) => {
        const out = child.stdout;
        if (!out) return reject(new Error(`cannot start the log writer of ${log}`));
        let text = "";
        out.setEncoding("utf8");
        out.on("data", (d: string) => (text += d));
        out.on("error", () => {});
        out.once("close", async () => {
          const said = text.trim();
          const pid = Number(said);
          if (!/^\d+$/.test(said) || pid <= 0) {
            const why = said ? ` (its pipe ${fifo}: ${said})` : "";
            return reject(new Error(`cannot start the log writer of ${log}${why}`));
          }
          resolve({ pid, start: (await processStartTime(pid)) ?? "" });
        });
      }),
  };
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
  const { writer, fd } = await spawnWriter(await ensurePipe(paths, name), log, bound, paths.home);
  closeSync(fd);
  return writer;
}
