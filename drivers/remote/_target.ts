/**
 * What the remote driver talks to: a service's validated `[deployment.remote]` table turned into
 * a {@linkcode Target} (host, port, files resolved against the registry's directory), how an
 * endpoint is shown in messages (no credentials, no query), and which hosts are loopback.
 *
 * @module
 */
import { isIP } from "node:net";
import { resolve } from "node:path";
import type { DriverContext, Service } from "../../core/types.ts";

/** The validated config fields a target is made of (the driver's `RemoteConfig`). */
export interface TargetConfig {
  endpoint: string;
  auth_token_path?: string;
  ca_file?: string;
  insecure: boolean;
  tls_server_name?: string;
  client_cert?: string;
  client_key?: string;
  timeout: number;
  headers: Record<string, string>;
}

/** One remote endpoint, ready to be requested. Files are absolute, read at each use. */
export interface Target {
  service: string;
  /** The endpoint as shown in messages (see {@linkcode displayEndpoint}). */
  where: string;
  https: boolean;
  /** Host to connect to (an IPv6 address without brackets). */
  host: string;
  port: number;
  /** Path and query of the request. */
  path: string;
  /** `Host` header value: the endpoint's host and non-default port. */
  hostHeader: string;
  tokenPath?: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** The name the certificate must carry (and SNI), when set. */
  serverName?: string;
  insecure: boolean;
  timeoutMs: number;
  headers: Record<string, string>;
}

/** The {@linkcode Target} of `svc`; relative files resolve against the registry's directory. */
export function targetOf(svc: Service, cfg: TargetConfig, ctx: DriverContext): Target {
  const url = new URL(cfg.endpoint);
  const https = url.protocol === "https:";
  const file = (p?: string) => (p === undefined ? undefined : resolve(ctx.cwd, p));
  return {
    service: svc.name,
    where: displayEndpoint(cfg.endpoint),
    https,
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: url.port ? Number(url.port) : https ? 443 : 80,
    path: `${url.pathname || "/"}${url.search}`,
    hostHeader: url.host,
    tokenPath: file(cfg.auth_token_path),
    caFile: file(cfg.ca_file),
    certFile: file(cfg.client_cert),
    keyFile: file(cfg.client_key),
    serverName: cfg.tls_server_name,
    insecure: cfg.insecure,
    timeoutMs: Math.round(cfg.timeout * 1000),
    headers: cfg.headers,
  };
}

/**
 * An endpoint as messages show it: scheme, host, port and path — never a username, password,
 * query or fragment (any of which may carry a secret). A root path is left out.
 */
export function displayEndpoint(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    const path = url.pathname === "/" ? "" : url.pathname;
    return `${url.protocol}//${url.host}${path}`;
  } catch {
    return "(an invalid URL)";
  }
}

/**
 * Whether `host` is this machine's loopback: `localhost` (and `*.localhost`, RFC 6761), all of
 * 127.0.0.0/8, `::1`. A token may travel over plain http only to such a host.
 */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6) return h === "::1" || /^::ffff:127\./.test(h);
  return false;
}
