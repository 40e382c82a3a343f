/**
 * The platforms the bring-up benchmarks start, as data, and their registry text: the seven
 * demo services (the demo graph and check types, every service ready 300 ms after its process
 * starts) and a seeded random DAG, on free ports. Each service is a busybox httpd behind a
 * `sleep` where busybox is installed (ready exactly N ms after spawn), else
 * `examples/platform/service.mjs --ready-from process` (Node's boot counts against N).
 *
 * @module
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Platform, stopServices, stopSupervisor } from "../mod.ts";
import { mulberry32 } from "./gen_registry.ts";
import {
  freePorts,
  healthStatus,
  median,
  PROBE_SCRIPT,
  q,
  running,
  scriptCommand,
  SERVICE_SCRIPT,
  tempDir,
} from "./_bench_util.ts";

/** One service of a benchmark platform. */
export interface ServiceSpec {
  name: string;
  dependencies: string[];
  /** Ready this many milliseconds after its process starts. */
  readyMs: number;
  check: "http" | "tcp" | "command" | "file";
}

/** The demo graph (examples/platform/services.toml): longest chain 3 services. */
export function demoGraph(readyMs = 300): ServiceSpec[] {
  const s = (name: string, check: ServiceSpec["check"], dependencies: string[] = []) => ({
    name,
    dependencies,
    readyMs,
    check,
  });
  return [
    s("orchestrator", "http"),
    s("control-center", "http", ["orchestrator"]),
    s("coredns", "tcp"),
    s("gitea", "command"),
    s("oci-registry", "file"),
    s("mcp-server", "http", ["orchestrator"]),
    s("api-gateway", "http", ["orchestrator", "control-center", "mcp-server"]),
  ];
}

/** Options of {@linkcode randomDag}. */
export interface DagOptions {
  seed?: number;
  /** Most dependencies per service, each on an earlier one (default 3). */
  maxDeps?: number;
  /** Ready delays are uniform in [minMs, maxMs] (default 50–300). */
  minMs?: number;
  maxMs?: number;
}

/** `n` services `dag-00` ... with seeded random dependencies on earlier ones; all HTTP. */
export function randomDag(n: number, opts: DagOptions = {}): ServiceSpec[] {
  const { seed = 42, maxDeps = 3, minMs = 50, maxMs = 300 } = opts;
  const rng = mulberry32(seed);
  const name = (i: number) => `dag-${String(i).padStart(2, "0")}`;
  const specs: ServiceSpec[] = [];
  for (let i = 0; i < n; i++) {
    const deps = new Set<number>();
    const want = Math.floor(rng() * (Math.min(maxDeps, i) + 1));
    while (deps.size < want) deps.add(Math.floor(rng() * i));
    specs.push({
      name: name(i),
      dependencies: [...deps].sort((a, b) => a - b).map(name),
      readyMs: minMs + Math.floor(rng() * (maxMs - minMs + 1)),
      check: "http",
    });
  }
  return specs;
}

/** busybox, when installed: a service program whose own start costs ~1 ms instead of Node's ~200. */
export const BUSYBOX = ["/bin/busybox", "/usr/bin/busybox"].find((f) => existsSync(f));

/**
 * The registry text of `specs`, every service on a free port; ready files go to `dir`.
 *
 * `program: "busybox"` (the default where busybox is installed) makes each service
 * `sh -c 'sleep <ready>; exec busybox httpd ...'`: ready the stated time after spawn, to the
 * millisecond, so the ratio measures the manager and not how long seven Node processes take to
 * boot on two cores. It logs the same `starting` / `ready` lines as service.mjs. `"node"` runs
 * examples/platform/service.mjs with `--ready-from process` (its boot counts against the delay).
 */
export async function registryToml(
  specs: ServiceSpec[],
  dir: string,
  opts: { program?: "busybox" | "node"; headStartMs?: number } = {},
): Promise<string> {
  const headStart = opts.headStartMs ?? 0;
  const program = opts.program ?? (BUSYBOX ? "busybox" : "node");
  const ports = await freePorts(specs.length);
  const run = scriptCommand();
  const out = [
    `# Written by scripts/bench.ts (service program: ${program}, head start ${headStart} ms)`,
    "",
  ];
  const www = join(dir, "www");
  mkdirSync(www, { recursive: true });
  writeFileSync(join(www, "health"), "ok\n");
  specs.forEach((s, i) => {
    const port = ports[i];
    const url = `http://127.0.0.1:${port}/health`;
    const kind = s.check === "tcp" ? "tcp" : s.check === "file" ? "plain" : "http";
    const readyFile = join(dir, `${s.name}.ready`);
    const now = `$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)`;
    const args = program === "busybox"
      ? [
        "-c",
        [
          `echo "${now} ${s.name} starting (pid $$$$, kind ${kind}, 0 ms after process start)"`,
          `sleep ${(Math.max(0, s.readyMs - headStart) / 1000).toFixed(3)}`,
          ...(kind === "plain" ? [`touch ${q(readyFile)}`] : []),
          `echo "${now} ${s.name} ready"`,
          `exec ${BUSYBOX} httpd -f -p 127.0.0.1:${port} -h ${q(www)}`,
        ].join("; "),
      ]
      : [
        ...run.args(SERVICE_SCRIPT),
        ...["--name", s.name, "--kind", kind, "--ready-after", String(s.readyMs)],
        ...["--ready-from", "process"],
        ...(kind === "plain" ? ["--ready-file", readyFile] : ["--port", String(port)]),
      ];
    const probe = program === "busybox"
      ? `${BUSYBOX} wget -q -O /dev/null ${url}`
      : `${run.command} ${run.args(PROBE_SCRIPT).join(" ")} ${url}`;
    const check = {
      http: [`endpoint = ${q(url)}`],
      tcp: [`host = "127.0.0.1"`, `port = ${port}`],
      command: [`command = ${q(probe)}`],
      file: [`path = ${q(readyFile)}`],
    }[s.check];
    const t = `services.${s.name}`;
    out.push(
      `[${t}]`,
      `dependencies = [${s.dependencies.map(q).join(", ")}]`,
      `[${t}.deployment]`,
      `mode = "binary"`,
      `[${t}.deployment.binary]`,
      `binary_path = ${q(program === "busybox" ? "/bin/sh" : run.command)}`,
      `args = [${args.map(q).join(", ")}]`,
      `[${t}.health_check]`,
      `type = ${q(s.check)}`,
      "interval = 2",
      "timeout = 2",
      `[${t}.health_check.${s.check}]`,
      ...check,
      `[${t}.startup]`,
      "start_timeout = 60",
      `[${t}.shutdown]`,
      "timeout = 5",
      "",
    );
  });
  return out.join("\n");
}

/**
 * How late the busybox service program is with no manager at all: spawn
 * `sh -c 'echo …; sleep N; echo …; exec busybox httpd'` directly, poll it every millisecond,
 * and take the median of (spawn → healthy) − N over `runs` (about 7 ms here: the shell, the
 * `date` and `sleep` processes, httpd's bind). The bring-up benchmarks shorten every sleep by
 * this much, so each service really is ready N ms after its spawn, as the goal assumes; what
 * remains above the bound is the manager's.
 */
export async function programHeadStart(dir: string, runs = 7): Promise<number> {
  if (!BUSYBOX) return 0;
  const [port] = await freePorts(1);
  const www = join(dir, "www");
  mkdirSync(www, { recursive: true });
  writeFileSync(join(www, "health"), "ok\n");
  const readyMs = 100;
  const now = `$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)`;
  const script = [
    `echo "${now} calibration starting"`,
    `sleep ${(readyMs / 1000).toFixed(3)}`,
    `echo "${now} calibration ready"`,
    `exec ${BUSYBOX} httpd -f -p 127.0.0.1:${port} -h ${q(www)}`,
  ].join("; ");
  const late: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const child = spawn("/bin/sh", ["-c", script], { stdio: "ignore" });
    const exited = new Promise((r) => child.once("exit", r));
    try {
      while ((await healthStatus(port)) !== 200) {
        if (performance.now() - t0 > 10_000) throw new Error("calibration: httpd never answered");
        await new Promise((r) => setTimeout(r, 1));
      }
      late.push(performance.now() - t0 - readyMs);
    } finally {
      child.kill("SIGKILL");
      await exited;
    }
  }
  return Math.max(0, Math.round(median(late)));
}

/** A benchmark's platform of `specs` in a temp dir, and how to tear it all down. */
export interface BenchPlatform {
  /** How much earlier than their stated ready time the service programs were told to be ready. */
  headStartMs: number;
  dir: string;
  home: string;
  config: string;
  env: Record<string, string | undefined>;
  platform: Platform;
  /** Stop every service and the supervisor, remove the temp dir (also run on Ctrl+C). */
  close(): Promise<void>;
}

/**
 * Write the registry of `specs` into a temp dir and open it with its own PROVISIONING_HOME;
 * `env` also names the registry (PROVISIONING_SERVICES) for CLI processes.
 */
export async function openBenchPlatform(
  prefix: string,
  specs: ServiceSpec[],
  extraEnv: Record<string, string> = {},
): Promise<BenchPlatform> {
  const tmp = tempDir(prefix);
  const home = join(tmp.dir, "home");
  let platform: Platform | undefined;
  const close = async () => {
    running.delete(close);
    if (platform) await stopServices(platform, [], { force: true }).catch(() => {});
    await stopSupervisor(home).catch(() => false); // started on demand by startServices
    tmp.remove();
  };
  running.add(close);
  try {
    const config = join(tmp.dir, "services.toml");
    const headStartMs = await programHeadStart(tmp.dir);
    writeFileSync(config, await registryToml(specs, tmp.dir, { headStartMs }));
    const env = {
      ...process.env,
      PROVISIONING_HOME: home,
      PROVISIONING_SERVICES: config,
      ...extraEnv,
    };
    platform = await Platform.open({ config, home, env });
    return { headStartMs, dir: tmp.dir, home, config, env, platform, close };
  } catch (e) {
    await close();
    throw e;
  }
}
