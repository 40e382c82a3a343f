/**
 * The behaviour of a deployment mode whose driver is not written yet: its registry table is
 * validated (so a registry can describe it today), and any attempt to run it fails pre-flight
 * with one clear line and exit code 3.
 *
 * @module
 */
import { ExitCode, ProvisioningError } from "../core/errors.ts";
import type { Driver, Finding } from "../core/types.ts";

/** The methods of a driver that cannot run services yet. */
export function notYetSupported(mode: string): Omit<Driver, "mode" | "config"> {
  const message = `Deployment mode "${mode}" cannot manage services yet`;
  const fail = () =>
    Promise.reject(new ProvisioningError(message, { exitCode: ExitCode.preflight }));
  return {
    preflight: () => Promise.resolve<Finding[]>([{ ok: false, kind: "prerequisite", message }]),
    start: fail,
    stop: fail,
    status: () => Promise.resolve({ status: "stopped" as const, message }),
    logs: async function* () {
      yield* [];
      throw new ProvisioningError(message, { exitCode: ExitCode.preflight });
    },
  };
}
