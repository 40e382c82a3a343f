/**
 * Remote deployment mode: `[services.X.deployment.remote]` — a service that runs elsewhere and
 * that this program does not own (as compose's `external: true`). It is connected to, never
 * started or stopped.
 *
 * ```toml
 * [services.orchestrator.deployment]
 * mode = "remote"
 * [services.orchestrator.deployment.remote]
 * endpoint = "https://orchestrator.example.com"
 * tls_enabled = true
 * auth_token_path = "${HOME}/.provisioning/tokens/orchestrator.token"
 * ```
 *
 * - start spawns nothing: it waits, within `startup.start_timeout`, until the endpoint is ready
 *   (TLS verified against `ca_file` or the system roots; then, without a health check, a
 *   `GET endpoint` answering below 500; with one, the lifecycle's prober runs the check next).
 *   A failure that waiting cannot cure (TLS verification, a refused token) ends it at once.
 * - stop does nothing to it: the lifecycle reports `not_managed` (capability `owns: "external"`).
 * - status probes the endpoint (bounded by `timeout`; one probe per second at most is shared by
 *   the reads of one process): running while it answers, failed with the reason otherwise.
 *   Nobody here can restart it; the supervisor watches whether it answers (`supervision:
 *   "observe"`) and records each change in its state and log.
 * - The token of `auth_token_path` goes as `Authorization: Bearer` with every request, read
 *   fresh each time, and is never printed.
 *
 * docs/remote.md describes it all.
 *
 * @module
 */
import { z } from "zod";
import { defineDriver, driverConfig } from "../core/plugins/api.ts";
import type {
  DriverContext,
  Finding,
  Handle,
  HttpRequester,
  LogOptions,
  RuntimeStatus,
  Service,
  StopOptions,
} from "../core/types.ts";
import { displayEndpoint } from "./remote/_target.ts";
import type { AgentConfig } from "./remote/_agent.ts";
import { SERVICE_NAME_RE } from "../core/names.ts";

/** The working parts, imported on first use (`services list` of nothing started needs none). */
const ops = () => import("./remote/_ops.ts");

/** RFC 9110 token: what a header name may contain. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers this driver sets itself: the token's, and the endpoint's host. */
const RESERVED_HEADERS = new Set(["authorization", "host"]);

/** Schema of `[services.X.deployment.remote]`. */
export const remoteConfig = z.strictObject({
  /** The service's URL; its scheme says whether it speaks TLS. */
  endpoint: z.url({ protocol: /^https?$/, error: "Invalid URL (http or https)" })
    .refine((u) => !URL.canParse(u) || (!new URL(u).username && !new URL(u).password), {
      message: "Credentials do not belong in the URL: put the token in auth_token_path",
    }),
  /** Must agree with the endpoint's scheme (default: what the scheme says). */
  tls_enabled: z.boolean().optional(),
  /** A file holding the bearer token (read fresh for every request; mode 0600). */
  auth_token_path: z.string().min(1).optional(),
  /** PEM file of the CA certificate(s) to trust instead of the system roots. */
  ca_file: z.string().min(1).optional(),
  /** Skip TLS verification (a warning at every use). */
  insecure: z.boolean().default(false),
  /** The name the server's certificate must carry (and SNI), when not the endpoint's host. */
  tls_server_name: z.string().min(1).optional(),
  /** Mutual TLS: our client certificate (PEM) and its key; both or neither. */
  client_cert: z.string().min(1).optional(),
  client_key: z.string().min(1).optional(),
  /** Seconds one request may take. */
  timeout: z.number().positive("Must be more than 0 seconds").max(300, "At most 300 seconds")
    .default(10),
  /** Extra request headers (not Authorization, which the token sets, nor Host). */
  headers: z.record(
    z.string().regex(HEADER_NAME, "Invalid header name"),
    z.string().regex(/^[^\r\n\0]*$/, "Header values cannot contain line breaks"),
  ).default(() => ({})),
  /** The endpoint is another host's `provisioning agent`. */
  agent: z.boolean().optional(),
  /** The service's name there (default: the same name). */
  service: z.string().regex(SERVICE_NAME_RE, "Invalid service name").max(200).optional(),
  /** `observe`: ready when it runs there, never started or stopped from here; `forward`: do. */
  control: z.enum(["observe", "forward"], {
    error: 'Must be "observe" or "forward"',
  }).optional(),
}).superRefine((c, ctx) => {
  if (!c.agent) {
    for (const key of ["service", "control"] as const) {
      if (c[key] !== undefined) {
        ctx.addIssue({ code: "custom", path: [key], message: `${key} needs agent = true` });
      }
    }
  }
  const https = c.endpoint.startsWith("https:");
  if (c.tls_enabled !== undefined && c.tls_enabled !== https) {
    ctx.addIssue({
      code: "custom",
      path: ["tls_enabled"],
      message: c.tls_enabled
        ? `tls_enabled = true, but the endpoint is http: use an https:// endpoint`
        : `tls_enabled = false, but the endpoint is https: drop tls_enabled or use http://`,
    });
  }
  if (!https) {
    for (const key of ["ca_file", "tls_server_name", "client_cert", "client_key"] as const) {
      if (c[key] !== undefined) {
        ctx.addIssue({ code: "custom", path: [key], message: `${key} needs an https endpoint` });
      }
    }
    if (c.insecure) {
      ctx.addIssue({
        code: "custom",
        path: ["insecure"],
        message: "insecure needs an https endpoint",
      });
    }
  }
  if ((c.client_cert === undefined) !== (c.client_key === undefined)) {
    const missing = c.client_cert === undefined ? "client_cert" : "client_key";
    ctx.addIssue({
      code: "custom",
      path: [missing],
      message: "Mutual TLS needs both client_cert and client_key",
    });
  }
  if (c.insecure && c.ca_file !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["insecure"],
      message: "insecure = true skips verification, so ca_file would be ignored: choose one",
    });
  }
  for (const name of Object.keys(c.headers)) {
    if (RESERVED_HEADERS.has(name.toLowerCase())) {
      ctx.addIssue({
        code: "custom",
        path: ["headers", name],
        message: name.toLowerCase() === "host"
          ? "Host comes from the endpoint"
          : "Authorization comes from auth_token_path (a token in the registry would be printed)",
      });
    }
  }
}).transform((c) => ({ ...c, tls_enabled: c.endpoint.startsWith("https:") }));
export type RemoteConfig = z.output<typeof remoteConfig>;

function configOf(svc: Service): RemoteConfig {
  return driverConfig(remoteDriver, svc);
}

async function preflight(svc: Service, ctx: DriverContext): Promise<Finding[]> {
  return (await ops()).preflight(svc, configOf(svc), ctx);
}

/** The working parts of a service behind another host's agent. */
const agentOps = () => import("./remote/_agent.ts");

async function start(svc: Service, ctx: DriverContext): Promise<Handle> {
  const cfg = configOf(svc);
  if (cfg.agent) return (await agentOps()).agentStart(svc, cfg as AgentConfig, ctx);
  return (await ops()).start(svc, cfg, ctx);
}

/**
 * Forwarded to the other host's agent (`control = "forward"`); otherwise the lifecycle does not
 * call it (`owns: "external"`): nothing to do.
 */
async function stop(svc: Service, ctx: DriverContext, opts?: StopOptions): Promise<void> {
  const cfg = configOf(svc);
  if (cfg.agent === true && cfg.control === "forward") {
    await (await agentOps()).agentStop(svc, cfg as AgentConfig, ctx, { force: opts?.force });
  }
}

async function status(svc: Service, ctx: DriverContext): Promise<RuntimeStatus> {
  const cfg = configOf(svc);
  if (cfg.agent) return (await agentOps()).agentStatus(svc, cfg as AgentConfig, ctx);
  return (await ops()).status(svc, cfg, ctx);
}

/** From the other host's agent; a plain endpoint's logs are where it runs (one line says so). */
async function* logs(svc: Service, ctx: DriverContext, opts?: LogOptions) {
  const cfg = configOf(svc);
  if (cfg.agent) return yield* (await agentOps()).agentLogs(svc, cfg as AgentConfig, ctx, opts);
  yield `--- ${svc.name} runs at ${location(svc)}; its logs are kept there`;
}

/** Whether start and stop go to the other host's agent (`agent = true`, `control = "forward"`). */
function forwards(svc: Service): boolean {
  const cfg = configOf(svc);
  return cfg.agent === true && cfg.control === "forward";
}

/**
 * The client of the service's HTTP health check for URLs of the endpoint's origin (scheme, host,
 * port): ours, with the CA, server name, client certificate and token of the remote table. Other
 * URLs are the check's own (the token never goes to another origin).
 */
function checkHttp(svc: Service, ctx: DriverContext): HttpRequester {
  const cfg = configOf(svc);
  const origin = new URL(cfg.endpoint).origin;
  return (url, init) =>
    url.origin === origin ? ops().then((o) => o.checkRequest(svc, cfg, ctx, url, init)) : undefined;
}

/** Where the service runs, for messages (`https://host:port/path`, no credentials or query). */
export function location(svc: Service): string {
  return displayEndpoint(configOf(svc).endpoint);
}

/** The remote deployment driver. */
const remoteDriver = defineDriver<RemoteConfig>({
  mode: "remote",
  config: remoteConfig,
  // Nothing of it is ours: stop leaves it running (`not_managed`), nobody restarts it, and
  // start returns only once the endpoint answers (its readiness, when it has no check of ours).
  capabilities: { supervision: "observe", owns: "external", readiness: "driver" },
  preflight,
  start,
  stop,
  status,
  logs,
  location,
  forwards,
  checkHttp,
});

export default remoteDriver;
