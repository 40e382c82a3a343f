/**
 * Cold start with lazy plugin loading vs importing every plugin eagerly: the wall time of
 * whole CLI processes — `cli.ts --help` and `cli.ts services list` (the bundled registry, binary
 * services only) — as they run, and with every bundled plugin imported first
 * (`deno run --preload scripts/_eager_plugins.ts`).
 *
 * ```sh
 * deno run -A scripts/bench_plugins.ts [--runs 15] [--json]
 * ```
 *
 * Importable: `const result = await benchPlugins({ runs: 10 })` (a `BenchResult` of
 * `scripts/bench.ts`: value = lazy `--help`, bound = eager `--help`, goal ≤ 1.00; the
 * `services list` medians are in `details` and `data`).
 *
 * @module
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import {
  type BenchResult,
  denoBinary,
  fmt,
  judge,
  median,
  resultLine,
  ROOT,
  tempDir,
} from "./_bench_util.ts";

/** Options of {@linkcode benchPlugins}. */
export interface PluginBenchOptions {
  /** Measured runs per command (default 15); one more warms up first. */
  runs?: number;
}

/** Milliseconds of wall time of one process run to its end; throws with its output on failure. */
function timeRun(args: string[], env: Record<string, string | undefined>): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(denoBinary(), args, { cwd: ROOT, env });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.once("error", reject);
    child.once("close", (code) => {
      if (code === 0) resolve(performance.now() - t0);
      else reject(new Error(`"deno ${args.join(" ")}" exited with ${code}:\n${output.trim()}`));
    });
  });
}

/** Measure the four cases, interleaved so that machine noise hits them alike. */
export async function benchPlugins(opts: PluginBenchOptions = {}): Promise<BenchResult> {
  const { runs = 15 } = opts;
  const tmp = tempDir("plugins");
  try {
    const env = {
      ...process.env,
      PROVISIONING_HOME: join(tmp.dir, "home"),
      PROVISIONING_SERVICES: join(ROOT, "config", "services.toml"),
      NO_COLOR: "1",
    };
    const eager = ["--preload", join(ROOT, "scripts", "_eager_plugins.ts")];
    const cli = join(ROOT, "cli.ts");
    const cases: Record<string, string[]> = {
      help_lazy: ["run", "-A", cli, "--help"],
      help_eager: ["run", "-A", ...eager, cli, "--help"],
      list_lazy: ["run", "-A", cli, "services", "list"],
      list_eager: ["run", "-A", ...eager, cli, "services", "list"],
    };
    const samples: Record<string, number[]> = {};
    for (let i = 0; i <= runs; i++) {
      for (const [name, args] of Object.entries(cases)) {
        const ms = await timeRun(args, env);
        if (i > 0) (samples[name] ??= []).push(ms); // run 0 warms the module cache
      }
    }
    const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
    return judge({
      name: "plugins",
      label: "`--help` cold start, lazy plugins",
      value: m.help_lazy,
      unit: "ms",
      bound: m.help_eager,
      boundLabel: "eager",
      goal: 1.0,
      samples: samples.help_lazy,
      details: [
        `--help: lazy ${fmt(m.help_lazy, "ms")}, eager ${fmt(m.help_eager, "ms")}`,
        `services list: lazy ${fmt(m.list_lazy, "ms")}, eager ${fmt(m.list_eager, "ms")}`,
        `medians of ${runs} runs each (deno run -A; eager = --preload scripts/_eager_plugins.ts)`,
      ],
      data: Object.fromEntries(Object.entries(m).map(([k, v]) => [`${k}_ms`, v])),
    });
  } finally {
    tmp.remove();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { runs: { type: "string" }, json: { type: "boolean" } },
  });
  const result = await benchPlugins({ runs: values.runs ? Number(values.runs) : undefined });
  if (values.json) console.log(JSON.stringify(result, null, 2));
  else console.log([resultLine(result), ...result.details.map((d) => `  ${d}`)].join("\n"));
}
