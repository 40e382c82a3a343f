/** Test helpers: run the real CLI in a child process, with its own PROVISIONING_HOME. */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestHost } from "./_hosts.ts";

export const ROOT = fileURLToPath(new URL("../", import.meta.url));
export const CLI = join(ROOT, "cli.ts");
export const DEMO_REGISTRY = join(ROOT, "examples/platform/services.toml");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** It was killed after `timeoutMs` (a hang is a failure, not a stuck suite). */
  timedOut?: boolean;
}

/**
 * Run `cli.ts args` to completion (on `host` when given: tests/_hosts.ts), or kill it after
 * `timeoutMs` when given.
 */
export function runCli(
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number; host?: TestHost } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const argv: [string, string[]] = [Deno.execPath(), ["run", "-A", "--quiet", CLI, ...args]];
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
