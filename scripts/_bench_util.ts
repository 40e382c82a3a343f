/**
 * Shared pieces of `scripts/bench.ts`: the result shape, statistics, the result line, temp
 * directories, free ports and the command that runs the demo service.
 *
 * @module
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** The demo service every bring-up benchmark runs. */
export const SERVICE_SCRIPT = join(ROOT, "examples", "platform", "service.mjs");
/** The probe the demo's command check runs. */
export const PROBE_SCRIPT = join(ROOT, "examples", "platform", "probe.mjs");

/** One benchmark's outcome: a measured value, what it is compared with, and why. */
export interface BenchResult {
  /** Short name, as given to `deno task bench <name>`. */
  name: string;
  /** What was measured, e.g. `bring-up 7 services`. */
  label: string;
  /** The measured median, in `unit`. */
  value: number;
  unit: "ms" | "s";
  /** What `value` is divided by (the goal itself, a critical-path bound, a floor), in `unit`. */
  bound?: number;
  /** How `bound` is named in the result line (`bound`, `goal`, `--help`). */
  boundLabel?: string;
  /** `value / bound`. */
  ratio?: number;
  /** The ratio must not exceed this; none for a benchmark without a goal. */
  goal?: number;
  pass?: boolean;
  /** Every measured sample (warm-up runs left out), in `unit`. */
  samples: number[];
  /** Where the time goes, one line each. */
  details: string[];
  /** Further named numbers (milliseconds unless named otherwise). */
  data: Record<string, number>;
  /** Set when the benchmark crashed (then the numbers are empty). */
  error?: string;
}

/** The median of `xs` (NaN for none). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The `q` quantile (0..1) of `xs`, nearest rank. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** `12.3 ms`, or `0.98 s` for a value in seconds. */
export function fmt(value: number, unit: "ms" | "s"): string {
  return unit === "s" ? `${value.toFixed(2)} s` : `${value.toFixed(value < 10 ? 1 : 0)} ms`;
}

/** Fill in ratio and pass, given value, bound and goal. */
export function judge(r: Omit<BenchResult, "ratio" | "pass">): BenchResult {
  const ratio = r.bound ? r.value / r.bound : undefined;
  const pass = r.goal === undefined || ratio === undefined ? undefined : ratio <= r.goal;
  return { ...r, ratio, pass };
}

/**
 * The result line: `bring-up 7 services: 0.98 s / bound 0.90 s = 1.09 (goal ≤ 1.10) PASS`.
 */
export function resultLine(r: BenchResult): string {
  if (r.error) return `${r.label}: CRASHED: ${r.error}`;
  let line = `${r.label}: ${fmt(r.value, r.unit)}`;
  if (r.bound !== undefined && r.ratio !== undefined) {
    line += ` / ${r.boundLabel ?? "bound"} ${fmt(r.bound, r.unit)} = ${r.ratio.toFixed(2)}`;
  }
  if (r.goal === undefined) return `${line} (no goal)`;
  return `${line} (goal ≤ ${r.goal.toFixed(2)}) ${r.pass ? "PASS" : "MISS"}`;
}

/** A fresh temp directory and a function that removes it. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `provisioning-bench-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `n` distinct free TCP ports on 127.0.0.1 (all held open until every one is known). */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const server = createServer();
      servers.push(server);
      ports.push(
        await new Promise<number>((resolve, reject) => {
          server.once("error", reject);
          server.listen(0, "127.0.0.1", () => {
            const addr = server.address();
            resolve(typeof addr === "object" && addr ? addr.port : 0);
          });
        }),
      );
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

/**
 * How to run a JavaScript file: `node FILE` with the `node` on PATH, else this Deno
 * (`deno run -A FILE`).
 */
export function scriptCommand(): { command: string; args: (file: string) => string[] } {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const node = join(dir, "node");
    if (dir && existsSync(node)) return { command: node, args: (file) => [file] };
  }
  return { command: process.execPath, args: (file) => ["run", "-A", file] };
}

/** The deno that runs the CLI: the project's `node_modules/.bin/deno`, else this runtime. */
export function denoBinary(): string {
  const local = join(ROOT, "node_modules", ".bin", "deno");
  return existsSync(local) ? local : process.execPath;
}

/**
 * Cleanups of what is running right now (services started by a benchmark, temp dirs), for a
 * Ctrl+C: each benchmark adds one while it runs and deletes it in its `finally`.
 */
export const running = new Set<() => Promise<void>>();

/** A TOML basic string (JSON's escapes are valid TOML for the strings written here). */
export const q = (s: string): string => JSON.stringify(s);

/** One `GET /health` on 127.0.0.1:`port`: its status code, or 0 when nothing answers. */
export function healthStatus(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      { host: "127.0.0.1", port, path: "/health", agent: false, timeout: 1_000 },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.once("error", () => resolve(0));
    req.once("timeout", () => req.destroy());
    req.end();
  });
}
