/**
 * The `command` health check: runs a shell command, healthy when it exits with the expected code.
 *
 * ```toml
 * [services.custom.health_check.command]
 * command = "systemctl is-active myservice"
 * expected_exit_code = 0
 * ```
 *
 * The command runs through dax's cross-platform shell (imported lazily) with the service's
 * environment, output captured quietly. `${VAR}` values the registry substitutes into `command`
 * are shell-quoted where they land (`echo ${X}` runs `echo '<value of X>'`), so an environment
 * value cannot inject commands; `$VAR` (no braces) is left to the shell. At the timeout the whole process tree is killed,
 * grandchildren included, so a hung check never leaves processes behind.
 *
 * @module
 */
import { stat } from "node:fs/promises";
import { z } from "zod";
import { defineCheck, shellLine } from "../core/plugins/api.ts";
import type { CheckContext, CheckResult } from "../core/types.ts";
import { errorMessage, startAttempt } from "../core/health/attempt.ts";
import { killTagged, newTag, TAG_VARIABLE } from "../core/process/tree.ts";

/** How long to wait for the killed tree's pipes to close before giving up on it. */
const KILL_GRACE_MS = 2_000;
/** Longest output line quoted in a failure message. */
const MAX_LINE = 200;

const config = z.strictObject({
  /**
   * Shell command line (dax shell syntax: pipes, `&&`, quoting, env vars). A shell line: the
   * registry quotes the `${VAR}` values it substitutes into it.
   */
  command: shellLine(z.string().trim().min(1, "Command must not be empty")),
  /** The exit code that counts as healthy. */
  expected_exit_code: z.number().int().min(0).max(255).default(0),
  /** Directory to run in (default: the current one). */
  working_dir: z.string().min(1).optional(),
});

/** `[services.X.health_check.command]` after defaults. */
export type CommandCheckConfig = z.output<typeof config>;

async function run(cfg: CommandCheckConfig, ctx: CheckContext): Promise<CheckResult> {
  const attempt = startAttempt(ctx);
  const result = attempt.result;
  const tag = newTag();
  let killing: Promise<unknown> | undefined;
  const killTree = () => (killing = killTagged(tag).catch(() => {}));
  try {
    if (cfg.working_dir && !(await isDirectory(cfg.working_dir))) {
      return result(
        false,
        `Cannot run check command: working directory "${cfg.working_dir}" does not exist`,
      );
    }
    const { $ } = await import("dax");
    let builder = $.raw`${cfg.command}`
      .env({ ...ctx.env, [TAG_VARIABLE]: tag })
      .signal(attempt.signal)
      .noThrow()
      .quiet()
      .captureCombined();
    if (cfg.working_dir) builder = builder.cwd(cfg.working_dir);
    if (attempt.signal.aborted) return result(false, attempt.abortMessage());
    // dax SIGTERMs its direct child on abort; the tag reaches the rest of the tree.
    attempt.signal.addEventListener("abort", killTree, { once: true });
    const running = builder.spawn();
    const outcome = await settleOrGiveUp(running, attempt.signal);
    if (attempt.signal.aborted || outcome === undefined) {
      return result(false, attempt.abortMessage());
    }
    const code = outcome.code;
    if (code === cfg.expected_exit_code) return result(true, `Command exited with code ${code}`);
    const line = lastLine(outcome.combined);
    return result(
      false,
      `Command exited with code ${code} (expected ${cfg.expected_exit_code})${
        line ? `: ${line}` : ""
      }`,
    );
  } catch (error) {
    if (attempt.signal.aborted) return result(false, attempt.abortMessage());
    return result(false, `Cannot run check command "${cfg.command}": ${errorMessage(error)}`);
  } finally {
    attempt.signal.removeEventListener("abort", killTree);
    attempt.dispose();
    await killing; // no /proc scan outlives the attempt
  }
}

/**
 * Awaits the command; once `signal` aborts, waits at most `KILL_GRACE_MS` more for the killed
 * tree to release its pipes, then resolves `undefined`.
 */
async function settleOrGiveUp<T>(
  running: PromiseLike<T>,
  signal: AbortSignal,
): Promise<T | undefined> {
  const settled = Promise.resolve(running);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let giveUp = () => {};
  const gaveUp = new Promise<undefined>((resolve) => (giveUp = () => resolve(undefined)));
  const onAbort = () => (timer = setTimeout(giveUp, KILL_GRACE_MS));
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await Promise.race([settled, gaveUp]);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
    settled.catch(() => {}); // a tree that outlived the grace period settles later, unobserved
  }
}

/** The last non-empty line of the output, shortened. */
function lastLine(output: string): string {
  const line = output.trimEnd().split(/\r?\n/).at(-1)?.trim() ?? "";
  return line.length > MAX_LINE ? `${line.slice(0, MAX_LINE - 1)}…` : line;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** The `command` check. */
const check = defineCheck({ type: "command", config, run });
export default check;
