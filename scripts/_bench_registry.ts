/**
 * Benchmark 1, registry scale: validate and plan 1,000 generated services in-process —
 * `Platform.open` (discover plugins, read, parse, expand, schema, plugin tables, graph) with an
 * empty temp `PROVISIONING_HOME`, then `planStart` of every service. Median over warm runs,
 * then the same work split into the loader's steps so a miss says where the time goes.
 *
 * @module
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { parse } from "smol-toml";
import { expandTree } from "../core/registry/_expand.ts";
import { locateKeys } from "../core/registry/_toml_lines.ts";
import { Graph } from "../core/graph/graph.ts";
import { runtimeStatuses } from "../core/lifecycle/plan.ts";
import { serviceSchema } from "../core/registry/schema.ts";
import { statePaths } from "../core/state/files.ts";
import type { Service } from "../core/types.ts";
import { planStart, Platform, PluginRegistry } from "../mod.ts";
import { generateRegistry } from "./gen_registry.ts";
import { type BenchResult, judge, median, running, tempDir } from "./_bench_util.ts";

/** Options of {@linkcode benchRegistry}. */
export interface RegistryBenchOptions {
  /** Services to generate (default 1000). */
  services?: number;
  /** Measured runs (default 20); three more warm up first. */
  runs?: number;
  /** The goal: median at most this many milliseconds (default 150). */
  goalMs?: number;
}

/** Run benchmark 1. */
export async function benchRegistry(opts: RegistryBenchOptions = {}): Promise<BenchResult> {
  const { services = 1000, runs = 20, goalMs = 150 } = opts;
  const tmp = tempDir("registry");
  const cleanup = () => Promise.resolve(tmp.remove());
  running.add(cleanup);
  try {
    const file = join(tmp.dir, "services.toml");
    const home = join(tmp.dir, "home"); // empty: nothing runs, nothing was ever started
    mkdirSync(home);
    const text = generateRegistry(services);
    writeFileSync(file, text);
    const env = { ...process.env, PROVISIONING_HOME: home };

    const open: number[] = [];
    const plan: number[] = [];
    const total: number[] = [];
    for (let i = 0; i < runs + 3; i++) {
      const t0 = performance.now();
      const p = await Platform.open({ config: file, home, env });
      const t1 = performance.now();
      const result = await planStart(p, p.services.map((s) => s.name));
      const t2 = performance.now();
      if (result.services.length !== services) {
        throw new Error(`Cannot plan: ${result.services.length} of ${services} planned`);
      }
      if (i < 3) continue;
      open.push(t1 - t0);
      plan.push(t2 - t1);
      total.push(t2 - t0);
    }
    const steps = await loaderSteps(text, home, env, runs);
    const data: Record<string, number> = {
      open_ms: median(open),
      plan_ms: median(plan),
      ...Object.fromEntries(Object.entries(steps).map(([k, v]) => [`${k}_ms`, v])),
    };
    const ms = (v: number) => `${v.toFixed(1)} ms`;
    return judge({
      name: "registry",
      label: `registry ${services} services (validate + plan)`,
      value: median(total),
      unit: "ms",
      bound: goalMs,
      boundLabel: "goal",
      goal: 1,
      samples: total,
      data,
      details: [
        `Platform.open ${ms(data.open_ms)} + planStart ${ms(data.plan_ms)} (medians of ${runs})`,
        `loader steps: parse ${ms(steps.parse)}, expand ${ms(steps.expand)}, schema ${
          ms(steps.schema)
        }, plugin tables ${ms(steps.plugin_tables)}, graph ${ms(steps.graph)}`,
        `key lines (located only when there are issues; skipped for a valid file): ${
          ms(steps.locate_lines)
        }`,
        `planStart: runtime status of every service ${ms(steps.runtime_status)} ` +
        `(state + PID file reads), order/waves/critical path ${ms(steps.plan_graph)}`,
      ],
    });
  } finally {
    tmp.remove();
    running.delete(cleanup);
  }
}

/** Median milliseconds of each loader and planner step, run alone on the same input. */
async function loaderSteps(
  text: string,
  home: string,
  env: Record<string, string | undefined>,
  runs: number,
): Promise<Record<string, number>> {
  const plugins = PluginRegistry.discover({ cwd: home, home, env });
  const binary = await plugins.driver("binary");
  const http = await plugins.check("http");
  const times: Record<string, number[]> = {};
  const time = async <T>(step: string, f: () => T | Promise<T>): Promise<T> => {
    const t = performance.now();
    const out = await f();
    (times[step] ??= []).push(performance.now() - t);
    return out;
  };
  for (let i = 0; i < runs; i++) {
    const data = await time("parse", () => parse(text) as { services: Record<string, unknown> });
    await time("locate_lines", () => locateKeys(text));
    await time("expand", () => expandTree(data.services, env, ["services"]));
    const svcs = await time("schema", () =>
      Object.entries(data.services).map(([name, raw]) => ({
        ...serviceSchema.parse(raw),
        name,
      })));
    await time("plugin_tables", () => {
      for (const s of svcs) {
        binary.config.parse(s.deployment.binary);
        http.config.parse(s.health_check.http);
      }
    });
    const graph = await time("graph", () => {
      const g = new Graph(svcs);
      g.problems();
      return g;
    });
    const names = graph.names;
    // Parsed services stand in for loaded ones: the planner needs names, modes and the graph.
    const loaded = svcs as unknown as Service[];
    const platform = new Platform(
      {
        file: "",
        source: "bench",
        services: loaded,
        byName: new Map(loaded.map((s) => [s.name, s])),
      },
      { plugins, paths: statePaths(home), env },
    );
    await time("runtime_status", () => runtimeStatuses(platform, names));
    const stopped = new Map(names.map((n) => [n, "stopped" as const]));
    await time("plan_graph", () => planStart(platform, names, { statuses: stopped }));
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}
