import { UsageError } from "./errors.ts";

const NAME = /^[a-z0-9][a-z0-9._-]*$/;

/**
 * `name` itself when it is a valid service name (`^[a-z0-9][a-z0-9._-]*$`, no `..`), so it can be
 * used as a file name under the state directories without escaping them; throws a UsageError
 * otherwise. Every path built from a service name goes through here.
 */
export function safeName(name: string): string {
  if (typeof name !== "string" || !NAME.test(name) || name.includes("..") || name.length > 200) {
    throw new UsageError(
      `Invalid service name ${
        JSON.stringify(String(name))
      }: use lowercase letters, digits, ".", "_" and "-", starting with a letter or digit`,
    );
  }
  return name;
}
