/**
 * Docker Compose deployment mode: `[services.X.deployment.docker_compose]`.
 *
 * @module
 */
import { z } from "zod";
import type { Driver } from "../core/types.ts";
import { notYetSupported } from "./_not_yet.ts";

export const composeConfig = z.strictObject({
  compose_file: z.string().min(1),
  service_name: z.string().min(1),
  project_name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, "Invalid project name").default("provisioning"),
});
export type ComposeConfig = z.infer<typeof composeConfig>;

const driver: Driver<ComposeConfig> = {
  mode: "docker-compose",
  config: composeConfig,
  ...notYetSupported("docker-compose"),
};
export default driver;
