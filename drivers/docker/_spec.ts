/**
 * From `[services.X.deployment.docker]` to the body of `POST /containers/create`: ports,
 * volumes, env, command, network, restart policy, and the labels that mark a container as
 * ours. A hash of the body (and of the image id) is stored as a label too, so a later start
 * can tell whether the existing container still matches the registry or must be recreated.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { isAbsolute, resolve } from "node:path";
import type { Service } from "../../core/types.ts";
import type { ContainerInspect } from "./_api.ts";

/** Label: the registry service a container belongs to. */
export const SERVICE_LABEL = "io.provisioning.service";
/** Label: the `$PROVISIONING_HOME` that manages it (two homes never touch each other's). */
export const HOME_LABEL = "io.provisioning.home";
/** Label: hash of the create body and image id, to detect a changed configuration. */
export const CONFIG_LABEL = "io.provisioning.config-hash";

/** The docker table as the driver reads it (see `dockerConfig` in `docker.ts`). */
export interface ContainerConfig {
  image: string;
  container_name?: string;
  ports: string[];
  volumes: string[];
  env: Record<string, string>;
  command?: string[];
  network?: string;
  labels: Record<string, string>;
  restart_policy: "no" | "always" | "unless-stopped" | "on-failure";
}

/** `container_name`, else `provisioning-<service>`. */
export function containerName(svc: Service, cfg: { container_name?: string }): string {
  return cfg.container_name ?? `provisioning-${svc.name}`;
}

/** Whether `c` was created by this driver for `service` under `home`. */
export function isOurs(c: ContainerInspect, service: string, home: string): boolean {
  const labels = c.Config.Labels ?? {};
  return labels[SERVICE_LABEL] === service && labels[HOME_LABEL] === home;
}

/** Who a container belongs to, in words, for an error about a name that is taken. */
export function ownerOf(c: ContainerInspect): string {
  const labels = c.Config.Labels ?? {};
  if (labels[SERVICE_LABEL]) {
    return `service "${labels[SERVICE_LABEL]}" of PROVISIONING_HOME ${labels[HOME_LABEL] ?? "?"}`;
  }
  return "not managed by provisioning";
}

/**
 * The engine restart policy: `restart_policy` as given, except that `restart_on_failure = true`
 * with policy "no" becomes `on-failure` with `max_restarts` retries (there is no supervisor
 * yet; the engine is the one that restarts a container). An explicit "on-failure" retries
 * `max_restarts` times when `restart_on_failure` is set, else without limit (Docker's default).
 */
export function restartPolicy(
  svc: Service,
  policy: ContainerConfig["restart_policy"],
): { Name: string; MaximumRetryCount: number } {
  const retries = svc.startup.restart_on_failure ? svc.startup.max_restarts : 0;
  if (policy === "no" && svc.startup.restart_on_failure) {
    return { Name: "on-failure", MaximumRetryCount: retries };
  }
  return { Name: policy, MaximumRetryCount: policy === "on-failure" ? retries : 0 };
}

const PORT =
  /^(?:(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?(?:(\d{1,5}):)?(\d{1,5})(?:\/(tcp|udp|sctp))?$/;

/** `ExposedPorts` and `PortBindings` of `["127.0.0.1:8080:80", "53/udp", ...]`. */
export function portBindings(ports: string[]): {
  exposed: Record<string, Record<string, never>>;
  bindings: Record<string, { HostIp: string; HostPort: string }[]>;
} {
  const exposed: Record<string, Record<string, never>> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const spec of ports) {
    const m = PORT.exec(spec);
    if (!m) throw new TypeError(`Invalid port mapping "${spec}"`);
    const [, ip, hostPort, containerPort, proto] = m;
    const key = `${containerPort}/${proto ?? "tcp"}`;
    exposed[key] = {};
    (bindings[key] ??= []).push({
      HostIp: (ip ?? "").replace(/^\[|\]$/g, ""),
      HostPort: hostPort ?? "",
    });
  }
  return { exposed, bindings };
}

/** A bind mount's host path, or undefined for a named or anonymous volume. */
export function bindSource(volume: string, cwd: string): string | undefined {
  const parts = volume.split(":");
  if (parts.length < 2) return undefined;
  const source = parts[0];
  if (isAbsolute(source)) return source;
  if (source.startsWith(".") || source.includes("/")) return resolve(cwd, source);
  return undefined; // a named volume
}

/** `Binds` (host paths resolved against `cwd`) and anonymous `Volumes`. */
export function volumeMounts(
  volumes: string[],
  cwd: string,
): { binds: string[]; anonymous: Record<string, Record<string, never>> } {
  const binds: string[] = [];
  const anonymous: Record<string, Record<string, never>> = {};
  for (const v of volumes) {
    const parts = v.split(":");
    if (parts.length < 2) {
      anonymous[v] = {};
      continue;
    }
    const host = bindSource(v, cwd);
    binds.push(host ? [host, ...parts.slice(1)].join(":") : v);
  }
  return { binds, anonymous };
}

/** The body of `POST /containers/create`, labelled as ours, with its configuration hash. */
export function createBody(
  svc: Service,
  cfg: ContainerConfig,
  opts: { home: string; imageId: string; cwd: string },
): Record<string, unknown> {
  const { exposed, bindings } = portBindings(cfg.ports);
  const { binds, anonymous } = volumeMounts(cfg.volumes, opts.cwd);
  const body: Record<string, unknown> = {
    Image: cfg.image,
    Cmd: cfg.command,
    Env: Object.entries(cfg.env).map(([k, v]) => `${k}=${v}`),
    Labels: { ...cfg.labels, [SERVICE_LABEL]: svc.name, [HOME_LABEL]: opts.home },
    ExposedPorts: exposed,
    Volumes: anonymous,
    StopSignal: svc.shutdown.signal,
    StopTimeout: svc.shutdown.timeout,
    HostConfig: {
      PortBindings: bindings,
      Binds: binds,
      NetworkMode: cfg.network,
      RestartPolicy: restartPolicy(svc, cfg.restart_policy),
    },
  };
  const hash = createHash("sha256").update(stableJson({ body, image: opts.imageId })).digest("hex");
  (body.Labels as Record<string, string>)[CONFIG_LABEL] = hash.slice(0, 16);
  return body;
}

/** The configuration hash a container was created with. */
export function configHash(c: ContainerInspect): string | undefined {
  return c.Config.Labels?.[CONFIG_LABEL];
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
