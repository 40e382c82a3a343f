/**
 * How to run this program again (for the detached supervisor): the same runtime and entry,
 * whether that is `deno run cli.ts`, `node dist/cli.cjs` or a compiled binary (Bun's, or
 * `deno compile`'s): a binary runs itself.
 *
 * @module
 */
import { ownFile } from "./assets.ts";

/** Whether this is an executable made by `deno compile` (`Deno.build.standalone`). */
function denoStandalone(): boolean {
  const deno = (globalThis as { Deno?: { build?: { standalone?: boolean } } }).Deno;
  return deno?.build?.standalone === true;
}

/** Command and arguments that run the CLI with `args`. */
export function selfCommand(args: string[]): { command: string; args: string[] } {
  const versions = process.versions as Record<string, string | undefined>;
  if (versions.deno && denoStandalone()) return { command: process.execPath, args };
  if (versions.deno) {
    const cli = ownFile("cli.ts");
    return { command: process.execPath, args: ["run", "-A", "--quiet", cli, ...args] };
  }
  const entry = process.argv[1];
  if (versions.bun && (!entry || entry.startsWith("/$bunfs"))) {
    return { command: process.execPath, args };
  }
  return { command: process.execPath, args: [entry, ...args] };
}

/**
 * V8 flags for the long-lived supervisor, which runs little code, rarely: a 1 MiB young
 * generation, no optimising compilers (baseline code only), favour size, old-generation growth
 * of 10 % between collections, and no memory reducer: its full collections came at an
 * unpredictable moment after a bring-up and cost a 60 ms CPU spike each; instead the supervisor
 * compacts its heap itself once a burst of requests is over (`--expose-gc`, see
 * `Supervisor#compactSoon`). With fifty services RSS is about 57 MiB instead of 78-90. They
 * stay while `deno task bench supervision` shows it (its "what the daemon's V8 flags buy" line
 * runs the same supervisor with V8's defaults).
 */
const SUPERVISOR_V8_FLAGS = [
  "--max-semi-space-size=1",
  "--lite-mode",
  "--sparkplug",
  "--optimize-for-size",
  "--heap-growing-percent=10",
  "--no-memory-reducer",
  "--expose-gc",
];

/**
 * Command and arguments that run the supervisor daemon. `PROVISIONING_SUPERVISOR_V8_FLAGS=off`
 * in `env` runs it with V8's defaults (what they buy is measured by `deno task bench
 * supervision`: RSS with and without them).
 */
export function supervisorCommand(env: Record<string, string | undefined> = process.env): {
  command: string;
  args: string[];
  env?: Record<string, string>;
} {
  const versions = process.versions as Record<string, string | undefined>;
  const flags = env.PROVISIONING_SUPERVISOR_V8_FLAGS === "off" ? [] : SUPERVISOR_V8_FLAGS;
  // A `deno compile` executable takes no runtime flags: its own `supervisor run`.
  if (versions.deno && denoStandalone()) return selfCommand(["supervisor", "run"]);
  if (versions.deno) {
    const main = ownFile("core/supervisor/main.ts");
    return {
      command: process.execPath,
      args: [
        "run",
        "-A",
        "--quiet",
        "--no-code-cache",
        ...(flags.length ? [`--v8-flags=${flags.join(",")}`] : []),
        main,
      ],
      // No background check for a newer Deno from a daemon (it also pages in ~1.4 MiB); at
      // most two malloc arenas for its handful of threads. Services get the CLI's environment,
      // not these.
      env: {
        DENO_NO_UPDATE_CHECK: "1",
        GLIBC_TUNABLES: process.env.GLIBC_TUNABLES ?? "glibc.malloc.arena_max=2",
      },
    };
  }
  const self = selfCommand(["supervisor", "run"]);
  // Node takes V8 flags before the script (and warns that lite mode turns off WebAssembly
  // unless told so); a compiled binary (bun) has no V8.
  if (versions.bun) return self;
  return {
    command: self.command,
    args: [...flags, ...(flags.length ? ["--no-expose-wasm"] : []), ...self.args],
  };
}
