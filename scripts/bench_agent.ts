/**
 * The agent (issue 13), in one run, with the real CLI (`cli.ts agent --listen 127.0.0.1:PORT
 * --config F`) in a temp `PROVISIONING_HOME`:
 *
 * 1. **Idle cost**: 50 demo services (`service.mjs --kind http`, 10 s http checks,
 *    `restart_on_failure`, so our supervisor watches them) and an agent on a registry of just
 *    those 50, nobody connected. After a 5 s settle, CPU (`/proc/PID/stat` utime + stime) of the
 *    agent and of the supervisor over the same 30 s, and both RSS (`VmRSS`). No goal.
 * 2. **API latency**: a fresh agent on a registry of 200 services — the same 50 running plus 150
 *    registered and never started — `GET /v1/services` 1,000 times with autocannon
 *    (`amount: 1000`, `connections: 1`, bearer token), then `GET /healthz` (the anchor: the HTTP
 *    path alone) 1,000 times on the same agent. p50 / p99 from autocannon's per-response times
 *    (its `response` event, µs resolution; its own histogram counts whole milliseconds, shown
 *    too). No goal. Where the time goes: the same `statusAll` in this process, with and without
 *    its health checks (each running service is checked live on every list).
 * 3. **Crash → event**: `GET /v1/events` open (SSE); `kill -9` of one supervised service, `runs`
 *    times (default 10), each after 1.2 s of uptime. Measured: the arrival of the `status` event
 *    showing it not running, minus the `since` of the transition the supervisor wrote into
 *    `services/state/<name>.json` (`by: supervisor <pid>`). Goal: median ≤ 50 ms. Also kill →
 *    event and kill → the supervisor's record.
 *
 * The result line is (3), the one with a goal; (1) and (2) are in its details and data.
 *
 * ```sh
 * deno run -A scripts/bench_agent.ts [--runs 10] [--idle-seconds 30] [--json]
 * ```
 *
 * Importable: `const result = await benchAgent({ runs: 10 })` (also `deno task bench agent`).
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { type IncomingMessage, request } from "node:http";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import {
  defaultTokenFile,
  Platform,
  readState,
  startServices,
  statePaths,
  stopServices,
  stopSupervisor,
} from "../mod.ts";
import { type App, appCommand, httpApp } from "./_bench_managers.ts";
import { CLK_TCK, procStat } from "./bench_logs.ts";
import {
  type BenchResult,
  denoBinary,
  fmt,
  freePorts,
  judge,
  median,
  q,
  quantile,
  resultLine,
  ROOT,
  running,
  tempDir,
} from "./_bench_util.ts";

/** Options of {@linkcode benchAgent}. */
export interface AgentBenchOptions {
  /** Kills for the crash → event measure (default 10). */
  runs?: number;
  /** Seconds of idle CPU measurement (default 30), after a 5 s settle. */
  idleSeconds?: number;
  /** Running services (default 50). */
  services?: number;
  /** Services registered for the API measure (default 200; the running ones among them). */
  registered?: number;
  /** Requests per endpoint (default 1,000). */
  requests?: number;
  /** autocannon connections (default 1). */
  connections?: number;
  /** Called with a line of progress. */
  onProgress?: (line: string) => void;
}

const READY_MS = 100;
const SETTLE_MS = 5_000;
const UPTIME_BEFORE_KILL_MS = 1_200;
const GOAL_MS = 50;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A registry of `apps`: http check every 10 s, restarted on failure (window 1 s, as PM2's). */
function registryToml(apps: App[]): string {
  return apps.map((a) => {
    const cmd = appCommand(a);
    return [
      `[services.${q(a.name)}]`,
      `deployment = { mode = "binary", binary = { binary_path = ${q(cmd.command)}, args = [${
        cmd.args.map(q).join(", ")
      }] } }`,
      `health_check = { type = "http", interval = 10, http = { endpoint = ${
        q(`http://127.0.0.1:${a.port}/health`)
      } } }`,
      "startup = { restart_on_failure = true, max_restarts = 1000, restart_window = 1 }",
      "",
    ].join("\n");
  }).join("\n");
}

/** utime + stime of `pid`, seconds (whole process, in clock ticks: 10 ms steps). */
function cpuSeconds(pid: number): number {
  const s = procStat(pid);
  if (!s) throw new Error(`Process ${pid} is gone`);
  return s.utime + s.stime;
}

/** Nanoseconds on CPU of each live thread of `pid` (`/proc/PID/task/TID/schedstat`). */
function threadNs(pid: number): Map<string, number> {
  const ns = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns.set(tid, Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]));
    } catch { /* ended meanwhile */ }
  }
  return ns;
}

/** A CPU meter of `pid`: `read()` gives the seconds on CPU since it was made. */
function cpuMeter(pid: number): { read(): { seconds: number; precise: boolean } } {
  const [ticks0, threads0] = [cpuSeconds(pid), threadNs(pid)];
  return {
    read() {
      const ticks = cpuSeconds(pid) - ticks0;
      let ns = 0;
      for (const [tid, v] of threadNs(pid)) ns += v - (threads0.get(tid) ?? 0);
      // The threads' clocks are exact but lose a thread that ended meanwhile: then the ticks.
      const precise = Math.abs(ns / 1e9 - ticks) <= 2 / CLK_TCK;
      return { seconds: precise ? ns / 1e9 : ticks, precise };
    },
  };
}

/** VmRSS of `pid` in MiB. */
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** A running agent child process. */
interface AgentProcess {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

/** `cli.ts agent` on `port`, for `config` and `home`; resolves once it listens. */
async function startAgentProcess(config: string, home: string, port: number) {
  const child: ChildProcess = spawn(
    denoBinary(),
    [
      "run",
      "-A",
      "--quiet",
      join(ROOT, "cli.ts"),
      "agent",
      "--listen",
      `127.0.0.1:${port}`,
      "--config",
      config,
    ],
    {
      cwd: ROOT,
      env: { ...process.env, PROVISIONING_HOME: home, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const exited = new Promise((r) => child.once("close", r));
  let output = "";
  const stop = async () => {
    running.delete(stop);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  };
  running.add(stop);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`The agent did not listen within 30 s`)),
        30_000,
      );
      const onData = (d: Buffer) => {
        output += d;
        if (/Agent listening on/.test(output)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", (d) => (output += d));
      child.once("error", reject);
      child.once("close", (code) => {
        clearTimeout(timer);
        reject(new Error(`The agent exited with ${code}:\n${output.trim()}`));
      });
    });
  } catch (e) {
    await stop();
    throw e;
  }
  // Keep draining its output (request lines), so it never blocks on a full pipe.
  child.stdout!.resume();
  return { pid: child.pid!, port, stop } satisfies AgentProcess;
}

/** One autocannon run of `amount` GETs of `path`: per-response ms and its own percentiles. */
async function cannon(
  port: number,
  path: string,
  token: string,
  amount: number,
  connections: number,
): Promise<{ times: number[]; p50: number; p99: number; non2xx: number; errors: number }> {
  const times: number[] = [];
  const instance = autocannon({
    url: `http://127.0.0.1:${port}${path}`,
    headers: { authorization: `Bearer ${token}` },
    amount,
    connections,
    timeout: 30,
  });
  instance.on(
    "response",
    (_client: unknown, status: number, _bytes: number, ms: number) =>
      status < 300 && times.push(ms),
  );
  const r = await instance;
  return {
    times,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors,
  };
}

/** One `status` event of `/v1/events`, with when it arrived (wall clock, ms). */
interface Arrival {
  at: number;
  name: string;
  status: string;
  pid: number | null;
}

/** An open `/v1/events` stream; `next(pred)` waits for the first new event matching it. */
async function openEvents(port: number, token: string) {
  const waiters = new Set<{ pred: (a: Arrival) => boolean; resolve: (a: Arrival) => void }>();
  const latest = new Map<string, Arrival>();
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request({
      host: "127.0.0.1",
      port,
      path: "/v1/events",
      headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" },
      agent: false,
    }, resolve);
    req.once("error", reject);
    req.end();
  });
  if (res.statusCode !== 200) throw new Error(`GET /v1/events answered ${res.statusCode}`);
  res.setEncoding("utf8");
  let buffer = "";
  res.on("data", (chunk: string) => {
    const at = Date.now();
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const lines = block.split("\n");
      const event = lines.find((l) => l.startsWith("event: "))?.slice(7);
      const data = lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (event !== "status" || !data) continue;
      const e = JSON.parse(data) as { name: string; status: string; pid: number | null };
      const a: Arrival = { at, name: e.name, status: e.status, pid: e.pid };
      latest.set(a.name, a);
      for (const w of waiters) {
        if (w.pred(a)) {
          waiters.delete(w);
          w.resolve(a);
        }
      }
    }
  });
  return {
    latest,
    next(pred: (a: Arrival) => boolean, what: string, ms = 15_000): Promise<Arrival> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`No status event within ${ms} ms: ${what}`));
        }, ms);
        const w = {
          pred,
          resolve: (a: Arrival) => {
            clearTimeout(timer);
            resolve(a);
          },
        };
        waiters.add(w);
      });
    },
    close: () => res.destroy(),
  };
}

/** One kill: its times (wall clock, ms) and what the event and the state said. */
interface Kill {
  kill: number;
  event: number;
  since: number;
  status: string;
  by: string;
}

/** The first `status` event showing `name` not running after `kill -9`, against its state. */
async function killToEvent(
  paths: ReturnType<typeof statePaths>,
  events: Awaited<ReturnType<typeof openEvents>>,
  name: string,
  runs: number,
  say: (line: string) => void,
): Promise<Kill[]> {
  const kills: Kill[] = [];
  for (let i = 0; i < runs; i++) {
    await sleep(UPTIME_BEFORE_KILL_MS);
    const before = await readState(paths, name);
    const pid = before?.pid;
    if (before?.status !== "running" || !pid) {
      throw new Error(`${name} is not running before kill ${i + 1} (${before?.status})`);
    }
    const down = events.next(
      (a) => a.name === name && a.status !== "running",
      `${name} not running after kill -9 of ${pid}`,
    );
    const up = down.then(() =>
      events.next(
        (a) => a.name === name && a.status === "running" && a.pid !== pid,
        `${name} running again after kill -9 of ${pid}`,
        30_000,
      )
    );
    const kill = Date.now();
    process.kill(pid, "SIGKILL");
    const seen = await down;
    // The transition the supervisor recorded (read at once: the restart comes 0.5 s later).
    let state = await readState(paths, name);
    const deadline = Date.now() + 5_000;
    while (state?.status === "running" && state.pid === pid && Date.now() < deadline) {
      await sleep(1);
      state = await readState(paths, name);
    }
    if (!state?.since || (state.status === "running" && state.pid === pid)) {
      throw new Error(`No transition of ${name} recorded after kill -9 of ${pid}`);
    }
    kills.push({
      kill,
      event: seen.at,
      since: Date.parse(state.since),
      status: `${seen.status} (state: ${state.status})`,
      by: state.by ?? "?",
    });
    await up;
    say(`kill ${i + 1}/${runs}: event − since ${seen.at - Date.parse(state.since)} ms`);
  }
  return kills;
}

/** Run all three agent measures; the result's headline is crash → event (goal ≤ 50 ms). */
export async function benchAgent(opts: AgentBenchOptions = {}): Promise<BenchResult> {
  const {
    runs = 10,
    idleSeconds = 30,
    services = 50,
    registered = 200,
    requests = 1_000,
    connections = 1,
  } = opts;
  const say = opts.onProgress ?? (() => {});
  const tmp = tempDir("agent");
  const home = join(tmp.dir, "home");
  const config = join(tmp.dir, "services.toml");
  const paths = statePaths(home);
  let p: Platform | undefined;
  let agent: AgentProcess | undefined;
  const cleanup = async () => {
    running.delete(cleanup);
    await agent?.stop();
    if (p) await stopServices(p, [], { force: true }).catch(() => {});
    await stopSupervisor(home).catch(() => false);
    tmp.remove();
  };
  running.add(cleanup);
  try {
    const ports = await freePorts(registered + 2);
    const apps = ports.slice(0, registered).map((port, i) =>
      httpApp(`svc-${String(i).padStart(3, "0")}`, port, READY_MS)
    );
    const live = apps.slice(0, services);
    writeFileSync(config, registryToml(live));
    const env = { ...process.env, PROVISIONING_HOME: home };
    p = await Platform.open({ config, home, env });
    say(`starting ${services} services under the supervisor`);
    const up = await startServices(p, live.map((a) => a.name));
    if (!up.ok) {
      const bad = up.outcomes.find((o) => o.status !== "started");
      throw new Error(`Cannot start the benchmark services: ${bad?.name}: ${bad?.message}`);
    }
    const supervisor = Number(
      readFileSync(join(paths.run, "supervisor.pid"), "utf8").split(/\s/)[0],
    );
    if (!(supervisor > 0)) throw new Error("Cannot find the supervisor's PID");

    // 1. Idle: the agent beside the supervisor, same 30 s.
    say(
      `idle: agent and supervisor, ${services} services, ${
        SETTLE_MS / 1000
      } s settle + ${idleSeconds} s`,
    );
    agent = await startAgentProcess(config, home, ports[registered]);
    await sleep(SETTLE_MS);
    const meters = { agent: cpuMeter(agent.pid), sup: cpuMeter(supervisor) };
    const t0 = performance.now();
    await sleep(idleSeconds * 1000);
    const [a, s] = [meters.agent.read(), meters.sup.read()];
    const secs = (performance.now() - t0) / 1000;
    const idle = {
      agentCpu: a.seconds / secs * 100,
      supCpu: s.seconds / secs * 100,
      precise: a.precise && s.precise,
      agentRss: rssMiB(agent.pid),
      supRss: rssMiB(supervisor),
    };
    await agent.stop();

    // 2. API: 200 registered (50 running), a fresh agent.
    writeFileSync(config, registryToml(apps));
    p = await Platform.open({ config, home, env });
    agent = await startAgentProcess(config, home, ports[registered + 1]);
    const token = readFileSync(defaultTokenFile(paths), "utf8").trim();
    say(`API: GET /v1/services and /healthz, ${requests} requests each (after 50 to warm up)`);
    await cannon(agent.port, "/v1/services", token, 50, connections);
    await cannon(agent.port, "/healthz", token, 50, connections);
    const list = await cannon(agent.port, "/v1/services", token, requests, connections);
    const healthz = await cannon(agent.port, "/healthz", token, requests, connections);
    for (const [what, r] of [["/v1/services", list], ["/healthz", healthz]] as const) {
      if (r.non2xx || r.errors || r.times.length < requests) {
        throw new Error(
          `GET ${what}: ${r.times.length} answers of ${requests}, ${r.non2xx} not 2xx, ${r.errors} errors`,
        );
      }
    }
    // Where the time goes: the same list in-process, with and without its live checks.
    const inProcess = { checked: [] as number[], bare: [] as number[] };
    for (let i = 0; i < 21; i++) {
      for (const [k, health] of [["checked", true], ["bare", false]] as const) {
        const t = performance.now();
        await p.statusAll({ health });
        if (i > 0) inProcess[k].push(performance.now() - t);
      }
    }

    // 3. kill -9 → status event, against the supervisor's record.
    say(`events: kill -9 of ${apps[0].name}, ${runs} times`);
    const events = await openEvents(agent.port, token);
    let kills: Kill[];
    try {
      kills = await killToEvent(paths, events, apps[0].name, runs, say);
    } finally {
      events.close();
    }

    const afterSince = kills.map((k) => k.event - k.since);
    const killEvent = kills.map((k) => k.event - k.kill);
    const killSince = kills.map((k) => k.since - k.kill);
    const m = median(afterSince);
    const bys = [...new Set(kills.map((k) => k.by.replace(/\d+$/, "PID")))].join(", ");
    const statuses = [...new Set(kills.map((k) => k.status))].join(", ");
    const [l50, l99, h50, h99] = [
      quantile(list.times, 0.5),
      quantile(list.times, 0.99),
      quantile(healthz.times, 0.5),
      quantile(healthz.times, 0.99),
    ];
    const ms2 = (x: number) => `${x.toFixed(2)} ms`;
    return judge({
      name: "agent",
      label: `agent: kill -9 → SSE status event, after the supervisor's record (median of ${runs})`,
      value: m,
      unit: "ms",
      bound: GOAL_MS,
      boundLabel: "goal",
      goal: 1.0,
      samples: afterSince,
      details: [
        `crash → event: event − state's since median ${fmt(m, "ms")}, max ${
          fmt(Math.max(...afterSince), "ms")
        } · kill → event ${fmt(median(killEvent), "ms")} · kill → supervisor's record ${
          fmt(median(killSince), "ms")
        } (wall clock, ms resolution; records by ${bys}; events said ${statuses})`,
        `idle, ${services} services, 10 s http checks, ${idleSeconds} s after a ${
          SETTLE_MS / 1000
        } s settle, no client: agent ${idle.agentCpu.toFixed(3)} % of a core, RSS ${
          idle.agentRss.toFixed(1)
        } MiB · supervisor ${idle.supCpu.toFixed(3)} %, RSS ${idle.supRss.toFixed(1)} MiB · ` +
        `agent / supervisor CPU = ${(idle.agentCpu / idle.supCpu).toFixed(2)} (no goal; ${
          idle.precise ? "threads' CPU clocks, ns" : "clock ticks, 10 ms steps"
        }; the agent runs its own check of each service too)`,
        `GET /v1/services, ${registered} registered (${services} running, ${
          registered - services
        } never started), ${requests} requests, ${connections} connection(s): p50 ${ms2(l50)}, ` +
        `p99 ${ms2(l99)} · GET /healthz p50 ${ms2(h50)}, p99 ${ms2(h99)} · services / healthz ` +
        `p50 = ${(l50 / h50).toFixed(1)} (no goal)`,
        `autocannon's own histogram (whole ms): /v1/services p50 ${list.p50} ms, p99 ${list.p99} ms` +
        ` · /healthz p50 ${healthz.p50} ms, p99 ${healthz.p99} ms`,
        `where the list's time goes (statusAll in this process, median of 20): ${
          ms2(median(inProcess.checked))
        } with a live http check of each of the ${services} running services, ${
          ms2(median(inProcess.bare))
        } without (state files and PIDs of all ${registered})`,
      ],
      data: {
        event_after_record_ms: m,
        kill_to_event_ms: median(killEvent),
        kill_to_record_ms: median(killSince),
        idle_agent_cpu_pct: idle.agentCpu,
        idle_supervisor_cpu_pct: idle.supCpu,
        idle_agent_vs_supervisor_cpu: idle.agentCpu / idle.supCpu,
        idle_agent_rss_mib: idle.agentRss,
        idle_supervisor_rss_mib: idle.supRss,
        services_p50_ms: l50,
        services_p99_ms: l99,
        healthz_p50_ms: h50,
        healthz_p99_ms: h99,
        services_vs_healthz_p50: l50 / h50,
        status_all_checked_ms: median(inProcess.checked),
        status_all_bare_ms: median(inProcess.bare),
      },
    });
  } finally {
    await cleanup();
  }
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
  const result = await benchAgent({
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
