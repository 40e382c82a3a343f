/**
 * Benchmark `scale` (issue 18): a thousand services, ordered and health-gated, against PM2
 * starting the same programs unordered. Every measurement starts from fresh homes, in one run.
 *
 * The services come from `scripts/gen_registry.ts --mode sleep`: each is `/bin/sleep 3600`,
 * `auto_start`, with a `file` check (every 30 s once running) on a file that already exists, so
 * a service is ready the moment it runs and the time measured is the manager's; they form a
 * seeded random DAG of 9 waves. PM2 gets the same programs as an ecosystem file (no order, no
 * checks: PM2 has neither).
 *
 * For each size (default 200 and 1,000; runs: 3 for 200, 1 for 1,000):
 *
 * 1. **Bring-up**: `platform start --json` through the CLI (`deno run -A cli.ts`) from a fresh
 *    `PROVISIONING_HOME`, the supervisor's start included, until the CLI exits (every service
 *    healthy) / `pm2 start ecosystem.config.json` from a fresh `PM2_HOME`, its daemon's start
 *    included (goal ≤ 1.0). And ours / the bound (goal ≤ 1.5), where
 *    `bound = (services on the DAG's longest chain) × (one readiness check: a stat of the
 *    existing file) + N × (one bare spawn of /bin/sleep from Deno)`, both measured in this run:
 *    what a manager must spend if it did nothing but spawn the programs one after another and
 *    check each chain link once.
 * 2. **CPU per service** of a bring-up: the CLI's utime + stime (`/usr/bin/time`, its reaped
 *    children included) + the supervisor's (`/proc/PID/stat` of `run/supervisor.pid` as the
 *    CLI exits), divided by N (goal ≤ 2 ms).
 * 3. **Stop**: `platform stop` (graceful, dependents first) / `pm2 delete all` (goal ≤ 0.5).
 * 4. **Status**: `platform status` with N running / with 7 running (goal ≤ 2.0), medians of 5.
 * 5. **Validate**: `services validate` of N services / of 10 (goal ≤ 2.0), medians of 5.
 * 6. **Idle** (the largest size, first run): after a 5 s settle, the supervisor's CPU over 30 s
 *    (goal ≤ 1 % of a core) and its RSS (goal ≤ 120 MiB); PM2's daemon with the same programs,
 *    measured the same way after ours has stopped.
 * 7. **Where a start's time goes**, from the `--json` output's events: per service, dependency
 *    healthy → `starting` (scheduling, lock, status, pre-flight), `starting` → `started` (the
 *    spawn through the supervisor), `started` → `healthy` (readiness); medians and p90; and
 *    along the chain that finished last, the share of the wall time each took.
 *
 * The goals are the issue's for 200 and 1,000 services; they are applied to every size asked
 * for.
 *
 * ```sh
 * deno run -A scripts/bench_scale.ts [--sizes 200,1000] [--runs N] [--skip-pm2]
 *   [--idle-seconds S] [--json]
 * ```
 *
 * Importable: `await benchScale({ sizes: [200] })` (also `deno task bench scale`). Everything
 * runs in temp dirs and is stopped afterwards (`platform stop --force` and the supervisor's
 * stop through the library, `pm2 kill` with its own `PM2_HOME`, then whatever still carries
 * either home in its environment is killed by PID), also on Ctrl+C.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { Platform, stopServices, stopSupervisor } from "../mod.ts";
import type { LifecycleEvent, LifecycleResult } from "../mod.ts";
import { logFile, statePaths } from "../core/state/files.ts";
import { journalFile } from "../core/state/journal.ts";
import { type DagService, pm2Ecosystem, sleepDag, sleepRegistry } from "./gen_registry.ts";
import { startPm2Ecosystem } from "./_bench_managers.ts";
import {
  type BenchResult,
  denoBinary,
  fmt,
  judge,
  median,
  quantile,
  resultLine,
  ROOT,
  running,
  tempDir,
} from "./_bench_util.ts";

/** Options of {@linkcode benchScale}. */
export interface ScaleBenchOptions {
  /** Numbers of services (default 200 and 1,000). */
  sizes?: number[];
  /** Bring-ups per size (default 3 below 1,000 services, else 1). */
  runs?: number;
  /** Leave PM2 out (the ratios against it are then not reported). */
  skipPm2?: boolean;
  /** Seconds of the idle measurement (default 30), after a 5 s settle. */
  idleSeconds?: number;
  /** Seed of the DAG (default 1). */
  seed?: number;
  /** Called with a line of progress. */
  onProgress?: (line: string) => void;
}

const WAVES = 9;
const CHECK_INTERVAL_S = 30;
const SETTLE_MS = 5_000;
const REPEATS = 5; // status and validate
const GOALS = { pm2: 1.0, bound: 1.5, cpuMs: 2, stop: 0.5, status: 2.0, validate: 2.0 };
const IDLE_GOALS = { cpuPct: 1, rssMiB: 120 };
const TIME = "/usr/bin/time";
const CLK_TCK = 100; // USER_HZ on Linux

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const r0 = (v: number) => Math.round(v);

/** The `--json` document of `platform start`. */
type StartDoc = LifecycleResult & { events: LifecycleEvent[] };

/** CPU milliseconds of a live process: its own (utime + stime) and its reaped children's. */
function cpuOf(pid: number | undefined): { own: number; children: number } {
  if (!pid) return { own: NaN, children: NaN };
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ms = (i: number) => (Number(f[i]) * 1000) / CLK_TCK;
    return { own: ms(11) + ms(12), children: ms(13) + ms(14) }; // fields 14–17
  } catch {
    return { own: NaN, children: NaN };
  }
}

/** VmRSS of `pid` in MiB. */
function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** The first field of a PID file ("PID [start]"), or undefined. */
function pidFile(file: string): number | undefined {
  try {
    return Number(readFileSync(file, "utf8").trim().split(/\s+/)[0]) || undefined;
  } catch {
    return undefined;
  }
}

/** Live processes (not this one) whose environment holds `variable=value` exactly. */
function processesWithEnv(variable: string, value: string): number[] {
  const needle = `\0${variable}=${value}\0`;
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (!`\0${readFileSync(`/proc/${entry}/environ`, "latin1")}`.includes(needle)) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z") {
        pids.push(Number(entry));
      }
    } catch { /* gone, or not ours to read */ }
  }
  return pids;
}

/** SIGKILL every process carrying `variable=value`, until none is left (at most `ms`). */
async function killCarriers(variable: string, value: string, ms = 10_000): Promise<number> {
  let killed = 0;
  const deadline = Date.now() + ms;
  for (
    let left = processesWithEnv(variable, value);
    left.length;
    left = processesWithEnv(variable, value)
  ) {
    for (const pid of left) {
      try {
        process.kill(pid, "SIGKILL");
        killed++;
      } catch { /* gone meanwhile */ }
    }
    if (Date.now() > deadline) break;
    await sleep(50);
  }
  return killed;
}

/** One CLI run: wall time, CPU (utime + stime of it and its reaped children) and output. */
interface CliRun {
  ms: number;
  cpuMs: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Run `deno run -A cli.ts ARGS` (under `/usr/bin/time` when installed, for its CPU) to its end
 * in its own process group, which a Ctrl+C meanwhile kills.
 */
function cli(
  args: string[],
  env: Record<string, string | undefined>,
  dir: string,
): Promise<CliRun> {
  const timeFile = join(dir, "cli-time.txt");
  const base = [denoBinary(), "run", "-A", join(ROOT, "cli.ts"), ...args];
  const argv = existsSync(TIME) ? [TIME, "-f", "%U %S", "-o", timeFile, ...base] : base;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(argv[0], argv.slice(1), { env, cwd: ROOT, detached: true });
    const kill = () => {
      try {
        process.kill(-child.pid!, "SIGTERM");
      } catch { /* gone */ }
      return Promise.resolve();
    };
    running.add(kill);
    let stdout = "", stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    child.once("error", (e) => {
      running.delete(kill);
      reject(e);
    });
    child.once("close", (code) => {
      const ms = performance.now() - t0;
      running.delete(kill);
      let cpuMs = NaN;
      if (argv[0] === TIME) {
        const m = /([\d.]+) ([\d.]+)\s*$/.exec(readFileSync(timeFile, "utf8"));
        if (m) cpuMs = (Number(m[1]) + Number(m[2])) * 1000;
      }
      resolve({ ms, cpuMs, code, stdout, stderr });
    });
  });
}

/** `cli(args)` that must exit 0; throws with its output otherwise. */
async function cliOk(
  args: string[],
  env: Record<string, string | undefined>,
  dir: string,
): Promise<CliRun> {
  const r = await cli(args, env, dir);
  if (r.code !== 0) {
    throw new Error(`"${args.join(" ")}" exited with code ${r.code}:\n${r.stderr.slice(-2000)}`);
  }
  return r;
}

/** Our platform of some sleep services in a fresh temp dir and home, before anything starts. */
interface OursHome {
  dir: string;
  home: string;
  config: string;
  env: Record<string, string | undefined>;
  /** `--config FILE`. */
  flags: string[];
  /** Stop everything (forced), the supervisor, leftovers by PID; remove the temp dir. */
  close(): Promise<void>;
}

/** Write the registry of `dag` into a fresh temp dir with its own home. */
function oursHome(prefix: string, dag: readonly DagService[]): OursHome {
  const tmp = tempDir(prefix);
  const home = join(tmp.dir, "home");
  const config = join(tmp.dir, "services.toml");
  const ready = join(tmp.dir, "ready"); // exists: every service is ready once it runs
  writeFileSync(ready, "");
  writeFileSync(config, sleepRegistry(dag, { readyPath: ready, interval: CHECK_INTERVAL_S }));
  const env = { ...process.env, PROVISIONING_HOME: home, NO_COLOR: "1" };
  const close = async () => {
    running.delete(close);
    const p = await Platform.open({ config, home, env }).catch(() => undefined);
    if (p) await stopServices(p, [], { force: true }).catch(() => {});
    await stopSupervisor(home).catch(() => false);
    await killCarriers("PROVISIONING_HOME", home);
    tmp.remove();
  };
  running.add(close);
  return { dir: tmp.dir, home, config, env, flags: ["--config", config], close };
}

/** A bring-up of ours, measured. */
interface OursUp {
  wallMs: number;
  doc: StartDoc;
  supervisorPid: number;
  cpu: {
    cli: number;
    supervisor: number;
    /** The supervisor's reaped children (short-lived helpers). */
    supervisorChildren: number;
    /** Live processes of the home that are neither services nor the supervisor (log writers). */
    helpers: number;
    helperCount: number;
  };
  /**
   * Wall-clock times (epoch ms) per service: the CLI's `starting` and `started` as its journal
   * recorded them, and the moment the supervisor's driver began the spawn (the `--- … starting`
   * line it writes into the service's log).
   */
  clock: Map<string, { starting: number; spawning: number; started: number }>;
}

/** The CLI's journal times and the driver's spawn line of every service of home `h`. */
function spawnClock(h: OursHome, names: string[]): OursUp["clock"] {
  const paths = statePaths(h.home);
  const cliAt = new Map<string, { starting?: number; started?: number }>();
  for (const line of readFileSync(journalFile(paths), "utf8").split("\n")) {
    if (!line) continue;
    const e = JSON.parse(line) as { type: string; service?: string; at: string; by: string };
    if (e.by !== "cli" || !e.service || (e.type !== "starting" && e.type !== "started")) continue;
    const m = cliAt.get(e.service) ?? {};
    m[e.type] ??= Date.parse(e.at);
    cliAt.set(e.service, m);
  }
  const clock: OursUp["clock"] = new Map();
  for (const name of names) {
    const log = readFileSync(logFile(paths, name), "utf8");
    const m = new RegExp(`^--- (\\S+) starting ${name.replaceAll(".", "\\.")}:`, "m").exec(log);
    const c = cliAt.get(name);
    if (!m || c?.starting === undefined || c.started === undefined) {
      throw new Error(`Cannot explain the start of "${name}": no journal or spawn line`);
    }
    clock.set(name, { starting: c.starting, spawning: Date.parse(m[1]), started: c.started });
  }
  return clock;
}

/** `platform start --json` through the CLI from the fresh home `h`. */
async function bringUpOurs(h: OursHome): Promise<OursUp> {
  const r = await cli(["platform", "start", "--json", ...h.flags], h.env, h.dir);
  const supervisorPid = pidFile(join(h.home, "run", "supervisor.pid"));
  const sup = cpuOf(supervisorPid);
  let doc: StartDoc;
  try {
    doc = JSON.parse(r.stdout);
  } catch {
    throw new Error(`platform start exited with code ${r.code}:\n${r.stderr.slice(-2000)}`);
  }
  if (!doc.ok || r.code !== 0) {
    const bad = doc.outcomes.filter((o) => o.status === "failed" || o.status === "blocked");
    throw new Error(
      `Cannot bring up the scale platform: ${
        bad.slice(0, 3).map((o) => `${o.name}: ${o.message}`).join("; ")
      }`,
    );
  }
  if (!supervisorPid) throw new Error("Cannot find the supervisor's PID after the start");
  const services = new Set(doc.outcomes.map((o) => o.pid));
  const helpers = processesWithEnv("PROVISIONING_HOME", h.home)
    .filter((pid) => pid !== supervisorPid && !services.has(pid));
  return {
    wallMs: r.ms,
    doc,
    supervisorPid,
    clock: spawnClock(h, doc.outcomes.map((o) => o.name)),
    cpu: {
      cli: r.cpuMs,
      supervisor: sup.own,
      supervisorChildren: sup.children,
      helpers: helpers.reduce((sum, pid) => sum + (cpuOf(pid).own || 0), 0),
      helperCount: helpers.length,
    },
  };
}

/** Median milliseconds of `/bin/sleep` spawned from this Deno: `spawn()` until its `spawn` event. */
async function bareSpawnMs(runs = 21): Promise<number[]> {
  const samples: number[] = [];
  for (let i = -1; i < runs; i++) {
    const t0 = performance.now();
    const child = spawn("/bin/sleep", ["3600"], { detached: true, stdio: "ignore" });
    const exited = new Promise((r) => child.once("exit", r));
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", reject);
    });
    if (i >= 0) samples.push(performance.now() - t0);
    child.kill("SIGKILL");
    await exited;
  }
  return samples;
}

/** Median milliseconds of one `file` check's work: a stat of the existing file. */
function statMs(file: string, runs = 1_000): number {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    statSync(file);
    samples.push(performance.now() - t0);
  }
  return median(samples);
}

/** Idle cost of `pid` after a settle: CPU % of one core over `seconds`, and its RSS. */
async function idleCost(pid: number, seconds: number) {
  await sleep(SETTLE_MS);
  const [c0, t0] = [cpuOf(pid).own, performance.now()];
  await sleep(seconds * 1000);
  const cpu = ((cpuOf(pid).own - c0) / (performance.now() - t0)) * 100;
  return { cpuPct: cpu, rssMiB: rssMiB(pid) };
}

/** A start explained from its events. */
interface Explained {
  wall: number;
  /** Along the chain that finished last: where the wall time went (ms, sums to `wall`). */
  chain: {
    names: string[];
    cli: number;
    first: number;
    gates: number;
    spawn: number;
    /** Of `spawn`: the CLI's `starting` → the driver's spawn in the supervisor (wall clock). */
    toSpawn: number;
    ready: number;
    tail: number;
  };
  /** Per service: dependencies healthy (operation start for the first wave) → `starting`. */
  gate: number[];
  /** Per service: `starting` → `started`. */
  spawn: number[];
  /** Per service, of `spawn`: the CLI's `starting` → the driver's spawn in the supervisor. */
  toSpawn: number[];
  /** Per service, of `spawn`: the driver's spawn → the CLI's `started`. */
  fromSpawn: number[];
  /** Per service: `started` → `healthy`. */
  ready: number[];
  /** Per service: `preflight` → `starting`. */
  afterPreflight: number[];
  /** The first `starting` → the first `started`: the supervisor's start and one spawn. */
  firstSpawn: number;
}

/** Where the time of the bring-up `up` of `dag` went (see {@linkcode Explained}). */
function explain(dag: readonly DagService[], up: OursUp): Explained {
  const at = new Map<string, Partial<Record<LifecycleEvent["type"], number>>>();
  for (const e of up.doc.events) {
    const m = at.get(e.service) ?? {};
    m[e.type] ??= e.elapsed_ms;
    at.set(e.service, m);
  }
  const mark = (name: string, type: LifecycleEvent["type"]) => {
    const t = at.get(name)?.[type];
    if (t === undefined) throw new Error(`Cannot explain the start: no "${type}" of "${name}"`);
    return t;
  };
  const deps = new Map(dag.map((s) => [s.name, s.dependencies]));
  const gateOpen = (name: string) => Math.max(0, ...deps.get(name)!.map((d) => mark(d, "healthy")));
  const last = dag.reduce((a, b) => (mark(b.name, "healthy") > mark(a.name, "healthy") ? b : a));
  const names: string[] = [];
  for (let n: string | undefined = last.name; n;) {
    names.unshift(n);
    const ds: string[] = deps.get(n)!;
    n = ds.length
      ? ds.reduce((a, b) => (mark(b, "healthy") > mark(a, "healthy") ? b : a))
      : undefined;
  }
  const chain = {
    names,
    cli: up.wallMs - up.doc.elapsed_ms,
    first: 0,
    gates: 0,
    spawn: 0,
    toSpawn: 0,
    ready: 0,
    tail: 0,
  };
  const clk = (n: string) => up.clock.get(n)!;
  names.forEach((n, i) => {
    const wait = mark(n, "starting") - gateOpen(n);
    if (i === 0) chain.first = wait;
    else chain.gates += wait;
    chain.spawn += mark(n, "started") - mark(n, "starting");
    chain.toSpawn += clk(n).spawning - clk(n).starting;
    chain.ready += mark(n, "healthy") - mark(n, "started");
  });
  chain.tail = up.doc.elapsed_ms - mark(last.name, "healthy");
  const each = (f: (n: string) => number) => dag.map((s) => f(s.name));
  return {
    wall: up.wallMs,
    chain,
    gate: each((n) => mark(n, "starting") - gateOpen(n)),
    spawn: each((n) => mark(n, "started") - mark(n, "starting")),
    toSpawn: each((n) => clk(n).spawning - clk(n).starting),
    fromSpawn: each((n) => clk(n).started - clk(n).spawning),
    ready: each((n) => mark(n, "healthy") - mark(n, "started")),
    afterPreflight: each((n) => mark(n, "starting") - mark(n, "preflight")),
    firstSpawn: Math.min(...each((n) => mark(n, "started"))) -
      Math.min(...each((n) => mark(n, "starting"))),
  };
}

/** The median wall milliseconds of `runs` CLI runs of `args` (each must exit 0). */
async function medianCli(
  runs: number,
  args: string[],
  h: Pick<OursHome, "env" | "dir" | "flags">,
): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push((await cliOk([...args, ...h.flags], h.env, h.dir)).ms);
  return median(times);
}

/** The `services validate` time of a registry of `n` (median of 5), in its own temp dir. */
async function validateMs(n: number, seed: number): Promise<number> {
  const h = oursHome(`scale-validate-${n}`, sleepDag(n, { seed, waves: WAVES }));
  try {
    await cliOk(["services", "validate", ...h.flags], h.env, h.dir); // warm-up
    return await medianCli(REPEATS, ["services", "validate"], h);
  } finally {
    await h.close();
  }
}

/** Everything measured for one size. */
interface SizeResult {
  n: number;
  waves: number[];
  chainLength: number;
  edges: number;
  ours: OursUp[];
  explained: Explained[];
  pm2Start: number[];
  pm2Running: number[];
  stop: number[];
  pm2Delete: number[];
  status: number;
  validate: number;
  idle?: { ours: { cpuPct: number; rssMiB: number }; pm2?: { cpuPct: number; rssMiB: number } };
}

/** Measure one size: `runs` bring-ups of ours then PM2, each from fresh homes. */
async function measureSize(
  n: number,
  o: { runs: number; seed: number; skipPm2: boolean; idleSeconds?: number },
  say: (line: string) => void,
): Promise<SizeResult> {
  const dag = sleepDag(n, { seed: o.seed, waves: WAVES });
  const waves: number[] = [];
  for (const s of dag) waves[s.wave] = (waves[s.wave] ?? 0) + 1;
  const res: SizeResult = {
    n,
    waves,
    chainLength: waves.length,
    edges: dag.reduce((sum, s) => sum + s.dependencies.length, 0),
    ours: [],
    explained: [],
    pm2Start: [],
    pm2Running: [],
    stop: [],
    pm2Delete: [],
    status: NaN,
    validate: NaN,
  };
  for (let run = 0; run < o.runs; run++) {
    const idle = run === 0 && o.idleSeconds !== undefined;
    say(`${n} services, run ${run + 1} of ${o.runs}: ours (platform start through the CLI)`);
    const h = oursHome(`scale-${n}`, dag);
    try {
      const up = await bringUpOurs(h);
      res.ours.push(up);
      res.explained.push(explain(dag, up));
      if (idle) {
        say(`${n} services: our supervisor idle, ${o.idleSeconds} s after a 5 s settle`);
        res.idle = { ours: await idleCost(up.supervisorPid, o.idleSeconds!) };
      }
      if (run === 0) {
        say(`${n} services: platform status × ${REPEATS}`);
        res.status = await medianCli(REPEATS, ["platform", "status"], h);
      }
      res.stop.push((await cliOk(["platform", "stop", ...h.flags], h.env, h.dir)).ms);
    } finally {
      await h.close();
    }
    if (o.skipPm2) continue;
    say(`${n} services, run ${run + 1} of ${o.runs}: PM2 (pm2 start ecosystem.config.json)`);
    const pm2 = await startPm2Ecosystem(pm2Ecosystem(dag), { prefix: `scale-pm2-${n}` });
    const sweep = () => killCarriers("PM2_HOME", pm2.home).then(() => {}); // also on Ctrl+C
    running.add(sweep);
    try {
      res.pm2Start.push(pm2.startMs);
      const daemon = pm2.daemonPid();
      res.pm2Running.push(
        processesWithEnv("PM2_HOME", pm2.home).filter((pid) => pid !== daemon).length,
      );
      if (idle && daemon && res.idle) {
        say(`${n} services: PM2's daemon idle, ${o.idleSeconds} s after a 5 s settle`);
        res.idle.pm2 = await idleCost(daemon, o.idleSeconds!);
      }
      res.pm2Delete.push(await pm2.pm2(["delete", "all"]));
    } finally {
      await pm2.stop();
      running.delete(sweep);
      await sweep();
    }
  }
  say(`${n} services: services validate × ${REPEATS}`);
  res.validate = await validateMs(n, o.seed);
  return res;
}

/** `platform status` with 7 services running (median of 5): the status anchor. */
async function statusOfSeven(seed: number): Promise<number> {
  const h = oursHome("scale-status-7", sleepDag(7, { seed, waves: 3 }));
  try {
    await cliOk(["platform", "start", ...h.flags], h.env, h.dir);
    await cliOk(["platform", "status", ...h.flags], h.env, h.dir); // warm-up
    return await medianCli(REPEATS, ["platform", "status"], h);
  } finally {
    await h.close();
  }
}

/** Run the scale benchmark; the headline is the largest size's bring-up, ours / PM2. */
export async function benchScale(opts: ScaleBenchOptions = {}): Promise<BenchResult> {
  const { sizes = [200, 1000], seed = 1, skipPm2 = false, idleSeconds = 30 } = opts;
  const say = opts.onProgress ?? (() => {});
  if (!sizes.length || sizes.some((n) => !(Number.isInteger(n) && n >= 10))) {
    throw new RangeError(`Cannot run the scale benchmark of "${sizes}": sizes must be ≥ 10`);
  }
  const largest = Math.max(...sizes);

  say("anchors: bare spawns of /bin/sleep, a stat of the ready file, status of 7, validate of 10");
  const spawns = await bareSpawnMs();
  const spawnMs = median(spawns);
  const tmp = tempDir("scale-stat");
  let checkMs: number;
  try {
    writeFileSync(join(tmp.dir, "ready"), "");
    checkMs = statMs(join(tmp.dir, "ready"));
  } finally {
    tmp.remove();
  }
  const status7 = await statusOfSeven(seed);
  const validate10 = await validateMs(10, seed);

  const results: SizeResult[] = [];
  for (const n of sizes) {
    results.push(
      await measureSize(n, {
        runs: opts.runs ?? (n >= 1000 ? 1 : 3),
        seed,
        skipPm2,
        idleSeconds: n === largest ? idleSeconds : undefined,
      }, say),
    );
  }

  const details: string[] = [
    `anchors measured in this run: one bare spawn of /bin/sleep from Deno ${
      spawnMs.toFixed(2)
    } ms (median of ${spawns.length}, spawn() → its spawn event; p90 ${
      quantile(spawns, 0.9).toFixed(2)
    }), one readiness check (stat of the existing ready file) ${checkMs.toFixed(3)} ms, ` +
    `platform status with 7 running ${fmt(status7, "ms")}, services validate of 10 ${
      fmt(validate10, "ms")
    }`,
    `bound(N) = (services on the DAG's longest chain) × (one readiness check) + N × (one bare ` +
    `spawn): a manager that only spawned the N programs one after another and checked each ` +
    `link of the chain once`,
  ];
  const data: Record<string, number> = {
    bare_spawn_ms: spawnMs,
    readiness_check_ms: checkMs,
    status_7_ms: status7,
    validate_10_ms: validate10,
  };
  let headline: BenchResult | undefined;
  for (const s of results) {
    const lines = sizeLines(s, { spawnMs, checkMs, status7, validate10, skipPm2 });
    details.push(...lines.details);
    Object.assign(data, lines.data);
    if (s.n === largest) headline = lines.headline;
  }
  return { ...headline!, details, data };
}

/** The ratio lines and explanations of one size. */
function sizeLines(
  s: SizeResult,
  a: { spawnMs: number; checkMs: number; status7: number; validate10: number; skipPm2: boolean },
): { headline: BenchResult; details: string[]; data: Record<string, number> } {
  const n = s.n;
  const runs = s.ours.length;
  const ours = median(s.ours.map((u) => u.wallMs)) / 1000;
  const bound = (s.chainLength * a.checkMs + n * a.spawnMs) / 1000;
  const cpuCli = median(s.ours.map((u) => u.cpu.cli));
  const cpuSup = median(s.ours.map((u) => u.cpu.supervisor));
  const perService = median(s.ours.map((u) => (u.cpu.cli + u.cpu.supervisor) / n));
  const stop = median(s.stop);
  const of = `(median of ${runs})`;
  const vsBound = judge({
    name: "scale",
    label: `scale bring-up ${n}, ours / bound ${of}`,
    value: ours,
    unit: "s",
    bound,
    boundLabel: "bound",
    goal: GOALS.bound,
    samples: s.ours.map((u) => u.wallMs / 1000),
    details: [],
    data: {},
  });
  const vsPm2 = a.skipPm2 ? undefined : judge({
    name: "scale",
    label: `scale bring-up ${n}, ours / PM2 ${of}`,
    value: ours,
    unit: "s",
    bound: median(s.pm2Start) / 1000,
    boundLabel: "PM2",
    goal: GOALS.pm2,
    samples: s.ours.map((u) => u.wallMs / 1000),
    details: [],
    data: {},
  });
  const line = (r: Omit<BenchResult, "ratio" | "pass" | "name" | "samples" | "details" | "data">) =>
    resultLine(judge({ name: "scale", samples: [], details: [], data: {}, ...r }));
  const out: string[] = [
    `── ${n} services: ${s.waves.length} waves (${s.waves.join(" / ")}), ${s.edges} edges, ` +
    `longest chain ${s.chainLength} services`,
  ];
  if (vsPm2) {
    out.push(resultLine(vsPm2));
    out.push(
      `  runs: ours ${s.ours.map((u) => (u.wallMs / 1000).toFixed(2)).join(", ")} s · PM2 ${
        s.pm2Start.map((x) => (x / 1000).toFixed(2)).join(", ")
      } s (PM2 had ${s.pm2Running.join(", ")} of ${n} programs running as pm2 start returned)`,
    );
  } else {
    out.push(`  runs: ours ${s.ours.map((u) => (u.wallMs / 1000).toFixed(2)).join(", ")} s`);
  }
  out.push(
    resultLine(vsBound) +
      ` — bound = ${s.chainLength} × ${a.checkMs.toFixed(3)} ms + ${n} × ${
        a.spawnMs.toFixed(2)
      } ms`,
    line({
      label: `CPU per service, bring-up of ${n} (CLI + supervisor) ${of}`,
      value: perService,
      unit: "ms",
      bound: GOALS.cpuMs,
      boundLabel: "goal",
      goal: 1,
    }) + ` — CLI ${r0(cpuCli)} ms + supervisor ${r0(cpuSup)} ms`,
  );
  if (!a.skipPm2) {
    out.push(line({
      label: `platform stop of ${n} / pm2 delete all ${of}`,
      value: stop / 1000,
      unit: "s",
      bound: median(s.pm2Delete) / 1000,
      boundLabel: "pm2 delete all",
      goal: GOALS.stop,
    }));
  } else out.push(`  platform stop of ${n}: ${fmt(stop / 1000, "s")}`);
  out.push(
    line({
      label: `platform status with ${n} running / with 7 (median of ${REPEATS})`,
      value: s.status,
      unit: "ms",
      bound: a.status7,
      boundLabel: "7 running",
      goal: GOALS.status,
    }),
    line({
      label: `services validate of ${n} / of 10 (median of ${REPEATS})`,
      value: s.validate,
      unit: "ms",
      bound: a.validate10,
      boundLabel: "10",
      goal: GOALS.validate,
    }),
  );
  const data: Record<string, number> = {
    [`ours_${n}_s`]: ours,
    [`bound_${n}_s`]: bound,
    [`pm2_${n}_s`]: a.skipPm2 ? NaN : median(s.pm2Start) / 1000,
    [`cpu_per_service_${n}_ms`]: perService,
    [`cpu_cli_${n}_ms`]: cpuCli,
    [`cpu_supervisor_${n}_ms`]: cpuSup,
    [`stop_${n}_ms`]: stop,
    [`pm2_delete_${n}_ms`]: a.skipPm2 ? NaN : median(s.pm2Delete),
    [`status_${n}_ms`]: s.status,
    [`validate_${n}_ms`]: s.validate,
  };
  if (s.idle) {
    const { ours: i, pm2 } = s.idle;
    const ok = (v: boolean) => (v ? "PASS" : "MISS");
    out.push(
      `supervisor idle, ${n} services, ${CHECK_INTERVAL_S} s file checks: CPU ${
        i.cpuPct.toFixed(3)
      } % of a core (goal ≤ ${IDLE_GOALS.cpuPct} %) ${ok(i.cpuPct <= IDLE_GOALS.cpuPct)} · RSS ${
        i.rssMiB.toFixed(1)
      } MiB (goal ≤ ${IDLE_GOALS.rssMiB} MiB) ${ok(i.rssMiB <= IDLE_GOALS.rssMiB)}` +
        (pm2
          ? ` · PM2's daemon with the same ${n} programs: CPU ${pm2.cpuPct.toFixed(3)} %, RSS ${
            pm2.rssMiB.toFixed(1)
          } MiB`
          : ""),
    );
    Object.assign(data, {
      [`idle_${n}_cpu_pct`]: i.cpuPct,
      [`idle_${n}_rss_mib`]: i.rssMiB,
      [`idle_${n}_pm2_cpu_pct`]: pm2?.cpuPct ?? NaN,
      [`idle_${n}_pm2_rss_mib`]: pm2?.rssMiB ?? NaN,
    });
  }
  out.push(...whereTimeGoes(s));
  const headline = vsPm2 ?? vsBound;
  return { headline: { ...headline, data }, details: out, data };
}

/** The breakdown lines of one size's bring-ups. */
function whereTimeGoes(s: SizeResult): string[] {
  const ex = s.explained;
  const all = (f: (e: Explained) => number[]) => ex.flatMap(f);
  const mq = (xs: number[]) => `${r0(median(xs))} ms (p90 ${r0(quantile(xs, 0.9))})`;
  const m = (f: (e: Explained) => number) => median(ex.map(f));
  const wall = m((e) => e.wall);
  const share = (v: number) => `${r0(v)} ms (${r0((v / wall) * 100)} %)`;
  const c = ex[ex.length - 1].chain;
  const cpu = (f: (u: OursUp) => number) => r0(median(s.ours.map(f)));
  return [
    `  where a start's time goes, per service (all runs): dependencies healthy → starting ` +
    `(scheduling, lock, status, pre-flight) ${mq(all((e) => e.gate))}, of it pre-flight → ` +
    `starting ${mq(all((e) => e.afterPreflight))}; starting → started (spawn through the ` +
    `supervisor) ${mq(all((e) => e.spawn))}, split into the CLI's starting → the driver's ` +
    `spawn in the supervisor ${mq(all((e) => e.toSpawn))} and that spawn → the CLI's started ${
      mq(all((e) => e.fromSpawn))
    } (wall clock: the CLI's journal, the driver's line in the service's log); started → healthy (readiness) ${
      mq(all((e) => e.ready))
    }; the first starting → the first started (the supervisor's own start, on demand, and ` +
    `one spawn) ${r0(m((e) => e.firstSpawn))} ms`,
    `  along the chain that finished last (${c.names.length} services, last run: ${
      c.names.join(" → ")
    }), medians, share of the wall ${r0(wall)} ms: CLI boot, registry and exit ${
      share(m((e) => e.chain.cli))
    } · before its first start (plan, the first pre-flight) ${
      share(m((e) => e.chain.first))
    } · waits for dependencies → starting ${share(m((e) => e.chain.gates))} · spawns ${
      share(m((e) => e.chain.spawn))
    } (of it, until the driver's spawn in the supervisor ${
      r0(m((e) => e.chain.toSpawn))
    } ms) · readiness ${share(m((e) => e.chain.ready))} · after the last healthy ${
      share(m((e) => e.chain.tail))
    }`,
    `  CPU per bring-up (medians): CLI ${cpu((u) => u.cpu.cli)} ms (with its reaped children) ` +
    `+ supervisor ${cpu((u) => u.cpu.supervisor)} ms (its reaped helpers ${
      cpu((u) => u.cpu.supervisorChildren)
    } ms) · not counted in the goal: ${
      cpu((u) => u.cpu.helperCount)
    } live helper processes (log writers) ${
      cpu((u) => u.cpu.helpers)
    } ms · on ${availableParallelism()} cores`,
  ];
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      sizes: { type: "string" },
      runs: { type: "string" },
      "skip-pm2": { type: "boolean" },
      "idle-seconds": { type: "string" },
      json: { type: "boolean" },
    },
  });
  process.once("SIGINT", async () => {
    console.error("Interrupted: stopping what the benchmark started");
    await Promise.all([...running].map((f) => f()));
    process.exit(130);
  });
  const result = await benchScale({
    sizes: values.sizes?.split(",").map(Number),
    runs: values.runs ? Number(values.runs) : undefined,
    skipPm2: values["skip-pm2"],
    idleSeconds: values["idle-seconds"] ? Number(values["idle-seconds"]) : undefined,
    onProgress: (line) => !values.json && console.error(`… ${line}`),
  });
  if (values.json) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(resultLine(result));
    for (const line of result.details) console.log(`    ${line}`);
  }
}
