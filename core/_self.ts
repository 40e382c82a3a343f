/**
 * How to run this program again (for the detached supervisor): the same runtime and entry,
 * whether that is `deno run cli.ts`, `node dist/cli.mjs` or a compiled binary.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/** Command and arguments that run the CLI with `args`. */
export function selfCommand(args: string[]): { command: string; args: string[] } {
  const versions = process.versions as Record<string, string | undefined>;
  if (versions.deno) {
    const cli = fileURLToPath(new URL("../cli.ts", import.meta.url));
    return { command: process.execPath, args: ["run", "-A", "--quiet", cli, ...args] };
  }
  const entry = process.argv[1];
  if (versions.bun && (!entry || entry.startsWith("/$bunfs"))) {
    return { command: process.execPath, args };
  }
  return { command: process.execPath, args: [entry, ...args] };
}
