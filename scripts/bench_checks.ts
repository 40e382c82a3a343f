/**
 * What the http check's own HTTP/1.1 request buys: CPU per attempt of the check as it runs
 * (one request on a plain socket, judged by its status line: `checks/http.ts`) against the
 * runtime's `fetch` with `Connection: close` (what it would be without it), against the same
 * local server, in the same process, interleaved in rounds. The server runs in a child process,
 * so only the client's CPU is counted. Goal: ≤ 0.75 × fetch (the plain socket stays only while
 * it saves a quarter of the CPU of a supervisor that mostly runs checks).
 *
 * ```sh
 * deno run -A scripts/bench_checks.ts [--runs 5] [--json]
 * ```
 *
 * @module
 */
import { spawn } from "node:child_process";
import process from "node:process";
import { parseArgs } from "node:util";
import http from "../checks/http.ts";
import { type BenchResult, judge, median, resultLine } from "./_bench_util.ts";

/** Options of {@linkcode benchChecks}. */
export interface ChecksBenchOptions {
  /** Measured rounds (default 5); each round runs `attempts` of each client. */
  runs?: number;
  attempts?: number;
}

/** A tiny HTTP server in a child Node process; resolves with its port and a stopper. */
async function server(): Promise<{ port: number; stop: () => Promise<void> }> {
  const code = `require("node:http").createServer((q, s) => { s.writeHead(200); s.end("ok"); })` +
    `.listen(0, "127.0.0.1", function () { console.log(this.address().port); });`;
  const child = spawn("node", ["-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once("data", (d) => resolve(Number(String(d).trim())));
    child.once("error", reject);
    child.once("exit", (c) => reject(new Error(`the bench server exited with ${c}`)));
  });
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGKILL");
      }),
  };
}

/** CPU milliseconds (user + system) of this process spent in `fn`. */
async function cpuMs(fn: () => Promise<void>): Promise<number> {
  const before = process.cpuUsage();
  await fn();
  const d = process.cpuUsage(before);
  return (d.user + d.system) / 1000;
}

/** Run both clients `attempts` times per round; the result is plain / fetch CPU per attempt. */
export async function benchChecks(opts: ChecksBenchOptions = {}): Promise<BenchResult> {
  const { runs = 5, attempts = 500 } = opts;
  const srv = await server();
  try {
    const endpoint = `http://127.0.0.1:${srv.port}/health`;
    const cfg = http.config.parse({ endpoint });
    const ctx = () => ({
      signal: AbortSignal.timeout(5_000),
      timeoutMs: 5_000,
      service: "bench",
      env: {},
    });
    const plainOnce = async () => {
      const r = await http.run(cfg, ctx());
      if (!r.healthy) throw new Error(`the http check failed: ${r.message}`);
    };
    const fetchOnce = async () => {
      const res = await fetch(endpoint, {
        headers: { connection: "close" },
        redirect: "manual",
        signal: AbortSignal.timeout(5_000),
      });
      await res.body?.cancel().catch(() => {});
      if (res.status !== 200) throw new Error(`fetch got ${res.status}`);
    };
    const loop = (once: () => Promise<void>) => async () => {
      for (let i = 0; i < attempts; i++) await once();
    };
    await loop(plainOnce)(); // warm up both paths
    await loop(fetchOnce)();
    const plain: number[] = [];
    const viaFetch: number[] = [];
    for (let r = 0; r < runs; r++) {
      plain.push(await cpuMs(loop(plainOnce)) / attempts);
      viaFetch.push(await cpuMs(loop(fetchOnce)) / attempts);
    }
    const [p, f] = [median(plain), median(viaFetch)];
    return judge({
      name: "checks",
      label: "http check CPU per attempt, plain socket vs fetch",
      value: p,
      unit: "ms",
      bound: f,
      boundLabel: "fetch",
      goal: 0.75,
      samples: plain,
      details: [
        `median of ${runs} rounds of ${attempts} attempts against a local server: ` +
        `plain socket ${p.toFixed(3)} ms CPU, fetch ${f.toFixed(3)} ms CPU per attempt`,
        `${(process.versions as Record<string, string>).deno ? "Deno" : "Node"}: a supervisor ` +
        `with 50 services and 10 s checks runs 5 checks a second`,
      ],
      data: { plain_cpu_ms: p, fetch_cpu_ms: f },
    });
  } finally {
    await srv.stop();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { runs: { type: "string" }, json: { type: "boolean" } },
  });
  const r = await benchChecks({ runs: values.runs ? Number(values.runs) : undefined });
  console.log(values.json ? JSON.stringify(r, null, 2) : [resultLine(r), ...r.details].join("\n"));
}
