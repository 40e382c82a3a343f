/**
 * Benchmark 4, `platform status` latency: with the seven demo services running, the wall time
 * of whole CLI processes (`deno run -A cli.ts platform status`, then with `--json`), against the
 * cold-start floor of `deno run -A cli.ts --help`. For comparison, the same status in-process
 * (`Platform.statusAll`), which is what is left once the runtime has started.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { startServices } from "../mod.ts";
import { demoGraph, openBenchPlatform } from "./_bench_graphs.ts";
import { type BenchResult, denoBinary, fmt, median, ROOT } from "./_bench_util.ts";

/** Options of {@linkcode benchStatus}. */
export interface StatusBenchOptions {
  /** Measured runs per command (default 15); one more warms up first. */
  runs?: number;
}

/** Run a command to its end; milliseconds of wall time. Throws with its output on failure. */
export function timeCommand(
  command: string,
  args: string[],
  opts: { env: Record<string, string | undefined>; cwd: string },
): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(command, args, { env: opts.env, cwd: opts.cwd });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.once("error", reject);
    child.once("close", (code) => {
      const ms = performance.now() - t0;
      if (code === 0) resolve(ms);
      else reject(new Error(`"${args.join(" ")}" exited with code ${code}:\n${output.trim()}`));
    });
  });
}

/** Run benchmark 4. */
export async function benchStatus(opts: StatusBenchOptions = {}): Promise<BenchResult> {
  const { runs = 15 } = opts;
  const specs = demoGraph();
  const bench = await openBenchPlatform("status", specs, { NO_COLOR: "1" });
  const { env, platform: p } = bench;
  try {
    const up = await startServices(p, specs.map((s) => s.name));
    if (!up.ok) throw new Error("Cannot start the seven demo services for the status benchmark");

    const deno = denoBinary();
    const cli = join(ROOT, "cli.ts");
    const measure = async (args: string[]) => {
      const times: number[] = [];
      for (let i = 0; i < runs + 1; i++) {
        const ms = await timeCommand(deno, ["run", "-A", cli, ...args], { env, cwd: ROOT });
        if (i > 0) times.push(ms);
      }
      return times;
    };
    const status = await measure(["platform", "status"]);
    const json = await measure(["platform", "status", "--json"]);
    const help = await measure(["--help"]);
    const inProcess: number[] = [];
    for (let i = 0; i < runs + 1; i++) {
      const t = performance.now();
      await p.statusAll();
      if (i > 0) inProcess.push(performance.now() - t);
    }
    // Where the in-process time goes: one health check per service, all at once as statusAll.
    const checks = await Promise.all(specs.map((s) => p.health(s.name)));
    const slowest = checks.reduce((a, b) => (b.duration_ms > a.duration_ms ? b : a));
    const data = {
      status_ms: median(status),
      status_json_ms: median(json),
      help_ms: median(help),
      in_process_ms: median(inProcess),
    };
    const ms = (v: number) => fmt(v, "ms");
    return {
      name: "status",
      label: "platform status, 7 services running (CLI process)",
      value: data.status_ms,
      unit: "ms",
      bound: data.help_ms,
      boundLabel: "--help",
      ratio: data.status_ms / data.help_ms,
      samples: status,
      data,
      details: [
        `medians of ${runs}: platform status ${ms(data.status_ms)}, platform status --json ${
          ms(data.status_json_ms)
        }, --help ${ms(data.help_ms)} (cold-start floor)`,
        `in-process Platform.statusAll() (state, PIDs, one health check each): ${
          ms(data.in_process_ms)
        }; slowest check: ${slowest.name} (${slowest.check_type}) ${slowest.duration_ms} ms; ` +
        `checks: ${checks.map((c) => `${c.name} ${c.duration_ms}`).join(", ")} ms`,
      ],
    };
  } finally {
    await bench.close();
  }
}
