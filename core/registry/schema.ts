/**
 * The zod schema of `services.toml`, without the mode and check sub-tables: those belong to
 * the driver and check plugins (`Driver.config`, `Check.config`) and are validated by the
 * registry loader once it knows which plugins a service uses.
 *
 * @module
 */
import { z } from "zod";
import { MAX_NAME_LENGTH, SERVICE_NAME_RE } from "../names.ts";
// No code generated per schema (zod compiles a fast path with `new Function` on first parse):
// a CLI parses each schema a handful of times, and compiling cost more than it saved. Measured:
// with the agent loaded lazily (mod.ts), the binary's `services validate` 63.6 -> 55.6 ms and
// `platform status` 78 -> 72 ms (A/B, 31 runs); 1,000 state-file parses take no longer.
z.config({ jitless: true });

/** Service names are file names under the state directories: they must never escape them. */
export { SERVICE_NAME_RE };

/** Signals a service may be asked to stop with. */
export const SIGNALS = [
  "SIGTERM",
  "SIGINT",
  "SIGQUIT",
  "SIGHUP",
  "SIGKILL",
  "SIGUSR1",
  "SIGUSR2",
] as const;

export const serviceNameSchema = z.string().regex(
  SERVICE_NAME_RE,
  'Invalid service name: use lowercase letters, digits, ".", "_" and "-", starting with a letter or digit',
).refine((s) => !s.includes(".."), 'Invalid service name: ".." is not allowed')
  .refine(
    (s) => s.length <= MAX_NAME_LENGTH,
    `Invalid service name: at most ${MAX_NAME_LENGTH} characters`,
  );

/**
 * The range of every number in the registry (the README's "Ranges" table says them too). Timers
 * run from 10 ms to 24 hours: Node's timers hold at most 2^31 ms (24.8 days) and fire at once
 * past that, and a check every 10 ms is already a busy loop.
 */
export const LIMITS = {
  /** Durations in seconds: check interval and timeout, start timeout, restart delays, window. */
  seconds: { min: 0.01, max: 86_400 },
  /** `shutdown.timeout`: 0 sends SIGKILL right after the stop signal. */
  shutdownSeconds: { min: 0, max: 86_400 },
  /** `health_check.retries`: consecutive failures before unhealthy. */
  retries: { min: 1, max: 100 },
  /** `startup.max_restarts`: restarts in a row before giving up. */
  maxRestarts: { min: 0, max: 1_000 },
  /** `startup.start_order`: a tiebreak. */
  startOrder: { min: -1_000_000, max: 1_000_000 },
  /** `logs.max_size`, bytes: 1 KiB to 1 TiB. */
  logSize: { min: 1024, max: 1024 ** 4 },
  /** `logs.keep`: rotated files; each start and rotation renames them all. */
  logKeep: { min: 0, max: 100 },
} as const;

const range = (r: { min: number; max: number }, unit = "") =>
  `Must be between ${r.min} and ${r.max}${unit}`;

/** A number of seconds within `r` (fractions allowed). */
const seconds = (def: number, r: { min: number; max: number } = LIMITS.seconds) =>
  z.number().min(r.min, range(r, " seconds")).max(r.max, range(r, " seconds")).default(def);
/** A whole number within `r`. */
const whole = (def: number, r: { min: number; max: number }) =>
  z.number().int("Must be a whole number").min(r.min, range(r)).max(r.max, range(r)).default(def);
const nameList = z.array(z.string().min(1, "Must not be empty")).default([]);

export const startupSchema = z.strictObject({
  auto_start: z.boolean().default(false),
  start_timeout: seconds(30),
  start_order: whole(100, LIMITS.startOrder),
  restart_on_failure: z.boolean().default(false),
  max_restarts: whole(3, LIMITS.maxRestarts),
  restart_delay: seconds(0.5),
  restart_delay_max: seconds(30),
  restart_window: seconds(60),
  /** `platform reload`: restart it too when a dependency of it is restarted (default false). */
  restart_with_dependencies: z.boolean().default(false),
});

export const shutdownSchema = z.strictObject({
  signal: z.string().transform((s) =>
    (s.toUpperCase().startsWith("SIG") ? s : `SIG${s}`).toUpperCase()
  )
    .pipe(z.enum(SIGNALS)).default("SIGTERM"),
  timeout: seconds(10, LIMITS.shutdownSeconds),
});

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  kib: 1024,
  mb: 1e6,
  mib: 1024 ** 2,
  gb: 1e9,
  gib: 1024 ** 3,
  tb: 1e12,
  tib: 1024 ** 4,
};

const SIZE_RANGE =
  `Must be between ${LIMITS.logSize.min} bytes (1 KiB) and ${LIMITS.logSize.max} bytes (1 TiB)`;
const bytes = z.number().int("Must be a whole number of bytes").min(LIMITS.logSize.min, SIZE_RANGE)
  .max(LIMITS.logSize.max, SIZE_RANGE);

/** A size: bytes as a number, or a string such as `"10MB"` / `"512 KiB"`, from 1 KiB to 1 TiB. */
export const sizeSchema = z.union([
  bytes,
  z.string().regex(
    /^\s*\d+(\.\d+)?\s*(b|kb|kib|mb|mib|gb|gib|tb|tib)?\s*$/i,
    'Invalid size: use bytes or e.g. "10MB"',
  )
    .transform((s) => {
      const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(s)!;
      return Math.round(Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()]);
    })
    .pipe(bytes),
]);

/** `[services.X.logs]`: size-based rotation of `services/logs/<name>.log`. */
export const logsSchema = z.strictObject({
  max_size: sizeSchema.default(10 * 1024 * 1024),
  keep: whole(5, LIMITS.logKeep),
});

/** `[services.X.health_check]` minus its per-type sub-table. */
export const healthCheckBaseSchema = z.looseObject({
  type: z.string().min(1).default("none"),
  interval: seconds(10),
  retries: whole(3, LIMITS.retries),
  timeout: seconds(5),
});

/** `[services.X.deployment]` minus its per-mode table. */
export const deploymentBaseSchema = z.looseObject({
  mode: z.string({ error: 'Missing "mode" (binary, docker, docker-compose, kubernetes, remote)' })
    .min(1),
});

/** One `[services.X]` table; the sub-tables of deployment and health_check are checked later. */
export const serviceSchema = z.strictObject({
  name: serviceNameSchema.optional(),
  type: z.enum(["platform", "infrastructure", "utility"]).default("utility"),
  category: z.string().min(1).default("general"),
  description: z.string().default(""),
  required_for: nameList,
  dependencies: nameList,
  conflicts: nameList,
  deployment: deploymentBaseSchema,
  health_check: healthCheckBaseSchema.default({
    type: "none",
    interval: 10,
    retries: 3,
    timeout: 5,
  }),
  startup: startupSchema.default(startupSchema.parse({})),
  shutdown: shutdownSchema.default(shutdownSchema.parse({})),
  logs: logsSchema.default(logsSchema.parse({})),
});

/**
 * `[plugins]`: which plugins a `<name>.override.*` file may replace. Without the name here an
 * override file is not used (and is reported on the services using that name): a file that
 * happens to sit in `./plugins` must not silently replace the `docker` driver.
 */
export const pluginsSchema = z.strictObject({
  /** Mode or check type names whose override file is used, e.g. `["docker", "tcp"]`. */
  override: z.array(z.string().min(1, "Must not be empty")).default([]),
});

/** The whole file. */
export const registrySchema = z.strictObject({
  plugins: pluginsSchema.optional(),
  services: z.record(z.string(), z.unknown(), { error: "Must be a table of services" }),
});

/** Environment variable names, in every `env` table (what POSIX shells and systemd accept). */
export const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A table key, as written in a TOML path: bare when it can be, else quoted. */
export function tomlKey(key: string | number): string {
  const s = String(key);
  return /^[A-Za-z0-9_-]+$/.test(s) ? s : JSON.stringify(s);
}

/** `["services", "api", "health_check"]` → `services.api.health_check`. */
export function tomlPath(segments: readonly (string | number | symbol)[]): string {
  return segments.map((s) => (typeof s === "number" ? `[${s}]` : tomlKey(String(s))))
    .join(".").replaceAll(".[", "[");
}

export { modeTable } from "../names.ts";
