/**
 * Docker Compose deployment mode: `[services.X.deployment.docker_compose]` runs one service of
 * a compose file with `docker compose` (v2) or `docker-compose` (v1), whichever is installed.
 *
 * - start: `up -d <service>` — without `--no-deps`: dependencies between registry services are
 *   ours (started first, health-gated), but a `depends_on` inside the compose file belongs to
 *   compose, which starts those containers too. `up` recreates the container when the compose
 *   file changed, like the docker driver does when the registry changed.
 * - stop: `stop -t <shutdown.timeout> <service>`; `--force`: `kill <service>`. The container is
 *   kept (`down` is never run), so its logs and exit code stay readable.
 * - status: straight from the Engine API (containers labelled with the compose project and
 *   service), not `compose ps`: status is asked often (readiness polling, `platform status`)
 *   and one compose v1 call costs half a second of Python start-up.
 * - logs: `logs --no-color --no-log-prefix --tail N [-f] <service>`.
 *
 * The compose project (`project_name`, default "provisioning") is the identity: its containers
 * of `service_name` are the service's.
 *
 * @module
 */
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { z } from "zod";
import { ExitCode, ProvisioningError } from "../core/errors.ts";
import { defineDriver, driverConfig } from "../core/plugins/api.ts";
import { safeName } from "../core/state/files.ts";
import { engineLine } from "../core/state/log_times.ts";
import { readState } from "../core/state/store.ts";
import type {
  DriverContext,
  Finding,
  Handle,
  LogLine,
  LogOptions,
  RuntimeStatus,
  Service,
  StopOptions,
  StopResult,
} from "../core/types.ts";
import { type ContainerInspect, DockerEngine } from "./docker/_api.ts";
import {
  containerExit,
  containerHandle,
  containerRuntime,
  describeContainer,
} from "./docker/_runtime.ts";
import {
  compose,
  composeLines,
  type ComposeResult,
  type ComposeTarget,
  type ComposeTool,
  failure,
  findCompose,
  requireCompose,
} from "./docker_compose/_tool.ts";

/** Schema of `[services.X.deployment.docker_compose]`. */
export const composeConfig = z.strictObject({
  compose_file: z.string().min(1),
  service_name: z.string().min(1),
  project_name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, "Invalid project name").default(
    "provisioning",
  ),
});
export type ComposeConfig = z.infer<typeof composeConfig>;

/** The validated `[services.X.deployment.docker_compose]` table of `svc`. */
export function composeConfigOf(svc: Service): ComposeConfig {
  return driverConfig(composeDriver, svc);
}

function targetOf(cfg: ComposeConfig, ctx: DriverContext, signal?: AbortSignal): ComposeTarget {
  return {
    file: resolve(ctx.cwd, cfg.compose_file),
    project: cfg.project_name,
    env: ctx.env,
    signal: signal ?? ctx.signal,
  };
}

/** The service's containers (one-off `run` containers excluded), running ones first. */
async function containersOf(
  engine: DockerEngine,
  cfg: ComposeConfig,
  signal?: AbortSignal,
): Promise<ContainerInspect[]> {
  const list = await engine.listContainers([
    `com.docker.compose.project=${cfg.project_name}`,
    `com.docker.compose.service=${cfg.service_name}`,
    "com.docker.compose.oneoff=False",
  ], signal);
  const found = await Promise.all(list.map((c) => engine.inspectContainer(c.Id, signal)));
  return found.filter((c): c is ContainerInspect => !!c)
    .sort((a, b) => Number(b.State.Running) - Number(a.State.Running));
}

async function preflight(svc: Service, ctx: DriverContext): Promise<Finding[]> {
  const cfg = composeConfigOf(svc);
  const target = targetOf(cfg, ctx);
  const [tool, engine] = await Promise.all([
    findCompose(ctx.env),
    new DockerEngine(ctx.env).engineFinding(ctx.signal),
  ]);
  const findings: Finding[] = [
    tool ? { ok: true, kind: "prerequisite", message: `Compose found: ${tool.label}` } : {
      ok: false,
      kind: "prerequisite",
      message: "Docker Compose is not installed",
      hint: "Install the docker compose plugin (v2) or docker-compose (v1)",
    },
  ];
  const hasFile = existsSync(target.file);
  findings.push(
    hasFile ? { ok: true, kind: "prerequisite", message: `Compose file found: ${target.file}` } : {
      ok: false,
      kind: "prerequisite",
      message: `Compose file not found: ${target.file}`,
      hint: `Check compose_file of "${svc.name}" in the registry`,
    },
  );
  findings.push(engine);
  if (tool && hasFile) {
    const r = await definedServices(tool, target);
    const defined = r.stdout.split("\n").map((l) => l.trim()).filter(Boolean);
    if (r.code !== 0) {
      findings.push({
        ok: false,
        kind: "prerequisite",
        message: `Compose file invalid: ${failure(r)}`,
        hint: `Check it with: ${tool.argv.join(" ")} -f ${target.file} config`,
      });
    } else if (!defined.includes(cfg.service_name)) {
      findings.push({
        ok: false,
        kind: "prerequisite",
        message: `Service "${cfg.service_name}" is not defined in ${target.file}`,
        hint: `Defined there: ${defined.join(", ") || "(none)"}`,
      });
    } else {
      findings.push({
        ok: true,
        kind: "prerequisite",
        message: `Compose service defined: ${cfg.service_name}`,
      });
    }
  }
  return findings;
}

/** `config --services` of a compose file, once per file version (validate asks per service). */
const servicesCache = new Map<string, Promise<ComposeResult>>();
function definedServices(tool: ComposeTool, target: ComposeTarget): Promise<ComposeResult> {
  const key = `${tool.label}\0${target.file}\0${statSync(target.file).mtimeMs}\0${target.project}`;
  let p = servicesCache.get(key);
  if (!p) {
    p = compose(tool, target, ["config", "--services"]);
    servicesCache.set(key, p);
  }
  return p;
}

async function start(svc: Service, ctx: DriverContext): Promise<Handle> {
  const name = safeName(svc.name);
  const cfg = composeConfigOf(svc);
  const target = targetOf(cfg, ctx);
  const engine = new DockerEngine(ctx.env);
  const refuse = (problem: string, hints: string[] = []) =>
    new ProvisioningError(`Cannot start "${name}": ${problem}`, {
      exitCode: ExitCode.preflight,
      hints,
    });
  let tool;
  try {
    tool = await requireCompose(ctx.env);
    await engine.ping(ctx.signal);
  } catch (error) {
    const e = error as ProvisioningError;
    throw refuse(e.message, e.hints ?? []);
  }
  if (!existsSync(target.file)) {
    throw refuse(`compose file "${target.file}" not found`, ["Check compose_file in the registry"]);
  }
  const r = await compose(tool, target, ["up", "-d", cfg.service_name]);
  if (r.code !== 0) {
    const message = `Cannot start "${name}": ${tool.argv.join(" ")} up failed: ${failure(r)}`;
    throw new ProvisioningError(message);
  }
  const [c] = await containersOf(engine, cfg, ctx.signal);
  if (!c || (!c.State.Running && !c.State.Restarting)) {
    const how = c
      ? `container ${describeContainer(c)} exited with code ${c.State.ExitCode}`
      : "no container";
    const message = `Cannot start "${name}": ${how} right after start`;
    throw new ProvisioningError(message, {
      hints: [`See its output: provisioning services logs ${name}`],
    });
  }
  return containerHandle(c, {
    project: cfg.project_name,
    service: cfg.service_name,
    compose_file: target.file,
  });
}

async function stop(
  svc: Service,
  ctx: DriverContext,
  opts: StopOptions = {},
): Promise<StopResult> {
  const name = safeName(svc.name);
  const cfg = composeConfigOf(svc);
  const signal = opts.signal ?? ctx.signal;
  const engine = new DockerEngine(ctx.env);
  const up = (await containersOf(engine, cfg, signal)).filter((c) =>
    c.State.Running || c.State.Restarting
  );
  if (up.length === 0) return {};
  const tool = await requireCompose(ctx.env);
  const args = opts.force
    ? ["kill", cfg.service_name]
    : ["stop", "-t", String(svc.shutdown.timeout), cfg.service_name];
  const r = await compose(tool, targetOf(cfg, ctx, signal), args);
  if (r.code !== 0) {
    throw new ProvisioningError(
      `Cannot stop "${name}": ${tool.argv.join(" ")} ${args[0]} failed: ${failure(r)}`,
    );
  }
  const after = await engine.inspectContainer(up[0].Id, signal);
  if (after?.State.Running && !after.State.Restarting) {
    throw new ProvisioningError(
      `Cannot stop "${name}": container ${describeContainer(after)} still runs`,
    );
  }
  return containerExit(after);
}

async function status(svc: Service, ctx: DriverContext): Promise<RuntimeStatus> {
  const cfg = composeConfigOf(svc);
  let found: ContainerInspect[];
  try {
    found = await containersOf(new DockerEngine(ctx.env), cfg, ctx.signal);
  } catch (error) {
    if (!(error instanceof ProvisioningError)) throw error;
    const prev = await readState(ctx.paths, svc.name);
    return {
      status: prev?.status === "running" || prev?.status === "starting" ? "failed" : "stopped",
      message: `${error.message}: cannot see compose service ${cfg.service_name}`,
    };
  }
  if (found.length === 0) {
    return {
      status: "stopped",
      message: `No container of compose service ${cfg.project_name}/${cfg.service_name}`,
    };
  }
  return containerRuntime(found[0], await readState(ctx.paths, svc.name));
}

function logs(svc: Service, ctx: DriverContext, opts: LogOptions = {}): AsyncGenerator<string> {
  return composeLogs(svc, ctx, opts, false);
}

/** `logs` with the engine's time of every line (`logs --timestamps`). */
async function* logLines(
  svc: Service,
  ctx: DriverContext,
  opts: LogOptions = {},
): AsyncGenerator<LogLine> {
  for await (const raw of composeLogs(svc, ctx, opts, true)) yield engineLine(raw);
}

async function* composeLogs(
  svc: Service,
  ctx: DriverContext,
  opts: LogOptions,
  timestamps: boolean,
): AsyncGenerator<string> {
  const cfg = composeConfigOf(svc);
  const tool = await requireCompose(ctx.env);
  const args = ["logs", "--no-color", "--no-log-prefix", "--tail", String(opts.lines ?? 50)];
  if (opts.follow) args.push("-f");
  if (timestamps) args.push("--timestamps");
  let first = true;
  for await (
    const line of composeLines(tool, targetOf(cfg, ctx, opts.signal), [...args, cfg.service_name])
  ) {
    // compose v1 announces "Attaching to <containers>" on stdout before the log lines
    if (first && line.startsWith("Attaching to ")) continue;
    first = false;
    yield line;
  }
}

/** The docker-compose deployment driver. */
const composeDriver = defineDriver<ComposeConfig>({
  mode: "docker-compose",
  config: composeConfig,
  // The engine restarts crashed containers (the compose file's restart:); never the supervisor.
  capabilities: { supervision: "engine", owns: "container" },
  preflight,
  start,
  stop,
  status,
  logs,
  logLines,
});

export default composeDriver;
