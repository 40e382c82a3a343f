/**
 * The platforms the bring-up benchmarks start, as data, and their registry text: the seven
 * demo services (the demo graph and check types, every service ready 300 ms after its process
 * starts) and a seeded random DAG. Every service is `examples/platform/service.mjs` with
 * `--ready-from process` on free ports, so "ready N ms after spawn" includes the runtime's boot.
 *
 * @module
 */
import { join } from "node:path";
import { mulberry32 } from "./gen_registry.ts";
import { freePorts, PROBE_SCRIPT, q, scriptCommand, SERVICE_SCRIPT } from "./_bench_util.ts";

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

/** The registry text of `specs`, every service on a free port; ready files go to `dir`. */
export async function registryToml(specs: ServiceSpec[], dir: string): Promise<string> {
  const ports = await freePorts(specs.length);
  const run = scriptCommand();
  const out = ["# Written by scripts/bench.ts", ""];
  specs.forEach((s, i) => {
    const port = ports[i];
    const url = `http://127.0.0.1:${port}/health`;
    const kind = s.check === "tcp" ? "tcp" : s.check === "file" ? "plain" : "http";
    const readyFile = join(dir, `${s.name}.ready`);
    const args = [
      ...run.args(SERVICE_SCRIPT),
      ...["--name", s.name, "--kind", kind, "--ready-after", String(s.readyMs)],
      ...["--ready-from", "process"],
      ...(kind === "plain" ? ["--ready-file", readyFile] : ["--port", String(port)]),
    ];
    const check = {
      http: [`endpoint = ${q(url)}`],
      tcp: [`host = "127.0.0.1"`, `port = ${port}`],
      command: [`command = ${q(`${run.command} ${run.args(PROBE_SCRIPT).join(" ")} ${url}`)}`],
      file: [`path = ${q(readyFile)}`],
    }[s.check];
    const t = `services.${s.name}`;
    out.push(
      `[${t}]`,
      `dependencies = [${s.dependencies.map(q).join(", ")}]`,
      `[${t}.deployment]`,
      `mode = "binary"`,
      `[${t}.deployment.binary]`,
      `binary_path = ${q(run.command)}`,
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
