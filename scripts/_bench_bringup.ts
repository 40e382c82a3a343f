/**
 * Benchmarks 2 and 3, bring-up: the wall time from calling `startServices` (in-process) until
 * every service is healthy, divided by the critical-path bound (the longest dependency chain
 * weighted by ready delays). Each run is then explained from the lifecycle events and the
 * services' own log lines: along the chain that finished last, how long went to scheduling
 * (lock, status, pre-flight), launching (spawn until the new process's clock starts), the ready
 * delay itself (plus lateness when the runtime's boot outlasted it) and detection (ready →
 * healthy seen).
 *
 * @module
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { logFile } from "../core/state/files.ts";
import { type Platform, startServices, stopServices } from "../mod.ts";
import { openBenchPlatform, type ServiceSpec } from "./_bench_graphs.ts";
import { type BenchResult, judge, median, quantile } from "./_bench_util.ts";

/** Options of {@linkcode benchBringUp}. */
export interface BringUpOptions {
  /** Measured runs (default 5); one more warms up first. */
  runs?: number;
  /** Unmeasured runs first (default 1). */
  warmup?: number;
}

/** Times of one service in one run (epoch milliseconds). */
interface Marks {
  starting?: number;
  started?: number;
  healthy?: number;
}

/** One run, explained. */
interface RunAnalysis {
  total: number;
  /** Along the chain that finished last: where its time went. */
  chain: { names: string[]; schedule: number; launch: number; late: number; detect: number };
  /** Σ ready delays along that chain, minus the bound (0 when it is a critical path). */
  slack: number;
  spawn: number[];
  boot: number[];
  detect: number[];
  late: number[];
  /** CPU milliseconds used while bringing up: by the services, this process, the supervisor. */
  cpu: { services: number; manager: number; supervisor: number };
}

/** Run one bring-up benchmark of `specs`. */
export async function benchBringUp(
  meta: { name: string; label: string; goal: number },
  specs: ServiceSpec[],
  opts: BringUpOptions = {},
): Promise<BenchResult> {
  const { runs = 5, warmup = 1 } = opts;
  const bench = await openBenchPlatform(meta.name, specs);
  const { dir, home, platform: p } = bench;
  try {
    const readyMs = new Map(specs.map((s) => [s.name, s.readyMs]));
    const names = specs.map((s) => s.name);
    const critical = p.graph.criticalPath(names, (n) => readyMs.get(n)!);
    const bound = critical.length;
    const done: RunAnalysis[] = [];
    for (let i = 0; i < warmup + runs; i++) {
      const marks = new Map<string, Marks>(names.map((n) => [n, {}]));
      const supervisorPid = readPidFile(join(home, "run", "supervisor.pid"));
      const before = { own: process.cpuUsage(), supervisor: cpuMs(supervisorPid) };
      const t0 = Date.now();
      const r = await startServices(p, names, {
        onEvent: (e) => {
          if (e.type === "starting" || e.type === "started" || e.type === "healthy") {
            marks.get(e.service)![e.type] = Date.now();
          }
        },
      });
      if (!r.ok) {
        const bad = r.outcomes.filter((o) => o.status === "failed" || o.status === "blocked");
        throw new Error(
          `Cannot bring up ${meta.name}: ${bad.map((o) => `${o.name}: ${o.message}`).join("; ")}`,
        );
      }
      const own = process.cpuUsage(before.own);
      const cpu = {
        services: r.outcomes.reduce((sum, o) => sum + cpuMs(o.pid), 0),
        manager: (own.user + own.system) / 1000,
        supervisor: cpuMs(readPidFile(join(home, "run", "supervisor.pid"))) -
          (supervisorPid === readPidFile(join(home, "run", "supervisor.pid"))
            ? before.supervisor
            : 0),
      };
      const a = { ...analyze(p, specs, marks, t0, bound, bench.headStartMs), cpu };
      await stopServices(p, []);
      for (const s of specs) rmSync(join(dir, `${s.name}.ready`), { force: true });
      if (i >= warmup) done.push(a);
    }
    const m = (f: (a: RunAnalysis) => number) => median(done.map(f));
    const all = (f: (a: RunAnalysis) => number[]) => done.flatMap(f);
    const data = {
      bound_ms: bound,
      program_head_start_ms: bench.headStartMs,
      schedule_ms: m((a) => a.chain.schedule),
      launch_ms: m((a) => a.chain.launch),
      late_ms: m((a) => a.chain.late),
      detect_ms: m((a) => a.chain.detect),
      slack_ms: m((a) => a.slack),
      spawn_call_median_ms: median(all((a) => a.spawn)),
      node_boot_median_ms: median(all((a) => a.boot)),
      node_boot_max_ms: Math.max(...all((a) => a.boot)),
      detect_median_ms: median(all((a) => a.detect)),
      detect_p90_ms: quantile(all((a) => a.detect), 0.9),
      late_max_ms: Math.max(...all((a) => a.late)),
      cpu_services_ms: m((a) => a.cpu.services),
      cpu_manager_ms: m((a) => a.cpu.manager),
      cpu_supervisor_ms: m((a) => a.cpu.supervisor),
    };
    const cpuTotal = data.cpu_services_ms + data.cpu_manager_ms + data.cpu_supervisor_ms;
    const cores = availableParallelism();
    const chain = done[done.length - 1].chain.names;
    const r0 = (v: number) => Math.round(v);
    return judge({
      name: meta.name,
      label: meta.label,
      value: median(done.map((a) => a.total)) / 1000,
      unit: "s",
      bound: bound / 1000,
      boundLabel: "bound",
      goal: meta.goal,
      samples: done.map((a) => a.total / 1000),
      data,
      details: [
        `runs (s): ${done.map((a) => (a.total / 1000).toFixed(2)).join(", ")}` +
        ` (median of ${runs}, after ${warmup} warm-up)`,
        `bound: ${critical.path.length} services on the critical path, Σ ready = ${bound} ms` +
        (bench.headStartMs
          ? `; each service program sleeps ${bench.headStartMs} ms less than its ready time ` +
            `(its own spawn → ready lateness with no manager, measured first)`
          : ""),
        `overhead on the chain that finished last (${chain.length} services, ` +
        `last run: ${chain.join(" → ")}), medians: scheduling ${r0(data.schedule_ms)} ms ` +
        `+ launch ${r0(data.launch_ms)} ms + late ready ${r0(data.late_ms)} ms + detection ` +
        `${r0(data.detect_ms)} ms + (its Σ ready − bound) ${r0(data.slack_ms)} ms`,
        `every service: driver.start ${r0(data.spawn_call_median_ms)} ms, node boot ` +
        `${r0(data.node_boot_median_ms)} ms (max ${r0(data.node_boot_max_ms)}), detection ` +
        `${r0(data.detect_median_ms)} ms (p90 ${r0(data.detect_p90_ms)}), ready late by at ` +
        `most ${r0(data.late_max_ms)} ms`,
        `CPU per bring-up (medians): services ${r0(data.cpu_services_ms)} ms + this process ` +
        `${r0(data.cpu_manager_ms)} ms + supervisor ${r0(data.cpu_supervisor_ms)} ms = ` +
        `${r0(cpuTotal)} ms on ${cores} cores: no bring-up can take less than ` +
        `${r0(cpuTotal / cores)} ms of wall time here`,
      ],
    });
  } finally {
    await bench.close();
  }
}

/** Explain one run from its event marks and the services' log lines. */
function analyze(
  p: Platform,
  specs: ServiceSpec[],
  marks: Map<string, Marks>,
  t0: number,
  bound: number,
  headStart: number,
): Omit<RunAnalysis, "cpu"> {
  const logs = new Map(specs.map((s) => [s.name, logTimes(p, s.name)]));
  const healthy = (n: string) => marks.get(n)!.healthy!;
  const last = specs.reduce((a, b) => (healthy(b.name) > healthy(a.name) ? b : a));
  const spec = new Map(specs.map((s) => [s.name, s]));
  const chain: string[] = [];
  for (let n: string | undefined = last.name; n;) {
    chain.unshift(n);
    const deps: string[] = spec.get(n)!.dependencies;
    n = deps.length ? deps.reduce((a, b) => (healthy(b) > healthy(a) ? b : a)) : undefined;
  }
  const seg = { names: chain, schedule: 0, launch: 0, late: 0, detect: 0 };
  let before = t0;
  let readySum = 0;
  for (const n of chain) {
    const mk = marks.get(n)!;
    const log = logs.get(n)!;
    const ready = spec.get(n)!.readyMs;
    seg.schedule += mk.starting! - before;
    seg.launch += log.origin - mk.starting!;
    seg.late += log.readyAt - log.origin - (ready - headStart);
    seg.detect += mk.healthy! - log.readyAt;
    readySum += ready;
    before = mk.healthy!;
  }
  return {
    total: healthy(last.name) - t0,
    chain: seg,
    slack: readySum - bound,
    spawn: specs.map((s) => marks.get(s.name)!.started! - marks.get(s.name)!.starting!),
    boot: specs.map((s) => logs.get(s.name)!.bootMs),
    detect: specs.map((s) => healthy(s.name) - logs.get(s.name)!.readyAt),
    late: specs.map((s) =>
      logs.get(s.name)!.readyAt - logs.get(s.name)!.origin - (s.readyMs - headStart)
    ),
  };
}

/** From the last start in the service's log: its process start, boot time and ready time. */
function logTimes(p: Platform, name: string): { origin: number; bootMs: number; readyAt: number } {
  const file = logFile(p.paths, name);
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  const lines = text.split("\n");
  const from = lines.findLastIndex((l) => l.startsWith("--- ") && l.includes(` starting ${name}:`));
  let boot: RegExpMatchArray | null = null;
  let ready: RegExpMatchArray | null = null;
  for (const line of lines.slice(Math.max(0, from))) {
    boot ??= line.match(/^(\S+) \S+ starting \(pid \d+, kind \w+, (\d+) ms after process start\)$/);
    ready ??= line.match(/^(\S+) \S+ ready$/);
  }
  if (!boot || !ready) {
    throw new Error(`Cannot explain the run of "${name}": no boot or ready line in ${file}`);
  }
  const bootMs = Number(boot[2]);
  return { origin: Date.parse(boot[1]) - bootMs, bootMs, readyAt: Date.parse(ready[1]) };
}

/** CPU milliseconds (user + system) a live process has used; 0 when unknown (not Linux, gone). */
function cpuMs(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10; // clock ticks of 10 ms (USER_HZ 100)
  } catch {
    return 0;
  }
}

function readPidFile(file: string): number | undefined {
  try {
    return Number(readFileSync(file, "utf8").trim().split(/\s+/)[0]) || undefined; // "PID [start]"
  } catch {
    return undefined;
  }
}
