/**
 * Test helpers: run the real CLI in a child process, with its own PROVISIONING_HOME.
 *
 * `PROVISIONING_CLI` picks what the tests run: `deno` (the default, `deno run -A cli.ts`),
 * `node` (the bundle, `node dist/cli.cjs`) or `binary` (`dist/provisioning`), built once here
 * when missing or older than the sources (`scripts/build.ts` `ensureBuilt`). Every test that
 * spawns the CLI gets its command from {@linkcode cliCommand}.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestHost } from "./_hosts.ts";

export const ROOT = fileURLToPath(new URL("../", import.meta.url));
export const CLI = join(ROOT, "cli.ts");
export const DEMO_REGISTRY = join(ROOT, "examples/platform/services.toml");
/** The Node bundle and the standalone binary (`deno task bundle` / `deno task build`). */
export const BUNDLE = join(ROOT, "dist/cli.cjs");
export const BINARY = join(ROOT, "dist/provisioning");

/** What runs the CLI in tests. */
export type CliRuntime = "deno" | "node" | "binary";
const RUNTIMES: readonly CliRuntime[] = ["deno", "node", "binary"];

/** `PROVISIONING_CLI`: deno (default) | node | binary. */
export const CLI_RUNTIME: CliRuntime = (() => {
  const v = process.env.PROVISIONING_CLI || "deno";
  if (!(RUNTIMES as readonly string[]).includes(v)) {
    throw new RangeError(`PROVISIONING_CLI must be one of ${RUNTIMES.join(", ")}, got "${v}"`);
  }
  return v as CliRuntime;
})();

/** How the CLI under test names the bundled registry (a build embeds it). */
export const BUNDLED_REGISTRY_SHOWN: string = CLI_RUNTIME === "deno"
  ? join(ROOT, "config", "services.toml")
  : "<bundled>/config/services.toml";

/** Whether the CLI under test imports `.ts` plugins (Deno and the Bun binary; Node 20 cannot). */
export const CLI_IMPORTS_TS: boolean = CLI_RUNTIME !== "node";

if (CLI_RUNTIME !== "deno") {
  const { ensureBuilt } = await import("../scripts/build.ts");
  await ensureBuilt(CLI_RUNTIME === "node" ? "bundle" : "binary");
}

/**
 * The command and arguments that run the CLI with `args` under {@linkcode CLI_RUNTIME}, for
 * `spawn(...cliCommand(args), opts)` (or a host's `argv(...cliCommand(args))`).
 */
export function cliCommand(args: string[]): [string, string[]] {
  if (CLI_RUNTIME === "node") return ["node", [BUNDLE, ...args]];
  if (CLI_RUNTIME === "binary") return [BINARY, [...args]];
  return [Deno.execPath(), ["run", "-A", "--quiet", CLI, ...args]];
}

/** {@linkcode cliCommand} as one line for `sh -c` (each word single-quoted). */
export function cliShellCommand(args: string[]): string {
  const [cmd, argv] = cliCommand(args);
  return [cmd, ...argv].map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** It was killed after `timeoutMs` (a hang is a failure, not a stuck suite). */
  timedOut?: boolean;
}

/**
 * Run the CLI with `args` to completion (on `host` when given: tests/_hosts.ts), or kill it
 * after `timeoutMs` when given.
 */
export function runCli(
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number; host?: TestHost } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const argv = cliCommand(args);
    const child = spawn(...(opts.host ? opts.host.argv(...argv) : argv), {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, NO_COLOR: "1", ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutMs);
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr, ...(timer ? { timedOut } : {}) });
    });
  });
}

/** A temporary PROVISIONING_HOME, removed by `dispose`. */
export function tempHome(prefix = "prov-test-"): { home: string; [Symbol.dispose](): void } {
  const home = mkdtempSync(join(tmpdir(), prefix));
  return { home, [Symbol.dispose]: () => rmSync(home, { recursive: true, force: true }) };
}
