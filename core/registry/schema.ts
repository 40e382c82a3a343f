/**
 * The zod schema of `services.toml`, without the mode and check sub-tables: those belong to
 * the driver and check plugins (`Driver.config`, `Check.config`) and are validated by the
 * registry loader once it knows which plugins a service uses.
 *
 * @module
 */
import { z } from "zod";
import { SERVICE_NAME_RE } from "../names.ts";

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
).refine((s) => !s.includes(".."), 'Invalid service name: ".." is not allowed');

const seconds = (def: number) =>
  z.number().positive("Must be a positive number of seconds").default(def);
const count = (def: number) => z.number().int("Must be a whole number").min(0).default(def);
const nameList = z.array(z.string().min(1, "Must not be empty")).default([]);

export const startupSchema = z.strictObject({
  auto_start: z.boolean().default(false),
  start_timeout: seconds(30),
  start_order: z.number().int("Must be a whole number").default(100),
  restart_on_failure: z.boolean().default(false),
  max_restarts: count(3),
  restart_delay: seconds(0.5),
  restart_delay_max: seconds(30),
  restart_window: seconds(60),
});

export const shutdownSchema = z.strictObject({
  signal: z.string().transform((s) =>
    (s.toUpperCase().startsWith("SIG") ? s : `SIG${s}`).toUpperCase()
  )
    .pipe(z.enum(SIGNALS)).default("SIGTERM"),
  timeout: z.number().min(0, "Must not be negative").default(10),
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
};

/** A size: bytes as a number, or a string such as `"10MB"` / `"512 KiB"`. */
export const sizeSchema = z.union([
  z.number().int().positive(),
  z.string().regex(
    /^\s*\d+(\.\d+)?\s*(b|kb|kib|mb|mib|gb|gib)?\s*$/i,
    'Invalid size: use bytes or e.g. "10MB"',
  )
    .transform((s) => {
      const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(s)!;
      return Math.round(Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()]);
    }),
]);

/** `[services.X.logs]`: size-based rotation of `services/logs/<name>.log`. */
export const logsSchema = z.strictObject({
  max_size: sizeSchema.default(10 * 1024 * 1024),
  keep: z.number().int("Must be a whole number").min(0).default(5),
});

/** `[services.X.health_check]` minus its per-type sub-table. */
export const healthCheckBaseSchema = z.looseObject({
  type: z.string().min(1).default("none"),
  interval: seconds(10),
  retries: z.number().int("Must be a whole number").min(1).default(3),
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

/** The whole file. */
export const registrySchema = z.strictObject({
  services: z.record(z.string(), z.unknown(), { error: "Must be a table of services" }),
});

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
