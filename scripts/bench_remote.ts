/**
 * Remote mode across two hosts (issue 14): host B is a real `provisioning agent` process on
 * 127.0.0.3 with its own home; host A is this process (the library, as the CLI calls it) with a
 * registry naming B's services (`agent = true`, `control = "forward"`).
 *
 * 1. **Bring-up of a 3-level graph split across the hosts**: B runs `b1` and `b2` (level 1); A
 *    runs `a1`, which needs both, and `a2`, which needs `a1`. Every service is, as in the
 *    bring-up benchmarks, a busybox httpd behind a `sleep`, ready 300 ms after its spawn
 *    (`programHeadStart` takes off its own lateness), health-checked. A `startServices(A, ["a2"])`
 *    forwards b1 and b2 to B at once (B's agent runs the two starts together, its own lifecycle
 *    health-gating them), then starts a1 and a2 here. Bound: the critical path, 3 × 300 ms.
 *    Goal: wall / bound ≤ 1.15. Median of `runs`. `BENCH_TRACE=1` prints each run's events.
 * 2. **Status of 20 remote services**: A's registry of 20 services observed on B; `statusAll` of
 *    the 20 against one `status` (the anchor, same run). Goal: ≤ 2 (the requests go in parallel).
 *
 * ```sh
 * deno run -A scripts/bench_remote.ts [--runs 5] [--json]
 * ```
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { defaultTokenFile, Platform, startServices, statePaths, stopServices } from "../mod.ts";
import { programHeadStart, registryToml, type ServiceSpec } from "./_bench_graphs.ts";
import {
  type BenchResult,
  denoBinary,
  freePorts,
  judge,
  median,
  q,
  resultLine,
  ROOT,
  running,
  tempDir,
} from "./_bench_util.ts";

const B_HOST = "127.0.0.3";
const med = (rows: number[][], i: number) => Math.round(median(rows.map((r) => r[i])));
const READY_MS = 300;

/** Options of {@linkcode benchRemote}. */
export interface RemoteBenchOptions {
  /** Measured bring-ups (default 5, after one warm-up). */
  runs?: number;
}

/** `[services.NAME]` on A for `service` on B's agent. */
function remoteToml(
  name: string,
  endpoint: string,
  token: string,
  service: string,
  control: string,
) {
  return [
    `[services.${q(name)}]`,
    `deployment = { mode = "remote", remote = { endpoint = ${q(endpoint)}, auth_token_path = ${
      q(token)
    }, agent = true, service = ${q(service)}, control = ${q(control)} } }`,
    "startup = { start_timeout = 30 }",
    "",
  ].join("\n");
}

/** B's agent, in its own process; resolves once it listens. */
async function agentB(config: string, home: string, port: number) {
  const child: ChildProcess = spawn(
    denoBinary(),
    [
      "run",
      "-A",
      "--quiet",
      join(ROOT, "cli.ts"),
      "agent",
      "--listen",
      `${B_HOST}:${port}`,
      "--config",
      config,
    ],
    {
      cwd: ROOT,
      env: { ...process.env, PROVISIONING_HOME: home, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const exited = new Promise((r) => child.once("close", r));
  const stop = async () => {
    running.delete(stop);
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGTERM");
    await exited;
  };
  running.add(stop);
  await new Promise<void>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d) => {
      out += d;
      if (/Agent listening on/.test(out)) resolve();
    });
    child.once("close", (code) => reject(new Error(`B's agent exited with ${code}: ${out}`)));
  });
  child.stdout!.resume();
  return { stop };
}

/** Run the benchmark; see the module doc. */
export async function benchRemote(opts: RemoteBenchOptions = {}): Promise<BenchResult> {
  const runs = opts.runs ?? 5;
  const tmp = tempDir("remote");
  const homeA = join(tmp.dir, "a");
  const homeB = join(tmp.dir, "b");
  const [agentPort] = await freePorts(1);
  // As the bring-up benchmarks: busybox httpd behind a sleep, ready READY_MS after its spawn.
  const headStartMs = await programHeadStart(tmp.dir);
  const spec = (name: string, dependencies: string[] = []): ServiceSpec => ({
    name,
    dependencies,
    readyMs: READY_MS,
    check: "http",
  });
  const configB = join(tmp.dir, "b.toml");
  const specsB = [spec("b1"), spec("b2"), ...Array.from({ length: 20 }, (_, i) => spec(`s${i}`))];
  writeFileSync(configB, await registryToml(specsB, tmp.dir, { headStartMs }));
  const b = await agentB(configB, homeB, agentPort);
  const endpoint = `http://${B_HOST}:${agentPort}`;
  const token = defaultTokenFile(statePaths(homeB));
  const configA = join(tmp.dir, "a.toml");
  writeFileSync(
    configA,
    [
      remoteToml("rb1", endpoint, token, "b1", "forward"),
      remoteToml("rb2", endpoint, token, "b2", "forward"),
      await registryToml([spec("a1", ["rb1", "rb2"]), spec("a2", ["a1"])], tmp.dir, {
        headStartMs,
      }),
      ...Array.from(
        { length: 20 },
        (_, i) => remoteToml(`r${i}`, endpoint, token, `s${i}`, "observe"),
      ),
    ].join("\n"),
  );
  const env = { ...process.env, PROVISIONING_HOME: homeA };
  const stopAll = async (p: Platform) => {
    await stopServices(p, [], { force: true });
  };
  try {
    const p = await Platform.open({ config: configA, home: homeA, env });
    const walls: number[] = [];
    const lateness: number[] = [];
    const levels: number[][] = [];
    for (let i = 0; i <= runs; i++) {
      const t0 = performance.now();
      const seen: string[] = [];
      const res = await startServices(p, ["a2"], {
        onEvent: (e) =>
          seen.push(
            `${e.service}:${e.type}@${(performance.now() - t0).toFixed(0)}${
              e.message ? `(${e.message})` : ""
            }`,
          ),
      });
      if (process.env.BENCH_TRACE) console.error(seen.join(" "));
      const wall = performance.now() - t0;
      if (!res.ok) throw new Error(`bring-up failed: ${JSON.stringify(res.outcomes)}`);
      if (i > 0) walls.push(wall); // the first is a warm-up (module loads, B's first spawns)
      const at = (n: string) => res.outcomes.find((o) => o.name === n)!.elapsed_ms;
      if (i > 0) {
        lateness.push(at("rb1") - READY_MS);
        levels.push([at("rb1"), at("rb2"), at("a1"), at("a2")]);
      }
      await stopAll(p);
    }
    // Status: 20 observed services at once against one.
    const names = Array.from({ length: 20 }, (_, i) => `r${i}`);
    const one: number[] = [];
    const all: number[] = [];
    // Reads of one process share B's list for 1 s: each measured read comes after that.
    const cold = () => new Promise((r) => setTimeout(r, 1_100));
    for (let i = 0; i < 8; i++) {
      await cold();
      let t = performance.now();
      await p.status("r0", { health: false });
      one.push(performance.now() - t);
      await cold();
      t = performance.now();
      await p.statusAll({ names, health: false });
      all.push(performance.now() - t);
    }
    const bound = 3 * READY_MS;
    const r = judge({
      name: "remote",
      label: "bring-up of a 3-level graph across two hosts (B's agent forwards level 1)",
      value: median(walls),
      unit: "ms",
      bound,
      boundLabel: "critical path",
      goal: 1.15,
      samples: walls,
      details: [
        `runs (ms): ${
          walls.map((w) => w.toFixed(0)).join(", ")
        } (median of ${runs}, after 1 warm-up)`,
        `level 1 through B's agent: rb1 healthy there ${
          median(lateness).toFixed(0)
        } ms after its 300 ms (forwarded start, B's health gate, the SSE result)`,
        `done at (ms, medians): rb1 ${med(levels, 0)}, rb2 ${med(levels, 1)}, a1 ${
          med(levels, 2)
        }, a2 ${
          med(levels, 3)
        } (each a busybox httpd ready ${READY_MS} ms after its spawn; sleeps shortened by ${headStartMs} ms, its own lateness with no manager)`,
        `status of 20 remote services ${median(all).toFixed(1)} ms vs one ${
          median(one).toFixed(1)
        } ms = ${
          (median(all) / median(one)).toFixed(2)
        } (goal ≤ 2: the 20 requests go in parallel) ${
          median(all) / median(one) <= 2 ? "PASS" : "MISS"
        }`,
      ],
      data: {
        status_all_ms: median(all),
        status_one_ms: median(one),
        status_ratio: median(all) / median(one),
      },
    });
    return r;
  } finally {
    const p = await Platform.open({ config: configA, home: homeA, env }).catch(() => undefined);
    if (p) await stopAll(p).catch(() => {});
    const pb = await Platform.open({ config: configB, home: homeB, env: { ...process.env } })
      .catch(() => undefined);
    if (pb) await stopServices(pb, [], { force: true }).catch(() => {});
    await b.stop();
    tmp.remove();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { runs: { type: "string" }, json: { type: "boolean" } },
  });
  const r = await benchRemote({ runs: values.runs ? Number(values.runs) : undefined });
  console.log(
    values.json
      ? JSON.stringify(r, null, 2)
      : [resultLine(r), ...r.details.map((d) => `    ${d}`)].join("\n"),
  );
}
