/**
 * The plugin API: typed helpers for writing a driver or a check, and the object a plugin
 * factory receives.
 *
 * A plugin is one module, `<dir>/drivers/<mode>.ts` or `<dir>/checks/<type>.ts`, whose default
 * export is a {@linkcode Driver} or a {@linkcode Check} — or a function that receives
 * {@linkcode PluginApi} and returns one, so a plugin file needs no import at all (a plugin
 * directory outside this project cannot resolve the bare specifier `zod`).
 *
 * @module
 */
import { z } from "zod";
import { ExitCode, ProvisioningError } from "../errors.ts";
import { modeTable } from "../names.ts";
import type { Check, Driver, Service } from "../types.ts";

/**
 * Define a deployment driver. An identity function: it returns `driver` unchanged and exists
 * for its typing — the config type `C` is inferred from `config`, so the driver's code sees
 * typed values through {@linkcode driverConfig}.
 *
 * @example A driver that only knows whether a file exists (save as `plugins/drivers/flag.ts`)
 * ```ts
 * import { existsSync } from "node:fs";
 * import { z } from "zod";
 * import { defineDriver, driverConfig, type RuntimeStatus } from "../../plugin.ts";
 *
 * export const flag = defineDriver({
 *   mode: "flag",
 *   config: z.strictObject({ path: z.string() }),
 *   preflight: () => Promise.resolve([]),
 *   start: () => Promise.resolve({}),
 *   stop: () => Promise.resolve(),
 *   // A method that passes `flag` to driverConfig() needs its return type written out:
 *   // TypeScript cannot infer a type that refers to the value being defined.
 *   status: (svc): Promise<RuntimeStatus> =>
 *     Promise.resolve({
 *       status: existsSync(driverConfig(flag, svc).path) ? "running" : "stopped",
 *     }),
 *   logs: async function* () {},
 * });
 * export default flag;
 * ```
 */
export function defineDriver<C>(driver: Driver<C>): Driver<C> {
  return driver;
}

/**
 * Define a health check. An identity function: it returns `check` unchanged and exists for its
 * typing — `run` receives the output type of `config` (defaults applied).
 *
 * @example A check that is healthy while an environment variable is set
 * ```ts
 * import { z } from "zod";
 * import { defineCheck } from "../../plugin.ts";
 *
 * const envSet = defineCheck({
 *   type: "env_set",
 *   config: z.strictObject({ variable: z.string().min(1) }),
 *   run(cfg, ctx) {
 *     const healthy = ctx.env[cfg.variable] !== undefined;
 *     return Promise.resolve({
 *       healthy,
 *       message: `${cfg.variable} is ${healthy ? "set" : "not set"}`,
 *       durationMs: 0,
 *     });
 *   },
 * });
 * const result = await envSet.run(envSet.config.parse({ variable: "HOME" }), {
 *   signal: new AbortController().signal,
 *   timeoutMs: 1000,
 *   service: "demo",
 *   env: { HOME: "/root" },
 * });
 * console.log(result.message); // HOME is set
 * ```
 */
export function defineCheck<C>(check: Check<C>): Check<C> {
  return check;
}

/**
 * The validated `[services.X.deployment.<mode>]` table of `svc`, typed by the driver's
 * `config` (the registry has already applied its defaults; this parses again so a service
 * built by hand is checked too).
 */
export function driverConfig<C>(driver: Driver<C>, svc: Service): C {
  const table = modeTable(driver.mode);
  const parsed = driver.config.safeParse(svc.deployment[table]);
  if (parsed.success) return parsed.data;
  const detail = parsed.error.issues.map((i) => `${i.path.join(".") || "table"}: ${i.message}`);
  throw new ProvisioningError(
    `Cannot use "${svc.name}": invalid [services.${svc.name}.deployment.${table}]: ${
      detail.join("; ")
    }`,
    { exitCode: ExitCode.usage },
  );
}

const SHELL_LINES = new WeakSet<object>();

/**
 * Mark a string field of a plugin's `config` as a shell command line. The registry quotes every
 * `${VAR}` value it substitutes into such a field for the place it lands in (unquoted, '…' or
 * "…"), so an environment value is one word of data and never shell syntax. Wrap the whole
 * field: `command: shellLine(z.string().min(1))`.
 */
export function shellLine<T extends z.ZodType>(schema: T): T {
  SHELL_LINES.add(schema);
  return schema;
}

const shellKeysOf = new WeakMap<object, string[]>();

/** The top-level keys of an object schema declared with {@linkcode shellLine}. */
export function shellLineKeys(config: unknown): string[] {
  if (!config || typeof config !== "object") return [];
  let keys = shellKeysOf.get(config);
  if (!keys) shellKeysOf.set(config, keys = findShellLineKeys(config));
  return keys;
}

function findShellLineKeys(config: unknown): string[] {
  // deno-lint-ignore no-explicit-any
  const unwrap = (s: any): any => {
    for (let i = 0; i < 10 && s?._zod?.def && !SHELL_LINES.has(s); i++) {
      const d = s._zod.def;
      if (["default", "optional", "nullable", "prefault", "readonly"].includes(d.type)) {
        s = d.innerType;
      } else if (d.type === "pipe") s = d.in;
      else break;
    }
    return s;
  };
  const shape = unwrap(config)?._zod?.def?.shape;
  if (!shape || typeof shape !== "object") return [];
  return Object.keys(shape).filter((k) => SHELL_LINES.has(unwrap(shape[k])));
}

/** What a plugin factory receives: zod and the helpers, so a plugin file needs no imports. */
export interface PluginApi {
  /** The zod 4 the registry validates with. */
  z: typeof z;
  defineDriver: typeof defineDriver;
  defineCheck: typeof defineCheck;
  driverConfig: typeof driverConfig;
  /** Throw it for a user error (bad configuration, missing prerequisite). */
  ProvisioningError: typeof ProvisioningError;
  ExitCode: typeof ExitCode;
}

/** A plugin module's default export in its factory form. */
export type PluginFactory = (
  api: PluginApi,
) => Driver | Check | Promise<Driver | Check>;

/** The API handed to plugin factories (and usable by tests of a factory plugin). */
export const pluginApi: PluginApi = Object.freeze({
  z,
  defineDriver,
  defineCheck,
  driverConfig,
  ProvisioningError,
  ExitCode,
});
