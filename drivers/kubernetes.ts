/**
 * Kubernetes deployment mode: `[services.X.deployment.kubernetes]`.
 *
 * @module
 */
import { z } from "zod";
import { defineDriver } from "../core/plugins/api.ts";
import { notYetSupported } from "./_not_yet.ts";

const dnsLabel = z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "Invalid Kubernetes name");

export const kubernetesConfig = z.strictObject({
  namespace: dnsLabel.default("default"),
  deployment_name: dnsLabel,
  manifests_path: z.string().min(1).optional(),
  context: z.string().optional(),
  kubeconfig: z.string().optional(),
  replicas: z.number().int().min(1).default(1),
});
export type KubernetesConfig = z.infer<typeof kubernetesConfig>;

const driver = defineDriver<KubernetesConfig>({
  mode: "kubernetes",
  config: kubernetesConfig,
  ...notYetSupported("kubernetes"),
});
export default driver;
