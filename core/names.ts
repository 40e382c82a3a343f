/**
 * The service-name rule, once: a name is a file name under the state directories, so it must
 * never escape them; plus random hex for temp files and lock tokens.
 *
 * @module
 */
import { UsageError } from "./errors.ts";

/** The service-name rule (the registry schema validates names with it too). */
export const SERVICE_NAME_RE = /^[a-z0-9][a-z0-9._-]*$/;

/** The longest service name: it is a file name (plus suffixes) under the state directories. */
export const MAX_NAME_LENGTH = 200;

/** Why `name` is not a valid service name, or undefined when it is one. */
export function nameProblem(name: string): string | undefined {
  if (typeof name !== "string" || !SERVICE_NAME_RE.test(name) || name.includes("..")) {
    return `Invalid service name ${
      JSON.stringify(String(name))
    }: use lowercase letters, digits, ".", "_" and "-", starting with a letter or digit`;
  }
  if (name.length > MAX_NAME_LENGTH) {
    return `Invalid service name ${
      JSON.stringify(name)
    }: at most ${MAX_NAME_LENGTH} characters (it has ${name.length})`;
  }
  return undefined;
}

/**
 * `name` itself when it is a valid service name (`^[a-z0-9][a-z0-9._-]*$`, no `..`, at most
 * 200 characters), so it can be used as a file name under the state directories without escaping
 * them; throws a UsageError otherwise. Every path built from a service name goes through here.
 */
export function safeName(name: string): string {
  const problem = nameProblem(name);
  if (problem) throw new UsageError(problem);
  return name;
}

/**
 * Twelve random hex digits, for temp file names and lock tokens. Web Crypto (global in Deno,
 * Node and Bun): `node:crypto` would cost the long-lived supervisor about 1.5 MiB under Deno.
 */
export function randomHex(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The table name of a mode: `docker-compose` → `docker_compose`. */
export function modeTable(mode: string): string {
  return mode.replaceAll("-", "_");
}
