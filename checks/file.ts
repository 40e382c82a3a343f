/**
 * The `file` health check: healthy when a path exists (or, with `must_exist = false`, when it
 * does not). Symbolic links are followed: a dangling link counts as absent.
 *
 * ```toml
 * [services.custom.health_check.file]
 * path = "/var/run/myservice.pid"
 * must_exist = true
 * ```
 *
 * @module
 */
import { stat } from "node:fs/promises";
import { z } from "zod";
import { defineCheck } from "../core/plugins/api.ts";
import type { CheckContext, CheckResult } from "../core/types.ts";
import { errorCode, errorMessage, since } from "../core/health/attempt.ts";

const config = z.strictObject({
  /** The path to look at (already expanded by the registry loader). */
  path: z.string().min(1),
  /** `false` turns the check around: healthy while the path is absent. */
  must_exist: z.boolean().default(true),
});

/** `[services.X.health_check.file]` after defaults. */
export type FileCheckConfig = z.output<typeof config>;

async function run(cfg: FileCheckConfig, _ctx: CheckContext): Promise<CheckResult> {
  const start = performance.now();
  let exists: boolean;
  try {
    await stat(cfg.path);
    exists = true;
  } catch (error) {
    const code = errorCode(error);
    if (code !== "ENOENT" && code !== "ENOTDIR") {
      return {
        healthy: false,
        message: `Cannot check file "${cfg.path}": ${code ?? errorMessage(error)}`,
        durationMs: since(start),
      };
    }
    exists = false;
  }
  const suffix = cfg.must_exist ? "" : " (expected absent)";
  return {
    healthy: exists === cfg.must_exist,
    message: `File ${cfg.path} ${exists ? "exists" : "does not exist"}${suffix}`,
    durationMs: since(start),
  };
}

/** The `file` check. */
const check = defineCheck({ type: "file", config, run });
export default check;
