/**
 * `deno task bench [NAME...] [--runs N] [--json]`: the benchmarks, each printed as a ratio
 * against its goal, e.g.
 *
 * ```
 * bring-up 7 services: 0.98 s / bound 0.90 s = 1.09 (goal ≤ 1.10) PASS
 * ```
 *
 * | name       | what                                                                 | goal   |
 * | ---------- | -------------------------------------------------------------------- | ------ |
 * | `registry` | validate + plan 1,000 generated services in-process (median, warm)   | 150 ms |
 * | `bring-up` | the seven demo services, each ready 300 ms after spawn / 900 ms      | ≤ 1.10 |
 * | `dag`      | 60 services, seeded random DAG, ready 50–300 ms / weighted long path | ≤ 1.15 |
 * | `status`   | `platform status` CLI latency with the demo running (vs `--help`)    | none   |
 * | `checks`   | http check CPU per attempt: its plain-socket request vs `fetch`      | ≤ 0.75 |
 * | `kubernetes` | rollout complete (API test double) → our `healthy` event, median   | 100 ms |
 * | `kubernetes-failfast` | a fail-fast reason shown by the double → our `failed` event | ≤ 2 s |
 * | `kubernetes-list` | `services list` cold start with kubernetes services / binary  | ≤ 1.10 |
 * | `logs`     | log writer CPU per second at 50 MiB/s, rotating (10 MB, keep 3) / `cat >> file` | none |
 * | `remote`   | 3-level graph across two hosts (B's agent forwards level 1) / critical path | ≤ 1.15 |
 * | `agent`    | kill -9 → SSE `status` event, after the supervisor's record; idle, API p50/p99 | 50 ms |
 * | `runtimes` | `--help` of the binary / `node -e 0` (bundle ≤ 1.2), status / supervisorctl, RSS | ≤ 0.50 |
 * | `scale`    | 200 / 1,000 sleep services, 9-wave DAG: `platform start` / `pm2 start`; stop, idle | ≤ 1.00 |
 *
 * A missed goal is reported, not an error: the script exits 0 unless a benchmark crashed (1).
 * Every benchmark works in its own temp `PROVISIONING_HOME` on free ports and stops what it
 * started, also on Ctrl+C.
 *
 * Importable: `const results = await runBench({ only: ["registry"] })`.
 *
 * @module
 */
import $ from "dax";
import { availableParallelism, loadavg } from "node:os";
import process from "node:process";
import { parseArgs } from "node:util";
import { benchBringUp } from "./_bench_bringup.ts";
import { demoGraph, randomDag } from "./_bench_graphs.ts";
import { benchRegistry } from "./_bench_registry.ts";
import { benchStatus } from "./_bench_status.ts";
import { benchPlugins } from "./bench_plugins.ts";
import { benchChecks } from "./bench_checks.ts";
import {
  benchKubernetesFailFast,
  benchKubernetesList,
  benchKubernetesRollout,
} from "./bench_kubernetes.ts";
import { benchSupervision } from "./bench_supervision.ts";
import { benchLogs } from "./bench_logs.ts";
import { benchAgent } from "./bench_agent.ts";
import { benchRemote } from "./bench_remote.ts";
import { benchRuntimes } from "./bench_runtimes.ts";
import { benchScale } from "./bench_scale.ts";
import { type BenchResult, resultLine, running } from "./_bench_util.ts";

export type { BenchResult };

/** Options of {@linkcode runBench}. */
export interface BenchOptions {
  /** Benchmark names to run (default: all, in the order of {@linkcode BENCHMARKS}). */
  only?: string[];
  /** Measured runs of each benchmark (default: its own, 20 / 5 / 5 / 15). */
  runs?: number;
  /** Called before each benchmark starts. */
  onStart?: (name: string) => void;
  /** Called with each result as soon as it is known. */
  onResult?: (result: BenchResult) => void;
}

/** Every benchmark by name, with a one-line description. */
export const BENCHMARKS: Record<
  string,
  { about: string; run: (runs?: number) => Promise<BenchResult> }
> = {
  registry: {
    about: "validate + plan 1,000 generated services (goal: median ≤ 150 ms)",
    run: (runs) => benchRegistry({ runs }),
  },
  "bring-up": {
    about: "start the 7 demo services, each ready 300 ms after spawn (goal: ≤ 1.10 × bound)",
    run: (runs) =>
      benchBringUp(
        { name: "bring-up", label: "bring-up 7 services", goal: 1.10 },
        demoGraph(300),
        { runs },
      ),
  },
  dag: {
    about: "start a 60-service seeded random DAG, ready 50–300 ms (goal: ≤ 1.15 × bound)",
    run: (runs) =>
      benchBringUp(
        { name: "dag", label: "bring-up 60-service random DAG", goal: 1.15 },
        randomDag(60, { seed: 42 }),
        { runs },
      ),
  },
  status: {
    about: "`platform status` CLI latency with the 7 demo services running (no goal)",
    run: (runs) => benchStatus({ runs }),
  },
  plugins: {
    about: "cold start of --help and services list: lazy plugin loading vs every plugin eagerly",
    run: (runs) => benchPlugins({ runs }),
  },
  checks: {
    about: "http check CPU per attempt: its plain-socket request vs fetch (goal: ≤ 0.75)",
    run: (runs) => benchChecks({ runs }),
  },
  supervision: {
    about: "kill -9 → healthy vs PM2 / no manager (≤ 1.10 / ≤ 1.30); idle cost, 50 services",
    run: (runs) => benchSupervision({ runs }),
  },
  kubernetes: {
    about: "rollout complete (API test double) → healthy event (goal: median ≤ 100 ms)",
    run: (runs) => benchKubernetesRollout({ runs }),
  },
  "kubernetes-failfast": {
    about: "each fail-fast reason shown by the API test double → failed event (goal: ≤ 2 s)",
    run: (runs) => benchKubernetesFailFast({ runs }),
  },
  "kubernetes-list": {
    about: "services list cold start, kubernetes services vs binary only (goal: ≤ 1.10)",
    run: (runs) => benchKubernetesList({ runs }),
  },
  logs: {
    about: "log writer CPU at 50 MiB/s with rotation vs cat >> file; log folder vs its bound",
    run: (runs) => benchLogs({ runs }),
  },
  remote: {
    about: "3-level graph across two hosts (goal: ≤ 1.15 × bound); status of 20 remote services",
    run: (runs) => benchRemote({ runs }),
  },
  agent: {
    about: "kill -9 → SSE status event (goal: ≤ 50 ms after the supervisor's record); idle, API",
    run: (runs) => benchAgent({ runs }),
  },
  runtimes: {
    about: "binary / Node bundle / Deno: --help vs node -e 0, status vs supervisorctl, RSS",
    run: (runs) => benchRuntimes({ runs }),
  },
  scale: {
    about: "200 / 1,000 services, 9-wave DAG, CLI start vs pm2 start (≤ 1.0); stop, status, idle",
    run: (runs) => benchScale({ runs }),
  },
};

/**
 * Run the benchmarks (all, or `opts.only`) one after another. A benchmark that throws gives a
 * result with `error` set; the others still run.
 */
export async function runBench(opts: BenchOptions = {}): Promise<BenchResult[]> {
  const names = opts.only?.length ? opts.only : Object.keys(BENCHMARKS);
  const unknown = names.filter((n) => !(n in BENCHMARKS));
  if (unknown.length) {
    throw new RangeError(
      `Cannot run benchmark "${unknown[0]}": available: ${Object.keys(BENCHMARKS).join(", ")}`,
    );
  }
  const results: BenchResult[] = [];
  for (const name of names) {
    let result: BenchResult;
    opts.onStart?.(name);
    const load = loadavg()[0];
    try {
      result = await BENCHMARKS[name].run(opts.runs);
      result.data.load_avg_1m = load;
      result.details.push(
        `machine: ${availableParallelism()} cores, 1-minute load average ${
          load.toFixed(2)
        } at start`,
      );
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      result = {
        name,
        label: name,
        value: NaN,
        unit: "ms",
        samples: [],
        details: [],
        data: {},
        error,
      };
    }
    results.push(result);
    opts.onResult?.(result);
  }
  return results;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    allowPositionals: true,
    options: { runs: { type: "string" }, json: { type: "boolean" }, help: { type: "boolean" } },
  });
  if (values.help) {
    console.log("Usage: deno task bench [NAME...] [--runs N] [--json]\n");
    for (const [name, b] of Object.entries(BENCHMARKS)) {
      console.log(`  ${name.padEnd(10)} ${b.about}`);
    }
    process.exit(0);
  }
  const runs = values.runs === undefined ? undefined : Number(values.runs);
  if (runs !== undefined && !(Number.isInteger(runs) && runs > 0)) {
    $.logError("Cannot run:", `--runs must be a whole number > 0, got "${values.runs}"`);
    process.exit(2);
  }
  process.once("SIGINT", async () => {
    $.logWarn("Interrupted:", "stopping what the benchmarks started");
    await Promise.all([...running].map((f) => f()));
    process.exit(130);
  });
  let results: BenchResult[];
  try {
    results = await runBench({
      only: positionals,
      runs,
      onStart: (name) => $.logStep("Running", `${name}: ${BENCHMARKS[name].about}`),
      onResult: (r) => {
        if (values.json) return;
        console.log(resultLine(r));
        for (const line of r.details) console.log(`    ${line}`);
      },
    });
  } catch (e) {
    $.logError("Cannot run:", (e as Error).message);
    process.exit(2);
  }
  if (values.json) console.log(JSON.stringify(results, null, 2));
  else if (results.length > 1) {
    $.logStep(
      "Summary",
      `${new Date().toISOString().slice(0, 10)}, ${availableParallelism()} cores`,
    );
    for (const r of results) console.log(resultLine(r));
  }
  process.exit(results.some((r) => r.error) ? 1 : 0);
}
