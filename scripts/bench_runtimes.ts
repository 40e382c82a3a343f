/**
 * Benchmark `runtimes` (issue 17 §6): one program on three runtimes, in one run.
 *
 * 1. **`--help` cold start**, medians of `runs` interleaved runs of whole processes: the
 *    standalone binary (goals: ≤ 40 ms and ≤ 0.5 × `node -e 0`), the Node bundle (goal:
 *    ≤ 1.2 × `node -e 0`) and `deno run -A cli.ts` (no goal). Where the time goes: the floors
 *    (`node -e 0`, an empty program compiled by the same Bun), `--version` (everything but the
 *    help text), the JavaScript the bundle loads, and the shares of one CPU profile of it.
 * 2. **`platform status` with 7 programs running** (the demo service, HTTP, checked): the binary
 *    vs `supervisorctl status` of the same 7 programs under supervisord (goal: ≤ 0.3), the
 *    bundle and Deno for comparison, and the same status in-process.
 * 3. **Supervisor RSS with 50 services** (HTTP checks every 10 s, after a 5 s settle), each
 *    started by one runtime's CLI, so its supervisor is that runtime's: the binary (itself),
 *    Deno (`core/supervisor/main.ts` with its V8 flags) and the bundle (Node with the flags).
 *
 * ```sh
 * deno run -A scripts/bench_runtimes.ts [--runs N] [--services N] [--json]
 * ```
 *
 * Importable: `await benchRuntimes({ runs: 15 })` (also `deno task bench runtimes`). Builds
 * dist/ first when it is out of date (`scripts/build.ts` `ensureBuilt`); everything else runs
 * in temp dirs on free ports and is stopped afterwards.
 *
 * @module
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { Platform } from "../mod.ts";
import { httpApp, oursToml, startOurs, startSupervisord } from "./_bench_managers.ts";
import { timeCommand } from "./_bench_status.ts";
import {
  type BenchResult,
  denoBinary,
  fmt,
  freePorts,
  healthStatus,
  judge,
  median,
  resultLine,
  ROOT,
  running,
  tempDir,
} from "./_bench_util.ts";
import { BINARY_FILE, BUNDLE_FILE, ensureBuilt } from "./build.ts";

/** Options of {@linkcode benchRuntimes}. */
export interface RuntimesBenchOptions {
  /** Measured runs of each command (default 21); one more warms up first. */
  runs?: number;
  /** Services of the RSS measurement (default 50). */
  services?: number;
  /** Called with a line of progress. */
  onProgress?: (line: string) => void;
}

type Cmd = [string, string[]];
const SETTLE_MS = 5_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ms = (x: number) => fmt(x, "ms");
const verdict = (ok: boolean) => (ok ? "PASS" : "MISS");
const ratio = (a: number, b: number) => (a / b).toFixed(2);

/** How each runtime runs the CLI. */
function cli(runtime: "binary" | "node" | "deno", args: string[]): Cmd {
  if (runtime === "binary") return [BINARY_FILE, args];
  if (runtime === "node") return ["node", [BUNDLE_FILE, ...args]];
  return [denoBinary(), ["run", "-A", "--quiet", join(ROOT, "cli.ts"), ...args]];
}

/**
 * Wall times of whole processes, `runs` each after one warm-up, interleaved (one of each in
 * turn) so that a change of load on the machine falls on all of them alike.
 */
async function interleaved(
  cmds: Record<string, Cmd>,
  runs: number,
  opts: { env: Record<string, string | undefined>; cwd: string },
): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = Object.fromEntries(Object.keys(cmds).map((k) => [k, []]));
  for (let i = 0; i <= runs; i++) {
    for (const [name, [command, args]] of Object.entries(cmds)) {
      const t = await timeCommand(command, args, opts);
      if (i > 0) out[name].push(t);
    }
  }
  return out;
}

/** The files and bytes of JavaScript the bundle's entry loads before it runs (static imports). */
function staticLoad(entry: string): { files: number; bytes: number } {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/(?:^|[;}\s])import\s*(?:[^"'()]*?from\s*)?"(\.\/[^"]+)"/g)) {
      visit(join(file, "..", m[1]));
    }
    // The Node entry reads its command tree (scripts/_node_entry.cjs): `"chunks", "cli-….cjs"`.
    const tree = /"chunks", "(cli-[0-9a-f]+\.cjs)"/.exec(text);
    if (tree) visit(join(file, "..", "chunks", tree[1]));
  };
  visit(entry);
  let bytes = 0;
  for (const f of seen) bytes += statSync(f).size;
  return { files: seen.size, bytes };
}

/**
 * Shares of a CPU profile of `node dist/cli.cjs --help` (three runs, sampled every 50 µs):
 * compiling modules, Node's own `node:` modules, our code and its packages, GC, the rest.
 */
async function nodeProfile(dir: string): Promise<Record<string, number>> {
  const profiles = join(dir, "profiles");
  for (let i = 0; i < 3; i++) {
    await timeCommand("node", [
      "--cpu-prof",
      `--cpu-prof-dir=${profiles}`,
      "--cpu-prof-interval=50",
      BUNDLE_FILE,
      "--help",
    ], { env: process.env, cwd: dir });
  }
  const shares: Record<string, number> = {};
  let total = 0;
  for (const f of readdirSync(profiles)) {
    const p = JSON.parse(readFileSync(join(profiles, f), "utf8")) as {
      nodes: { id: number; callFrame: { functionName: string; url: string } }[];
      samples: number[];
      timeDeltas: number[];
    };
    const byId = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
    p.samples.forEach((id, i) => {
      const cf = byId.get(id)!;
      const kind = /^compile(SourceTextModule|Function)$/.test(cf.functionName)
        ? "compiling the bundle's modules"
        : cf.functionName === "(garbage collector)"
        ? "GC"
        : cf.url.startsWith("node:")
        ? "Node's own modules and loader"
        : cf.url.includes("/dist/")
        ? "our code and packages (top levels, commander)"
        : "V8 and native code";
      shares[kind] = (shares[kind] ?? 0) + p.timeDeltas[i];
      total += p.timeDeltas[i];
    });
  }
  for (const k of Object.keys(shares)) shares[k] /= total;
  return shares;
}

/** An empty program compiled by the same Bun (`--bytecode`): the binary's floor. */
async function bunFloor(dir: string): Promise<string> {
  const src = join(dir, "empty.mjs");
  const out = join(dir, "empty-binary");
  writeFileSync(src, "\n");
  const bun = join(ROOT, "node_modules", ".bin", "bun");
  await timeCommand(bun, [
    "build",
    "--compile",
    "--bytecode",
    "--format=esm",
    "--no-compile-autoload-dotenv",
    "--no-compile-autoload-bunfig",
    src,
    "--outfile",
    out,
  ], { env: process.env, cwd: dir });
  return out;
}

/** Part 1: `--help` cold starts and their floors. */
async function coldStarts(runs: number, say: (l: string) => void) {
  const tmp = tempDir("runtimes-help");
  try {
    const env = { ...process.env, NO_COLOR: "1", PROVISIONING_HOME: join(tmp.dir, "home") };
    say("compiling an empty program with the same Bun (the binary's floor)");
    const floor = await bunFloor(tmp.dir);
    say(`--help cold starts, ${runs} interleaved runs each`);
    const t = await interleaved(
      {
        nodeFloor: ["node", ["-e", "0"]],
        bunFloor: [floor, []],
        binary: cli("binary", ["--help"]),
        binaryVersion: cli("binary", ["--version"]),
        node: cli("node", ["--help"]),
        nodeVersion: cli("node", ["--version"]),
        deno: cli("deno", ["--help"]),
      },
      runs,
      { env, cwd: tmp.dir },
    );
    say("one CPU profile of the bundle's --help (three runs)");
    const profile = await nodeProfile(tmp.dir);
    const m = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v)]));
    return { samples: t, m, profile, load: staticLoad(BUNDLE_FILE) };
  } finally {
    tmp.remove();
  }
}

/** Part 2: `platform status` with 7 programs, ours (three runtimes) vs supervisorctl. */
async function statusVsSupervisorctl(runs: number, say: (l: string) => void) {
  const apps = (await freePorts(7)).map((p, i) => httpApp(`svc-${i}`, p, 100));
  const waitHealthy = (ms = 60_000) =>
    until(
      async () =>
        (await Promise.all(apps.map((a) => healthStatus(a.port)))).every((s) => s === 200),
      ms,
    );
  say("ours: 7 programs, platform status by the binary, the bundle and Deno");
  const ours = await startOurs(apps);
  let t: Record<string, number[]>;
  let inProcess: number[] = [];
  try {
    await waitHealthy();
    const env = { ...process.env, NO_COLOR: "1", PROVISIONING_HOME: ours.home };
    const args = ["platform", "status", "--config", ours.config];
    t = await interleaved(
      {
        binary: cli("binary", args),
        binaryHelp: cli("binary", ["--help"]),
        node: cli("node", args),
        deno: cli("deno", args),
      },
      runs,
      { env, cwd: ROOT },
    );
    const p = await Platform.open({ config: ours.config, home: ours.home, env });
    for (let i = 0; i <= runs; i++) {
      const t0 = performance.now();
      await p.statusAll();
      if (i > 0) inProcess.push(performance.now() - t0);
    }
  } finally {
    await ours.stop();
  }
  say("supervisord: the same 7 programs, supervisorctl status");
  const sup = await startSupervisord(apps);
  try {
    await waitHealthy();
    const ctl: Cmd = ["/usr/bin/supervisorctl", ["-c", sup.conf, "status"]];
    await until(async () => {
      try {
        await timeCommand(...ctl, { env: process.env, cwd: ROOT });
        return true;
      } catch {
        return false; // a program not RUNNING yet (exit 3)
      }
    }, 30_000);
    const s = await interleaved(
      {
        supervisorctl: ctl,
        python: ["python3", ["-c", "pass"]],
      },
      runs,
      { env: process.env, cwd: ROOT },
    );
    t = { ...t, ...s };
  } finally {
    await sup.stop();
  }
  inProcess = inProcess.length ? inProcess : [NaN];
  const m = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v)]));
  return { samples: t, m, inProcess: median(inProcess) };
}

/** Part 3: the supervisor's RSS with `n` services, started by each runtime's CLI. */
async function supervisorRss(n: number, say: (l: string) => void) {
  const apps = (await freePorts(n)).map((p, i) => httpApp(`idle-${i}`, p, 100));
  const rss: Record<string, { mib: number; anonMib: number; exe: string }> = {};
  for (const runtime of ["binary", "deno", "node"] as const) {
    say(`supervisor RSS: ${n} services started by the ${runtime} CLI`);
    const tmp = tempDir(`runtimes-rss-${runtime}`);
    const home = join(tmp.dir, "home");
    const config = join(tmp.dir, "services.toml");
    writeFileSync(config, oursToml(apps, 10));
    const env = { ...process.env, NO_COLOR: "1", PROVISIONING_HOME: home };
    const run = (args: string[]) =>
      timeCommand(...cli(runtime, [...args, "--config", config]), { env, cwd: tmp.dir });
    const stop = async () => {
      running.delete(stop);
      await run(["platform", "stop", "--force"]).catch(() => {});
      await timeCommand(...cli(runtime, ["supervisor", "stop"]), { env, cwd: tmp.dir })
        .catch(() => {});
      tmp.remove();
    };
    running.add(stop);
    try {
      await run(["services", "start", ...apps.map((a) => a.name)]);
      await until(
        async () =>
          (await Promise.all(apps.map((a) => healthStatus(a.port)))).every((s) => s === 200),
        60_000,
      );
      await sleep(SETTLE_MS);
      const pid = Number(readFileSync(join(home, "run", "supervisor.pid"), "utf8").split(" ")[0]);
      // RSS, and its anonymous part (heap, stacks: what the process costs; the rest is clean
      // pages of its executable, shared and reclaimable).
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
      const kb = (key: string) =>
        Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(rollup)?.[1]);
      const exe = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0];
      const expected = runtime === "binary" ? BINARY_FILE : runtime === "node" ? "node" : "deno";
      if (!exe.endsWith(expected)) {
        throw new Error(`The ${runtime} CLI's supervisor runs "${exe}", not ${expected}`);
      }
      rss[runtime] = { mib: kb("Rss") / 1024, anonMib: kb("Anonymous") / 1024, exe };
    } finally {
      await stop();
    }
  }
  return rss;
}

/** Poll `cond` every 20 ms until it holds; throws after `ms`. */
async function until(cond: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms`);
    await sleep(20);
  }
}

/** Run the runtimes benchmark; its headline is the binary's `--help` / `node -e 0`. */
export async function benchRuntimes(opts: RuntimesBenchOptions = {}): Promise<BenchResult> {
  const { runs = 21, services = 50 } = opts;
  const say = opts.onProgress ?? (() => {});
  if (!existsSync("/usr/bin/supervisorctl")) {
    throw new Error("Cannot compare with supervisord: apt-get install supervisor");
  }
  say("building dist/ when out of date");
  await ensureBuilt("binary");
  const help = await coldStarts(runs, say);
  const status = await statusVsSupervisorctl(runs, say);
  const rss = await supervisorRss(services, say);

  const h = help.m;
  const s = status.m;
  const binaryOk = h.binary <= 40 && h.binary / h.nodeFloor <= 0.5;
  const nodeOk = h.node / h.nodeFloor <= 1.2;
  const statusOk = s.binary / s.supervisorctl <= 0.3;
  const smaller = rss.binary.mib <= rss.deno.mib ? "binary" : "deno";
  const mib = (r: { mib: number; anonMib: number }) =>
    `${r.mib.toFixed(1)} MiB (${r.anonMib.toFixed(1)})`;
  const shares = Object.entries(help.profile).sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${(v * 100).toFixed(0)} %`).join(", ");
  return judge({
    name: "runtimes",
    label: `--help cold start, binary vs node -e 0 (median of ${runs})`,
    value: h.binary,
    unit: "ms",
    bound: h.nodeFloor,
    boundLabel: "node -e 0",
    goal: 0.5,
    samples: help.samples.binary,
    details: [
      `--help: binary ${ms(h.binary)} · Node bundle ${ms(h.node)} · deno run cli.ts ${
        ms(h.deno)
      } · node -e 0 ${ms(h.nodeFloor)}`,
      `binary ≤ 40 ms and ≤ 0.50 × node -e 0: ${ms(h.binary)}, ${ratio(h.binary, h.nodeFloor)} ${
        verdict(binaryOk)
      }`,
      `Node bundle ≤ 1.20 × node -e 0: ${ratio(h.node, h.nodeFloor)} ${verdict(nodeOk)}`,
      `where the binary's time goes: an empty program from the same Bun ${
        ms(h.bunFloor)
      }, --version ${ms(h.binaryVersion)} (loading the CLI), --help ${ms(h.binary)}`,
      `where the bundle's time goes: node -e 0 ${ms(h.nodeFloor)}, --version ${
        ms(h.nodeVersion)
      }; it loads ${help.load.files} files, ${
        (help.load.bytes / 1024).toFixed(0)
      } KiB of JavaScript; CPU profile: ${shares}`,
      `platform status, 7 running: binary ${ms(s.binary)} · supervisorctl status ${
        ms(s.supervisorctl)
      } · Node bundle ${ms(s.node)} · deno ${ms(s.deno)}`,
      `binary / supervisorctl ≤ 0.30: ${ratio(s.binary, s.supervisorctl)} ${verdict(statusOk)}`,
      `where status goes: the binary's --help ${ms(s.binaryHelp)} (start), in-process ` +
      `statusAll ${ms(status.inProcess)} (state, PIDs, 7 checks); supervisorctl: python3 -c ` +
      `pass ${ms(s.python)}, the rest is its imports and the XML-RPC call`,
      `supervisor RSS (anonymous part) with ${services} services: binary (Bun) ${
        mib(rss.binary)
      } · Deno (main.ts, V8 flags) ${mib(rss.deno)} · Node bundle (V8 flags) ${
        mib(rss.node)
      }; smaller RSS: ${smaller}`,
    ],
    data: {
      help_binary_ms: h.binary,
      help_binary_version_ms: h.binaryVersion,
      help_bun_floor_ms: h.bunFloor,
      help_node_ms: h.node,
      help_node_version_ms: h.nodeVersion,
      help_deno_ms: h.deno,
      node_floor_ms: h.nodeFloor,
      bundle_static_bytes: help.load.bytes,
      status_binary_ms: s.binary,
      status_node_ms: s.node,
      status_deno_ms: s.deno,
      status_supervisorctl_ms: s.supervisorctl,
      status_in_process_ms: status.inProcess,
      python_floor_ms: s.python,
      supervisor_rss_binary_mib: rss.binary.mib,
      supervisor_rss_deno_mib: rss.deno.mib,
      supervisor_rss_node_mib: rss.node.mib,
      supervisor_anon_binary_mib: rss.binary.anonMib,
      supervisor_anon_deno_mib: rss.deno.anonMib,
      supervisor_anon_node_mib: rss.node.anonMib,
    },
  });
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { runs: { type: "string" }, services: { type: "string" }, json: { type: "boolean" } },
  });
  process.once("SIGINT", async () => {
    await Promise.all([...running].map((f) => f()));
    process.exit(130);
  });
  const result = await benchRuntimes({
    runs: values.runs ? Number(values.runs) : undefined,
    services: values.services ? Number(values.services) : undefined,
    onProgress: (line) => !values.json && console.error(`… ${line}`),
  });
  if (values.json) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(resultLine(result));
    for (const line of result.details) console.log(`    ${line}`);
  }
}
