/**
 * Supervision benchmarks (issue 4 §6), in one run:
 *
 * 1. **kill -9 → healthy again**: the same program (`service.mjs --kind http --ready-after 100`
 *    on a free port) under ours (`restart_on_failure`, http check), PM2 (default
 *    `autorestart`) and supervisord (`autorestart=true`), and started with no manager at all
 *    (its own spawn → ready time). The bench kills the program's process with SIGKILL, waits
 *    until it is gone, and polls `GET /health` every 2 ms until it answers 200 again. Kills are
 *    1.2 s apart, so every manager sees a process that had been up for over a second (a first
 *    crash: PM2's `min_uptime`, supervisord's `startsecs`, our `restart_window` of 1 s).
 *    Medians of `runs` kills each. Goals: ours / PM2 ≤ 1.1, ours / no manager ≤ 1.3.
 * 2. **Idle cost**: 50 such programs with 10 s health checks under our supervisor, then the
 *    same 50 under PM2; after a 5 s settle, CPU of the manager's own process over 30 s
 *    (`/proc/PID/stat` utime + stime) and its RSS (`VmRSS`). Goals: ≤ 0.2 % of a core, RSS no
 *    more than PM2's daemon. Then ours again with checks every 24 h, which separates the
 *    supervisor's own cost from that of the checks.
 *
 * ```sh
 * deno run -A scripts/bench_supervision.ts [--runs N] [--idle-seconds S] [--json]
 * ```
 *
 * Importable: `const result = await benchSupervision({ runs: 10 })` (also `deno task bench
 * supervision`). Everything runs in temp dirs on free ports and is stopped afterwards.
 *
 * @module
 */
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import process from "node:process";
import { parseArgs } from "node:util";
import { isAlive, listeningPids } from "../core/process/identity.ts";
import {
  type App,
  appCommand,
  httpApp,
  type Managed,
  startOurs,
  startPm2,
  startSupervisord,
} from "./_bench_managers.ts";
import {
  type BenchResult,
  freePorts,
  healthStatus,
  judge,
  median,
  resultLine,
  running,
} from "./_bench_util.ts";

/** Options of {@linkcode benchSupervision}. */
export interface SupervisionBenchOptions {
  /** Kills per manager (default 10). */
  runs?: number;
  /** Seconds of idle CPU measurement (default 30), after a 5 s settle. */
  idleSeconds?: number;
  /** Services for the idle measurement (default 50). */
  services?: number;
  /** Called with a line of progress. */
  onProgress?: (line: string) => void;
}

const READY_MS = 100;
const POLL_MS = 2;
const UPTIME_BEFORE_KILL_MS = 1_200;
const SETTLE_MS = 5_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `/health` every 2 ms until it answers 200; throws after `ms`. */
async function untilHealthy(port: number, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while ((await healthStatus(port)) !== 200) {
    if (Date.now() > deadline) throw new Error(`Port ${port} not healthy within ${ms} ms`);
    await sleep(POLL_MS);
  }
}

/** Poll every millisecond until `pid` is gone (a zombie counts as gone). */
async function untilDead(pid: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (await isAlive(pid)) {
    if (Date.now() > deadline) throw new Error(`Process ${pid} survived SIGKILL for ${ms} ms`);
    await sleep(1);
  }
}

/** `runs` times: SIGKILL the process listening on `port`, time until it is healthy again. */
async function killToHealthy(port: number, runs: number): Promise<number[]> {
  const samples: number[] = [];
  await untilHealthy(port);
  for (let i = 0; i < runs; i++) {
    await sleep(UPTIME_BEFORE_KILL_MS);
    const [pid] = await listeningPids(port);
    if (!pid) throw new Error(`Nothing listens on port ${port} before kill ${i + 1}`);
    const t0 = performance.now();
    process.kill(pid, "SIGKILL");
    await untilDead(pid);
    await untilHealthy(port);
    samples.push(performance.now() - t0);
  }
  return samples;
}

/** The program started by nobody but us: spawn → `/health` 200, `runs` times (after a warm-up). */
async function spawnToReady(app: App, runs: number): Promise<number[]> {
  const samples: number[] = [];
  const cmd = appCommand(app);
  for (let i = -1; i < runs; i++) {
    const t0 = performance.now();
    const child = spawn(cmd.command, cmd.args, { stdio: "ignore" });
    const exited = new Promise((r) => child.once("exit", r));
    try {
      await untilHealthy(app.port);
      if (i >= 0) samples.push(performance.now() - t0);
    } finally {
      child.kill("SIGKILL");
      await exited;
    }
  }
  return samples;
}

/** Under `start`'s manager: kill → healthy samples; the manager is stopped afterwards. */
async function recovery(
  start: (apps: App[]) => Promise<Managed>,
  app: App,
  runs: number,
): Promise<number[]> {
  const m = await start([app]);
  try {
    return await killToHealthy(app.port, runs);
  } finally {
    await m.stop();
  }
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of `pid` in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14 and 15
}

/** VmRSS of `pid` in MiB. */
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Idle cost of a manager's daemon: CPU % of one core over `seconds`, after a settle; RSS. */
async function idleCost(
  start: (apps: App[]) => Promise<Managed>,
  apps: App[],
  seconds: number,
): Promise<{ cpu: number; rss: number; pid: number }> {
  const m = await start(apps);
  try {
    await Promise.all(apps.map((a) => untilHealthy(a.port, 60_000)));
    await sleep(SETTLE_MS);
    const pid = m.daemonPid();
    if (!pid) throw new Error(`Cannot find the ${m.name} daemon's PID`);
    const [c0, t0] = [cpuSeconds(pid), performance.now()];
    await sleep(seconds * 1000);
    const cpu = (cpuSeconds(pid) - c0) / ((performance.now() - t0) / 1000) * 100;
    return { cpu, rss: rssMiB(pid), pid };
  } finally {
    await m.stop();
  }
}

const ms = (x: number) => `${Math.round(x)} ms`;
const verdict = (ok: boolean) => (ok ? "PASS" : "MISS");

/** Run both supervision benchmarks; the result's headline is ours / PM2 recovery. */
export async function benchSupervision(opts: SupervisionBenchOptions = {}): Promise<BenchResult> {
  const { runs = 10, idleSeconds = 30, services = 50 } = opts;
  const say = opts.onProgress ?? (() => {});
  const load = loadavg();
  const [port] = await freePorts(1);
  const app = httpApp("bench-recovery", port, READY_MS);

  say(`no manager: spawn → ready, ${runs} runs`);
  const none = await spawnToReady(app, runs);
  say(`ours: kill -9 → healthy, ${runs} kills`);
  const ours = await recovery((a) => startOurs(a), app, runs);
  say(`PM2: kill -9 → healthy, ${runs} kills`);
  const pm2 = await recovery(startPm2, app, runs);
  say(`supervisord: kill -9 → healthy, ${runs} kills`);
  const sup = await recovery(startSupervisord, app, runs);

  const idlePorts = await freePorts(services);
  const idleApps = idlePorts.map((p, i) => httpApp(`idle-${i}`, p, READY_MS));
  say(`ours: idle cost with ${services} services, ${idleSeconds} s`);
  const idleOurs = await idleCost((a) => startOurs(a, { interval: 10 }), idleApps, idleSeconds);
  say(`PM2: idle cost with ${services} services, ${idleSeconds} s`);
  const idlePm2 = await idleCost(startPm2, idleApps, idleSeconds);
  say(`ours without checks (every 24 h): idle cost with ${services} services, ${idleSeconds} s`);
  const bare = await idleCost((a) => startOurs(a, { interval: 86_400 }), idleApps, idleSeconds);
  say(`ours with V8's default flags: idle cost with ${services} services, ${idleSeconds} s`);
  const plainV8 = await idleCost(
    (a) => startOurs(a, { interval: 10, env: { PROVISIONING_SUPERVISOR_V8_FLAGS: "off" } }),
    idleApps,
    idleSeconds,
  );

  const [mOurs, mPm2, mSup, mNone] = [median(ours), median(pm2), median(sup), median(none)];
  const vsNone = mOurs / mNone;
  const cpuOk = idleOurs.cpu <= 0.2;
  const rssOk = idleOurs.rss <= idlePm2.rss;
  return judge({
    name: "supervision",
    label: `kill -9 → healthy again, ours vs PM2 (median of ${runs})`,
    value: mOurs,
    unit: "ms",
    bound: mPm2,
    boundLabel: "PM2",
    goal: 1.1,
    samples: ours,
    details: [
      `kill -9 → healthy: ours ${ms(mOurs)} · PM2 ${ms(mPm2)} · supervisord ${ms(mSup)} · ` +
      `no manager (spawn → ready) ${ms(mNone)}`,
      `ours / PM2 = ${(mOurs / mPm2).toFixed(2)} (goal ≤ 1.10) ${verdict(mOurs / mPm2 <= 1.1)}`,
      `ours / no manager = ${vsNone.toFixed(2)} (goal ≤ 1.30) ${verdict(vsNone <= 1.3)}`,
      `ours / supervisord = ${(mOurs / mSup).toFixed(2)} (no goal)`,
      `idle, ${services} services, 10 s http checks, ${idleSeconds} s after a 5 s settle: ` +
      `our supervisor ${idleOurs.cpu.toFixed(3)} % of a core, RSS ${
        idleOurs.rss.toFixed(1)
      } MiB · ` +
      `PM2 daemon ${idlePm2.cpu.toFixed(3)} %, RSS ${idlePm2.rss.toFixed(1)} MiB`,
      `idle CPU ≤ 0.2 % of a core: ${verdict(cpuOk)} · RSS ≤ PM2's: ${verdict(rssOk)}`,
      `where ours goes: the same supervisor with checks every 24 h ${bare.cpu.toFixed(3)} %, ` +
      `RSS ${bare.rss.toFixed(1)} MiB; the ${
        services * idleSeconds / 10
      } http checks cost the rest`,
      `what the daemon's V8 flags buy: with V8's defaults ${plainV8.cpu.toFixed(3)} % of a ` +
      `core, RSS ${plainV8.rss.toFixed(1)} MiB (with the flags ${idleOurs.rss.toFixed(1)} MiB)`,
      `load average at the start ${load.map((x) => x.toFixed(2)).join(" / ")} ` +
      `(${availableParallelism()} cores): other work on the machine inflates the CPU figures`,
    ],
    data: {
      ours_ms: mOurs,
      pm2_ms: mPm2,
      supervisord_ms: mSup,
      no_manager_ms: mNone,
      ours_vs_no_manager: vsNone,
      idle_ours_cpu_pct: idleOurs.cpu,
      idle_ours_rss_mib: idleOurs.rss,
      idle_pm2_cpu_pct: idlePm2.cpu,
      idle_pm2_rss_mib: idlePm2.rss,
      idle_ours_no_checks_cpu_pct: bare.cpu,
      idle_ours_no_checks_rss_mib: bare.rss,
      idle_ours_default_v8_cpu_pct: plainV8.cpu,
      idle_ours_default_v8_rss_mib: plainV8.rss,
    },
  });
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      runs: { type: "string" },
      "idle-seconds": { type: "string" },
      json: { type: "boolean" },
    },
  });
  process.once("SIGINT", async () => {
    await Promise.all([...running].map((f) => f()));
    process.exit(130);
  });
  const result = await benchSupervision({
    runs: values.runs ? Number(values.runs) : undefined,
    idleSeconds: values["idle-seconds"] ? Number(values["idle-seconds"]) : undefined,
    onProgress: (line) => !values.json && console.error(`… ${line}`),
  });
  if (values.json) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(resultLine(result));
    for (const line of result.details) console.log(`    ${line}`);
  }
}
