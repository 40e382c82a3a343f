/**
 * The fingerprint of a service's effective configuration (after variable expansion and
 * defaults): what it was started with, recorded in its state (`config_hash`,
 * `deployment_hash`), and what `platform reload` compares the edited registry against.
 *
 * Two hashes, because a change means two different things. `deployment_hash` covers what the
 * running process is made of — the `deployment` table and the files its driver reads at start
 * (the variables of an env file: `Driver.configInputs`) — and a change there restarts the
 * service. `config_hash` covers everything (also `health_check`, `startup`, `shutdown`, `logs`,
 * `dependencies` and the descriptive keys): a change outside the deployment is applied to the
 * running service in place (the supervisor takes the new check and restart policy; stop reads
 * `shutdown` from the registry each time).
 *
 * A hash is the first 12 hex digits of the SHA-256 of canonical JSON: keys sorted at every
 * level, `undefined` left out, so the order of keys in the file never matters.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { Driver, DriverContext, Service } from "../types.ts";

/** The two fingerprints of one service's configuration. */
export interface ConfigHashes {
  /** Everything of the service, and its driver's inputs. */
  config_hash: string;
  /** `deployment` and its driver's inputs: a change restarts it. */
  deployment_hash: string;
}

/**
 * JSON with the keys of every object sorted and `undefined` members left out (RFC 8785 in all
 * that matters here: both sides come from the same serializer, so numbers agree).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) {
    return `[${value.map((v) => (v === undefined ? "null" : canonicalJson(v))).join(",")}]`;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
}

/** The short hex SHA-256 of `value`'s canonical JSON. */
export function hashOf(value: unknown): string {
  return createHash("sha256").update(canonicalJson(value)).digest("hex").slice(0, 12);
}

/** The hashes of `svc` with its driver's `inputs` (`Driver.configInputs`). */
export function configHashes(svc: Service, inputs: Record<string, unknown> = {}): ConfigHashes {
  return {
    config_hash: hashOf({ service: svc, inputs }),
    deployment_hash: hashOf({ deployment: svc.deployment, inputs }),
  };
}

/**
 * What `svc`'s driver reads at start besides the registry (`Driver.configInputs`); empty when
 * it reads nothing or they cannot be read (a missing env file fails the start, not the hash).
 */
export async function configInputs(
  svc: Service,
  driver: Pick<Driver, "configInputs">,
  ctx: DriverContext,
): Promise<Record<string, unknown>> {
  if (!driver.configInputs) return {};
  return await driver.configInputs(svc, ctx).catch(() => ({}));
}

/** {@linkcode configHashes} of `svc` as its driver would start it now. */
export async function serviceHashes(
  svc: Service,
  driver: Pick<Driver, "configInputs">,
  ctx: DriverContext,
): Promise<ConfigHashes> {
  return configHashes(svc, await configInputs(svc, driver, ctx));
}
