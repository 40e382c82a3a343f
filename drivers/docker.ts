/**
 * Docker deployment mode: `[services.X.deployment.docker]`.
 *
 * @module
 */
import { z } from "zod";
import type { Driver } from "../core/types.ts";
import { notYetSupported } from "./_not_yet.ts";

export const dockerConfig = z.strictObject({
  image: z.string().min(1, "Must name an image"),
  container_name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "Invalid container name").optional(),
  ports: z.array(
    z.string().regex(
      /^(?:(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?(?:\d{1,5}:)?\d{1,5}(?:\/(?:tcp|udp|sctp))?$/,
      'Invalid port mapping: use "HOST:CONTAINER[/udp]"',
    ),
  ).default([]),
  volumes: z.array(z.string().min(1)).default([]),
  env: z.record(z.string(), z.string()).default({}),
  command: z.array(z.string()).optional(),
  network: z.string().optional(),
  labels: z.record(z.string(), z.string()).default({}),
  restart_policy: z.enum(["no", "always", "unless-stopped", "on-failure"]).default("no"),
});
export type DockerConfig = z.infer<typeof dockerConfig>;

const driver: Driver<DockerConfig> = { mode: "docker", config: dockerConfig, ...notYetSupported("docker") };
export default driver;
