/**
 * The plugin API of `provisioning`: what a deployment driver or a health check plugin is
 * written against. A plugin is one module, `<dir>/drivers/<mode>.ts` or `<dir>/checks/<type>.ts`,
 * whose default export is a {@linkcode Driver} or a {@linkcode Check} (see `docs/plugins.md`).
 *
 * @example A check that is healthy while an environment variable is set
 * ```ts
 * import { z } from "zod";
 * import { defineCheck } from "./plugin.ts";
 *
 * export default defineCheck({
 *   type: "env_set",
 *   config: z.strictObject({ variable: z.string().min(1) }),
 *   run: (cfg, ctx) =>
 *     Promise.resolve({
 *       healthy: ctx.env[cfg.variable] !== undefined,
 *       message: `${cfg.variable} checked`,
 *       durationMs: 0,
 *     }),
 * });
 * ```
 *
 * @module
 */
export {
  defineCheck,
  defineDriver,
  driverConfig,
  pluginApi,
  shellLine,
} from "./core/plugins/api.ts";
export type { PluginApi, PluginFactory } from "./core/plugins/api.ts";
export { errorCode, errorMessage, since, startAttempt } from "./core/health/attempt.ts";
export { ExitCode, ProvisioningError } from "./core/errors.ts";
export { describeExit } from "./core/types.ts";
export { isLocalHost } from "./core/process/identity.ts";
export type {
  Check,
  CheckContext,
  CheckResult,
  Driver,
  DriverCapabilities,
  DriverContext,
  ExitInfo,
  Finding,
  Handle,
  LogOptions,
  Ownership,
  RuntimeStatus,
  Service,
  StopOptions,
  StopResult,
  Supervision,
} from "./core/types.ts";
