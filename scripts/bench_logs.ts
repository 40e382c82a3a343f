/**
 * Logs within their bound (issue 11, item 6): what the log writer costs at 50 MB/s.
 *
 * A service started through the real binary driver, in a temp `PROVISIONING_HOME`, writes
 * 1 MiB every 20 ms (`writeSync` to fd 1, about 5 s) with `[logs] max_size = "10MB"`,
 * `keep = 3`: its output goes through its FIFO into its log writer (`core/process/log_writer.ts`:
 * `sh` running `stdbuf -o0 head -c <room>` in a loop, rotating by bytes). The writer is a session
 * leader, so its CPU is utime + stime + cutime + cstime (`/proc/PID/stat` fields 14–17) of every
 * process of its session (field 6): the `sh` itself, the `head`s, `stat`s and `mv`s it has
 * reaped, and the `head` still reading. It is read once the generator has written everything and
 * idles (the writer then blocks in `read`), before the generator exits.
 *
 * Anchor, same run, interleaved: the same generator into a FIFO read by `cat >> file` (the least
 * a writer path can cost: one copy, no rotation) — the CPU of that `cat`. The result is writer CPU
 * milliseconds per second of writing against cat's; there is no goal (the issue asks to measure).
 * The log folder is sampled every 20 ms meanwhile: its largest size is shown against
 * `max_size × (keep + 1)`. Where the time goes: a third path, the same writer with a `max_size`
 * it never reaches (1 TB: one `head` copying everything, no rotation), separates the copying
 * from the rotations.
 *
 * ```sh
 * deno run -A scripts/bench_logs.ts [--runs 3] [--json]
 * ```
 *
 * Importable: `const result = await benchLogs({ runs: 3 })` (also `deno task bench logs`).
 *
 * @module
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { Platform, readState, startServices, stopServices } from "../mod.ts";
import {
  type BenchResult,
  judge,
  median,
  q,
  resultLine,
  running,
  scriptCommand,
  tempDir,
} from "./_bench_util.ts";

/** Options of {@linkcode benchLogs}. */
export interface LogsBenchOptions {
  /** Runs of each path, interleaved (default 3). */
  runs?: number;
  /** Chunks of 1 MiB the generator writes (default 250: 5 s at 50 MiB/s). */
  chunks?: number;
  /** Milliseconds between two chunks (default 20). */
  everyMs?: number;
}

const MAX_BYTES = 10_000_000;
/** The same writer with a size it never reaches: its copying alone, no rotation. */
const NO_ROTATION_BYTES = 1e12;
const KEEP = 3;
const SAMPLE_MS = 20;
/** The generator idles this long after its last write, so the writer's CPU is read at rest. */
const TAIL_MS = 1_500;
const MB = 1e6;

/**
 * The generator: `chunks` writes of 1 MiB (64-byte lines) to fd 1, one every `everyMs` on a
 * fixed schedule (a late write is not made up for by a burst), then a report (bytes, ms from the
 * first write to the end of the last) into `report`, then `tail` ms of idling.
 */
const GENERATOR = `
import { writeSync, writeFileSync } from "node:fs";
const [chunks, everyMs, tail] = process.argv.slice(2, 5).map(Number);
const report = process.argv[5];
const chunk = Buffer.from(("x".repeat(63) + "\\n").repeat(16384));
const nap = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms) => ms > 0 && Atomics.wait(nap, 0, 0, ms);
const t0 = performance.now();
let bytes = 0;
for (let i = 0; i < chunks; i++) {
  sleep(t0 + i * everyMs - performance.now());
  let off = 0;
  while (off < chunk.length) {
    try {
      off += writeSync(1, chunk, off);
    } catch (e) {
      if (e.code !== "EAGAIN") throw e;
      sleep(1);
    }
  }
  bytes += off;
}
writeFileSync(report, JSON.stringify({ bytes, ms: performance.now() - t0 }));
sleep(tail);
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Clock ticks per second of `/proc/PID/stat` times. */
export const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** The fields of `/proc/PID/stat` used here (times in seconds), or undefined when it is gone. */
export function procStat(
  pid: number,
): { session: number; utime: number; stime: number; cutime: number; cstime: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  const f = text.slice(text.lastIndexOf(")") + 2).split(" "); // f[0] is field 3
  return {
    session: Number(f[3]),
    utime: Number(f[11]) / CLK_TCK,
    stime: Number(f[12]) / CLK_TCK,
    cutime: Number(f[13]) / CLK_TCK,
    cstime: Number(f[14]) / CLK_TCK,
  };
}

/** `/proc/PID/io` (with the reaped children's, as Linux adds them): syscalls and bytes. */
function procIo(pid: number): { syscr: number; syscw: number; wchar: number } {
  let text = "";
  try {
    text = readFileSync(`/proc/${pid}/io`, "utf8");
  } catch { /* gone */ }
  const n = (k: string) => Number(new RegExp(`^${k}: (\\d+)$`, "m").exec(text)?.[1] ?? 0);
  return { syscr: n("syscr"), syscw: n("syscw"), wchar: n("wchar") };
}

/** CPU (seconds) and I/O of a session: its leader `sid` and every live member. */
function sessionCost(sid: number): {
  /** utime + stime of the leader. */
  own: number;
  /** cutime + cstime of the leader: the children it has reaped. */
  reaped: number;
  /** Everything of the other live members (their own and their reaped children). */
  live: number;
  syscalls: number;
} {
  const lead = procStat(sid);
  if (!lead) throw new Error(`The log writer ${sid} is gone before its CPU could be read`);
  let live = 0;
  let syscalls = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const s = procStat(pid);
    if (!s || s.session !== sid) continue;
    const io = procIo(pid);
    syscalls += io.syscr + io.syscw;
    if (pid !== sid) live += s.utime + s.stime + s.cutime + s.cstime;
  }
  return { own: lead.utime + lead.stime, reaped: lead.cutime + lead.cstime, live, syscalls };
}

/** Bytes in `dir` now (a file renamed between the listing and its stat is skipped). */
function folderBytes(dir: string): number {
  let total = 0;
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch { /* not made yet */ }
  for (const name of names) {
    try {
      total += lstatSync(join(dir, name)).size;
    } catch { /* rotated away meanwhile: counted under its new name */ }
  }
  return total;
}

/** What the generator reported: bytes written and milliseconds of writing. */
interface Report {
  bytes: number;
  ms: number;
}

/**
 * Every 20 ms until `report` exists: the largest size of `dir` (when given). Then a pause
 * for the last bytes to drain, and the report.
 */
async function untilWritten(
  report: string,
  dir: string | undefined,
  isAlive: () => boolean,
): Promise<{ report: Report; maxFolder: number; samples: number }> {
  let maxFolder = 0;
  let samples = 0;
  const deadline = Date.now() + 120_000;
  while (!existsSync(report)) {
    if (dir) maxFolder = Math.max(maxFolder, folderBytes(dir));
    samples++;
    if (!isAlive()) throw new Error("The generator ended before it reported");
    if (Date.now() > deadline) throw new Error("The generator did not finish within 120 s");
    await sleep(SAMPLE_MS);
  }
  await sleep(200); // the FIFO drains (at most 64 KiB); the writer blocks in read again
  if (dir) maxFolder = Math.max(maxFolder, folderBytes(dir));
  return { report: JSON.parse(readFileSync(report, "utf8")), maxFolder, samples };
}

/** Whether `pid` runs (not a zombie). */
function alive(pid: number): boolean {
  const text = (() => {
    try {
      return readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      return "";
    }
  })();
  const state = text.slice(text.lastIndexOf(")") + 2, text.lastIndexOf(")") + 3);
  return text !== "" && state !== "Z" && state !== "X";
}

async function untilGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

/** One run's numbers of either path. */
interface Sample {
  cpu: number;
  report: Report;
  syscalls: number;
  maxFolder?: number;
  samples?: number;
  own?: number;
  reaped?: number;
  live?: number;
}

/** The generator's command line. */
function generatorArgs(gen: string, chunks: number, everyMs: number, report: string) {
  const run = scriptCommand();
  return {
    command: run.command,
    args: [...run.args(gen), String(chunks), String(everyMs), String(TAIL_MS), report],
  };
}

/**
 * The generator as a service through the driver, its output through the log writer with
 * `max_size` (bytes).
 */
async function writerRun(
  dir: string,
  gen: string,
  chunks: number,
  everyMs: number,
  maxSize: number,
) {
  const home = join(dir, `home-${maxSize}`);
  const config = join(dir, `services-${maxSize}.toml`);
  const report = join(dir, `report-${maxSize}.json`);
  const cmd = generatorArgs(gen, chunks, everyMs, report);
  writeFileSync(
    config,
    [
      `[services.flood]`,
      `deployment = { mode = "binary", binary = { binary_path = ${q(cmd.command)}, args = [${
        cmd.args.map(q).join(", ")
      }] } }`,
      `logs = { max_size = ${maxSize}, keep = ${KEEP} }`,
      "",
    ].join("\n"),
  );
  const p = await Platform.open({
    config,
    home,
    env: { ...process.env, PROVISIONING_HOME: home },
  });
  const stop = async () => {
    running.delete(stop);
    await stopServices(p, [], { force: true }).catch(() => {});
  };
  running.add(stop);
  try {
    const r = await startServices(p, ["flood"]);
    if (!r.ok) {
      const bad = r.outcomes.find((o) => o.status !== "started");
      throw new Error(`Cannot start the flooding service: ${bad?.message ?? "failed"}`);
    }
    const state = await readState(p.paths, "flood");
    const writer = (state?.handle?.log_writer as { pid?: number } | undefined)?.pid;
    const pid = state?.pid;
    if (!writer || !pid) throw new Error("The flooding service has no log writer on record");
    const seen = await untilWritten(report, p.paths.logs, () => alive(pid));
    const cost = sessionCost(writer);
    await untilGone(pid, TAIL_MS + 5_000);
    await untilGone(writer, 5_000); // it ends at the end of input, after the last bytes
    return {
      cpu: cost.own + cost.reaped + cost.live,
      own: cost.own,
      reaped: cost.reaped,
      live: cost.live,
      syscalls: cost.syscalls,
      report: seen.report,
      maxFolder: seen.maxFolder,
      samples: seen.samples,
    } satisfies Sample;
  } finally {
    await stop();
  }
}

/** The same generator into a FIFO read by `cat >> file` (opened as the driver opens its FIFO). */
async function catRun(dir: string, gen: string, chunks: number, everyMs: number) {
  const fifo = join(dir, "cat.pipe");
  const file = join(dir, "cat.log");
  const report = join(dir, "cat-report.json");
  const made = spawnSync("mkfifo", ["-m", "600", fifo], { stdio: ["ignore", "ignore", "pipe"] });
  if (made.status !== 0) throw new Error(`Cannot make a FIFO: ${made.stderr}`);
  const rw = openSync(fifo, constants.O_RDWR);
  const input = openSync(fifo, constants.O_RDONLY);
  const out = openSync(file, "a");
  const cmd = generatorArgs(gen, chunks, everyMs, report);
  const cat = spawn("cat", [], { stdio: [input, out, "ignore"] });
  const g = spawn(cmd.command, cmd.args, { stdio: ["ignore", rw, "ignore"] });
  const exits = [cat, g].map((c) => new Promise((r) => c.once("close", r)));
  const stop = async () => {
    running.delete(stop);
    for (const c of [g, cat]) {
      if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    }
    await Promise.all(exits);
  };
  running.add(stop);
  try {
    await Promise.all([cat, g].map((c) =>
      new Promise<void>((resolve, reject) => {
        c.once("spawn", () => resolve());
        c.once("error", reject);
      })
    ));
    for (const fd of [rw, input, out]) closeSync(fd);
    const seen = await untilWritten(report, undefined, () => alive(g.pid!));
    const s = procStat(cat.pid!);
    if (!s) throw new Error("cat is gone before its CPU could be read");
    const io = procIo(cat.pid!);
    await Promise.race([Promise.all(exits), sleep(TAIL_MS + 5_000)]);
    return {
      cpu: s.utime + s.stime + s.cutime + s.cstime,
      syscalls: io.syscr + io.syscw,
      report: seen.report,
    } satisfies Sample;
  } finally {
    await stop();
    rmSync(file, { force: true });
  }
}

/** CPU milliseconds per second of writing. */
const perSecond = (s: Sample) => s.cpu * 1000 / (s.report.ms / 1000);
const rate = (s: Sample) => s.report.bytes / MB / (s.report.ms / 1000);

/** Run the benchmark: `runs` of the writer path, of `cat` and of the unrotated writer, interleaved. */
export async function benchLogs(opts: LogsBenchOptions = {}): Promise<BenchResult> {
  const { runs = 3, chunks = 250, everyMs = 20 } = opts;
  const tmp = tempDir("logs");
  const cleanup = () => {
    running.delete(cleanup);
    tmp.remove();
    return Promise.resolve();
  };
  running.add(cleanup);
  try {
    const gen = join(tmp.dir, "generator.mjs");
    writeFileSync(gen, GENERATOR);
    const writers: Sample[] = [];
    const unrotated: Sample[] = [];
    const cats: Sample[] = [];
    for (let i = 0; i < runs; i++) {
      const dir = join(tmp.dir, `run-${i}`);
      mkdirSync(dir);
      const steps = [
        async () => writers.push(await writerRun(dir, gen, chunks, everyMs, MAX_BYTES)),
        async () => cats.push(await catRun(dir, gen, chunks, everyMs)),
        async () => unrotated.push(await writerRun(dir, gen, chunks, everyMs, NO_ROTATION_BYTES)),
      ];
      for (const step of i % 2 ? steps.reverse() : steps) await step();
      rmSync(dir, { recursive: true, force: true });
    }
    const w = median(writers.map(perSecond));
    const c = median(cats.map(perSecond));
    const u = median(unrotated.map(perSecond));
    const bound = MAX_BYTES * (KEEP + 1);
    const maxFolder = Math.max(...writers.map((s) => s.maxFolder!));
    const written = median(writers.map((s) => s.report.bytes / MB));
    const part = (k: "own" | "reaped" | "live") =>
      median(writers.map((s) => s[k]! * 1000 / (s.report.ms / 1000)));
    const perMb = (xs: Sample[]) => median(xs.map((s) => s.syscalls / (s.report.bytes / MB)));
    const rotations = written * MB / MAX_BYTES;
    return judge({
      name: "logs",
      label: `log writer CPU per second of writing at ${
        Math.round(1 / (everyMs / 1000))
      } MiB/s vs cat >> file`,
      value: w,
      unit: "ms",
      bound: c,
      boundLabel: "cat",
      samples: writers.map(perSecond),
      details: [
        `no goal: issue 11 asks to measure · median of ${runs} runs each, interleaved; ` +
        `1 MiB every ${everyMs} ms for ${chunks} chunks, max_size 10MB, keep ${KEEP}`,
        `CPU of one core: writer ${(w / 10).toFixed(1)} % · cat ${(c / 10).toFixed(1)} % ` +
        `(${(w / c).toFixed(1)}× cat)`,
        `where the writer's goes (ms per second): sh itself ${part("own").toFixed(1)} · ` +
        `the heads, stats and mvs it reaped ${part("reaped").toFixed(1)} · the head still ` +
        `reading ${part("live").toFixed(1)}`,
        `the same writer never rotating (max_size 1 TB: one head copying all) ${u.toFixed(1)} ms ` +
        `per second (${(u / c).toFixed(1)}× cat): the ${rotations.toFixed(0)} rotations a run ` +
        `(each a new stdbuf + head, stats, ${KEEP} mvs) cost the other ${(w - u).toFixed(1)}`,
        `read + write syscalls per MB: writer ${perMb(writers).toFixed(0)} · cat ${
          perMb(cats).toFixed(0)
        } (head -c reads 8 KiB at a time, cat up to 128 KiB)`,
        `largest log folder seen (every ${SAMPLE_MS} ms, ${
          median(writers.map((s) => s.samples!))
        } samples a run): ${(maxFolder / MB).toFixed(2)} MB of max_size × (keep + 1) = ${
          (bound / MB).toFixed(0)
        } MB ${maxFolder <= bound ? "(within)" : "(OVER)"}`,
        `written: ${written.toFixed(1)} MB a run at ${median(writers.map(rate)).toFixed(1)} MB/s ` +
        `through the writer, ${median(cats.map(rate)).toFixed(1)} MB/s into cat`,
      ],
      data: {
        writer_cpu_ms_per_s: w,
        cat_cpu_ms_per_s: c,
        writer_no_rotation_cpu_ms_per_s: u,
        writer_cpu_pct: w / 10,
        cat_cpu_pct: c / 10,
        writer_sh_ms_per_s: part("own"),
        writer_reaped_ms_per_s: part("reaped"),
        writer_live_ms_per_s: part("live"),
        max_folder_bytes: maxFolder,
        bound_bytes: bound,
        written_mb: written,
        writer_rate_mb_s: median(writers.map(rate)),
        cat_rate_mb_s: median(cats.map(rate)),
      },
    });
  } finally {
    await cleanup();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { runs: { type: "string" }, json: { type: "boolean" } },
  });
  process.once("SIGINT", async () => {
    await Promise.all([...running].map((f) => f()));
    process.exit(130);
  });
  const r = await benchLogs({ runs: values.runs ? Number(values.runs) : undefined });
  console.log(values.json ? JSON.stringify(r, null, 2) : [resultLine(r), ...r.details].join("\n"));
}
