/**
 * The Docker Compose tool: `docker compose` (v2, a docker CLI plugin) or `docker-compose` (v1),
 * whichever answers first, run through dax (imported lazily: only compose services pay for it).
 * Every call gets the caller's environment (so `DOCKER_HOST` reaches the tool) and
 * `-f <compose_file> -p <project_name>`.
 *
 * @module
 */
import { ExitCode, ProvisioningError } from "../../core/errors.ts";

/** A compose tool that answered `version --short`. */
export interface ComposeTool {
  /** The command before the subcommand: `["docker", "compose"]` or `["docker-compose"]`. */
  argv: string[];
  /** `docker compose 2.24.0` or `docker-compose 1.29.2`. */
  label: string;
}

/** Where to run compose and what for. */
export interface ComposeTarget {
  file: string;
  project: string;
  env: Record<string, string | undefined>;
  signal?: AbortSignal;
}

/** The outcome of one compose call (it never throws for a non-zero exit). */
export interface ComposeResult {
  code: number;
  stdout: string;
  stderr: string;
}

const CANDIDATES = [["docker", "compose"], ["docker-compose"]];
const found = new Map<string, Promise<ComposeTool | undefined>>();

async function dax() {
  const { $ } = await import("dax");
  return $;
}

function definedEnv(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

/** The first compose tool that answers, or undefined; looked up once per PATH. */
export function findCompose(
  env: Record<string, string | undefined>,
): Promise<ComposeTool | undefined> {
  const key = env.PATH ?? "";
  let p = found.get(key);
  if (!p) {
    p = (async () => {
      const $ = await dax();
      for (const argv of CANDIDATES) {
        const r = await $`${[...argv, "version", "--short"]}`.clearEnv().env(definedEnv(env))
          .noThrow().quiet();
        const version = r.stdout.trim().replace(/^v/, "");
        if (r.code === 0 && /^\d+\.\d+/.test(version)) {
          return { argv, label: `${argv.join(" ")} ${version}` };
        }
      }
      return undefined;
    })();
    found.set(key, p);
  }
  return p;
}

/** The tool, or a pre-flight error saying none was found. */
export async function requireCompose(
  env: Record<string, string | undefined>,
): Promise<ComposeTool> {
  const tool = await findCompose(env);
  if (tool) return tool;
  throw new ProvisioningError("Docker Compose is not installed", {
    exitCode: ExitCode.preflight,
    hints: ["Install the docker compose plugin (v2) or docker-compose (v1)"],
  });
}

/** `compose -f FILE -p PROJECT args...`, output captured. */
export async function compose(
  tool: ComposeTool,
  target: ComposeTarget,
  args: string[],
): Promise<ComposeResult> {
  const $ = await dax();
  let cmd = $`${[...tool.argv, "-f", target.file, "-p", target.project, ...args]}`
    .clearEnv().env(definedEnv(target.env)).noThrow().quiet();
  if (target.signal) cmd = cmd.signal(target.signal);
  const r = await cmd;
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

/** The last meaningful lines of a failed call's output, for an error message. */
export function failure(r: ComposeResult): string {
  const lines = `${r.stderr}\n${r.stdout}`.split("\n").map((l) => l.trim()).filter(Boolean);
  return lines.slice(-3).join(" / ") || `exit code ${r.code}`;
}

/**
 * The output lines of a long-running compose call (`logs -f`), until it ends or `signal`
 * aborts (the tool is then killed and the iteration ends quietly).
 */
export async function* composeLines(
  tool: ComposeTool,
  target: ComposeTarget,
  args: string[],
): AsyncGenerator<string> {
  if (target.signal?.aborted) return;
  const $ = await dax();
  const ac = new AbortController();
  const onAbort = () => ac.abort();
  target.signal?.addEventListener("abort", onAbort, { once: true });
  const child = $`${[...tool.argv, "-f", target.file, "-p", target.project, ...args]}`
    .clearEnv().env(definedEnv(target.env)).noThrow().stdout("piped").stderr("piped")
    .signal(ac.signal).spawn();
  const reader = child.stdout().getReader();
  const errText = new Response(child.stderr()).text();
  // A grandchild may hold the pipe open after the tool is killed: stop reading on abort.
  const aborted = new Promise<undefined>((resolve) => {
    ac.signal.addEventListener("abort", () => resolve(undefined), { once: true });
  });
  const decoder = new TextDecoder();
  let partial = "";
  let ended = false;
  try {
    while (true) {
      const next = await Promise.race([reader.read(), aborted]);
      if (!next) break;
      if (next.done) {
        ended = true;
        break;
      }
      const lines = (partial + decoder.decode(next.value, { stream: true })).split("\n");
      partial = lines.pop() ?? "";
      yield* lines.map((l) => l.replace(/\r$/, ""));
    }
    if (partial) yield partial;
  } finally {
    target.signal?.removeEventListener("abort", onAbort);
    if (!ended) { // aborted, or the consumer stopped early: kill the tool and reap it
      ac.abort();
      reader.cancel().catch(() => {});
      await settle(child, 5_000);
      await settle(errText, 1_000);
    }
  }
  if (!ended) return;
  const r = await settle(child, 5_000);
  const err = await settle(errText, 1_000);
  if (r && r.code !== 0) {
    throw new ProvisioningError(`Compose logs failed: ${err?.trim() || `exit code ${r.code}`}`);
  }
}

/** `p`'s value, or undefined after `ms` (the timer is cleared either way). */
async function settle<T>(p: PromiseLike<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      Promise.resolve(p).catch(() => undefined),
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
