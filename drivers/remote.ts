/**
 * Remote deployment mode: `[services.X.deployment.remote]` — a service run elsewhere, which
 * this tool connects to but does not start or stop.
 *
 * @module
 */
import { z } from "zod";
import { defineDriver } from "../core/plugins/api.ts";
import { notYetSupported } from "./_not_yet.ts";

export const remoteConfig = z.strictObject({
  endpoint: z.url({ protocol: /^https?$/, error: "Invalid URL (http or https)" }),
  tls_enabled: z.boolean().default(false),
  auth_token_path: z.string().optional(),
  ca_file: z.string().optional(),
  insecure: z.boolean().default(false),
});
export type RemoteConfig = z.infer<typeof remoteConfig>;

const driver = defineDriver<RemoteConfig>({
  mode: "remote",
  config: remoteConfig,
  ...notYetSupported("remote"),
});
export default driver;
