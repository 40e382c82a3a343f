/**
 * Which plugins a registry uses — its deployment modes, health check types and `[plugins]
 * override` opt-ins — read from the file without validating it or importing any plugin, so
 * that `plugins list` imports only what the registry would.
 *
 * @module
 */
import { type Env, expandString } from "./_expand.ts";
import { discoverRegistry, parseRegistryToml, readRegistryFile } from "./load.ts";

/** The plugin names a registry asks for. */
export interface RegistryUses {
  driver: string[];
  check: string[];
  /** `[plugins] override`. */
  override: string[];
}

/** What the discovered (or given) registry uses; nothing when it cannot be read or parsed. */
export function registryUses(
  opts: { config?: string; cwd?: string; env?: Env } = {},
): RegistryUses {
  const uses: RegistryUses = { driver: [], check: [], override: [] };
  const read = readRegistryFile(discoverRegistry(opts).file);
  if ("issue" in read) return uses;
  const parsed = parseRegistryToml(read.text);
  if (!("data" in parsed)) return uses;
  const env = opts.env ?? process.env;
  const str = (v: unknown) => (typeof v === "string" ? expandString(v, env) : undefined);
  const services = parsed.data.services;
  for (const svc of Object.values(isTable(services) ? services : {})) {
    if (!isTable(svc)) continue;
    const mode = isTable(svc.deployment) ? str(svc.deployment.mode) : undefined;
    const type = isTable(svc.health_check) ? str(svc.health_check.type) : undefined;
    if (mode && !uses.driver.includes(mode)) uses.driver.push(mode);
    if (type && type !== "none" && !uses.check.includes(type)) uses.check.push(type);
  }
  const override = isTable(parsed.data.plugins) ? parsed.data.plugins.override : undefined;
  if (Array.isArray(override)) uses.override = override.filter((n) => typeof n === "string");
  return uses;
}

function isTable(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === "object" && !Array.isArray(v) && !(v instanceof Date);
}
