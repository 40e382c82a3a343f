/**
 * Docker deployment mode: `[services.X.deployment.docker]` runs one container through the
 * Docker Engine API (`DOCKER_HOST`, default `unix:///var/run/docker.sock`), never the docker CLI.
 *
 * The container is named `container_name` (default `provisioning-<name>`) and labelled
 * `io.provisioning.service=<name>` and `io.provisioning.home=<PROVISIONING_HOME>`. Only a
 * container with both labels is ours: a container of the same name without them is never
 * started, stopped, removed or read — start fails naming it, stop and status leave it alone.
 *
 * Start creates and starts the container, or starts our existing stopped one; when the registry
 * (or the image) changed since it was created, it is recreated. Stop keeps the container (its
 * logs and exit code stay readable), like `docker compose stop`. Images are never pulled: a
 * missing image fails pre-flight with `docker pull <image>` as the hint.
 *
 * @module
 */
import { existsSync } from "node:fs";
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
import { type ContainerInspect, DockerEngine, EngineError } from "./docker/_api.ts";
import { containerLogs } from "./docker/_logs.ts";
import {
  containerExit,
  containerHandle,
  containerRuntime,
  describeContainer,
  stopContainer,
} from "./docker/_runtime.ts";
import {
  bindSource,
  CONFIG_LABEL,
  configHash,
  containerName,
  createBody,
  isOurs,
  ownerOf,
} from "./docker/_spec.ts";

/** The host and container port numbers of a mapping such as `127.0.0.1:8080:80/tcp`. */
function portsOf(mapping: string): number[] {
  const ports = mapping.replace(/\/\w+$/, "").replace(/^(?:\[[^\]]*\]|\d+(?:\.\d+){3}):/, "");
  return ports.split(":").map(Number);
}

/** Schema of `[services.X.deployment.docker]`. */
export const dockerConfig = z.strictObject({
  image: z.string().min(1, "Must name an image"),
  container_name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "Invalid container name")
    .optional(),
  ports: z.array(
    z.string().regex(
      /^(?:(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?(?:\d{1,5}:)?\d{1,5}(?:\/(?:tcp|udp|sctp))?$/,
      'Invalid port mapping: use "HOST:CONTAINER[/udp]"',
    ).refine(
      (m) => portsOf(m).every((p) => p >= 1 && p <= 65535),
      "Ports must be between 1 and 65535",
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

/** The validated `[services.X.deployment.docker]` table of `svc`. */
export function dockerConfigOf(svc: Service): DockerConfig {
  return driverConfig(dockerDriver, svc);
}

/** Engine reachable, image present, container name free (or ours), bind sources present. */
async function preflight(svc: Service, ctx: DriverContext): Promise<Finding[]> {
  const cfg = dockerConfigOf(svc);
  const engine = new DockerEngine(ctx.env);
  const reach = await engine.engineFinding(ctx.signal);
  if (!reach.ok) return [reach];
  const findings: Finding[] = [reach];
  const image = await engine.inspectImage(cfg.image, ctx.signal);
  findings.push(
    image ? { ok: true, kind: "prerequisite", message: `Image found: ${cfg.image}` } : {
      ok: false,
      kind: "prerequisite",
      message: `Image "${cfg.image}" is not present locally`,
      hint: `docker pull ${cfg.image}`,
    },
  );
  const name = containerName(svc, cfg);
  const existing = await engine.inspectContainer(name, ctx.signal);
  if (!existing) {
    findings.push({ ok: true, kind: "prerequisite", message: `Container name free: ${name}` });
  } else if (isOurs(existing, svc.name, ctx.paths.home)) {
    findings.push({ ok: true, kind: "prerequisite", message: `Container exists (ours): ${name}` });
  } else {
    findings.push(nameTaken(svc, existing));
  }
  for (const v of cfg.volumes) {
    const source = bindSource(v, ctx.cwd);
    if (source && !existsSync(source)) {
      findings.push({
        ok: false,
        kind: "prerequisite",
        message: `Volume source not found: ${source}`,
        hint: `Create it, or fix volumes of "${svc.name}" (Docker would mount an empty directory)`,
      });
    }
  }
  return findings;
}

function nameTaken(svc: Service, c: ContainerInspect): Finding {
  const name = c.Name.replace(/^\//, "");
  return {
    ok: false,
    kind: "prerequisite",
    message: `Container name "${name}" is taken by container ${c.Id.slice(0, 12)} (${ownerOf(c)})`,
    hint:
      `Remove or rename that container (docker rm ${name}), or set container_name of "${svc.name}" in the registry`,
  };
}

async function start(svc: Service, ctx: DriverContext): Promise<Handle> {
  const name = safeName(svc.name);
  const cfg = dockerConfigOf(svc);
  const engine = new DockerEngine(ctx.env);
  const cname = containerName(svc, cfg);
  const refuse = (problem: string, hints: string[] = [], exitCode: number = ExitCode.preflight) =>
    new ProvisioningError(`Cannot start "${name}": ${problem}`, { exitCode, hints });
  try {
    await engine.ping(ctx.signal);
  } catch (error) {
    const e = error as ProvisioningError;
    throw refuse(e.message, e.hints);
  }
  const image = await engine.inspectImage(cfg.image, ctx.signal);
  if (!image) {
    throw refuse(`image "${cfg.image}" is not present locally`, [`docker pull ${cfg.image}`]);
  }
  const body = createBody(svc, cfg, {
    home: ctx.paths.home,
    imageId: image.Id,
    cwd: ctx.cwd,
  });
  const wanted = (body.Labels as Record<string, string>)[CONFIG_LABEL];

  let c = await engine.inspectContainer(cname, ctx.signal);
  if (c && !isOurs(c, svc.name, ctx.paths.home)) {
    const f = nameTaken(svc, c);
    throw refuse(f.message, f.hint ? [f.hint] : []);
  }
  if (c && configHash(c) !== wanted) { // the registry or the image changed: recreate
    await stopContainer(engine, c, { timeout: svc.shutdown.timeout, signal: ctx.signal });
    await engine.must("DELETE", `/containers/${c.Id}`, { signal: ctx.signal });
    c = undefined;
  } else if (c?.State.Restarting) { // crash-looping under its restart policy: start afresh
    c = await stopContainer(engine, c, { timeout: 0, force: true, signal: ctx.signal });
  }
  try {
    if (!c) {
      const created = await engine.must<{ Id: string }>("POST", "/containers/create", {
        query: { name: cname },
        body,
        signal: ctx.signal,
      });
      c = (await engine.inspectContainer(created.Id, ctx.signal))!;
    }
    if (!c.State.Running) {
      await engine.json("POST", `/containers/${c.Id}/start`, { signal: ctx.signal });
    }
  } catch (error) {
    if (!(error instanceof EngineError)) throw error;
    const message = `Cannot start "${name}": ${error.message}`;
    throw new ProvisioningError(message, { cause: error });
  }
  const after = await engine.inspectContainer(c.Id, ctx.signal);
  if (!after) throw refuse(`container ${describeContainer(c)} vanished right after start`, [], 1);
  if (!after.State.Running && !after.State.Restarting) {
    const message = `Cannot start "${name}": container ${
      describeContainer(after)
    } exited with code ${after.State.ExitCode} right after start`;
    throw new ProvisioningError(message, {
      hints: [`See its output: provisioning services logs ${name}`],
    });
  }
  return containerHandle(after);
}

/** Our container of `svc`, or why there is none to act on. */
async function ours(
  svc: Service,
  ctx: DriverContext,
  engine: DockerEngine,
): Promise<{ c?: ContainerInspect; foreign?: ContainerInspect }> {
  const c = await engine.inspectContainer(containerName(svc, dockerConfigOf(svc)), ctx.signal);
  if (!c) return {};
  return isOurs(c, svc.name, ctx.paths.home) ? { c } : { foreign: c };
}

async function stop(svc: Service, ctx: DriverContext, opts: StopOptions = {}): Promise<StopResult> {
  const engine = new DockerEngine(ctx.env);
  const { c } = await ours(svc, { ...ctx, signal: opts.signal ?? ctx.signal }, engine);
  if (!c) return {}; // none, or not ours: never touched
  const after = await stopContainer(engine, c, {
    timeout: svc.shutdown.timeout,
    force: opts.force,
    signal: opts.signal ?? ctx.signal,
  });
  return containerExit(after);
}

async function status(svc: Service, ctx: DriverContext): Promise<RuntimeStatus> {
  const engine = new DockerEngine(ctx.env);
  const name = containerName(svc, dockerConfigOf(svc));
  let found;
  try {
    found = await ours(svc, ctx, engine);
  } catch (error) {
    if (!(error instanceof ProvisioningError)) throw error;
    const prev = await readState(ctx.paths, svc.name);
    return {
      status: prev?.status === "running" || prev?.status === "starting" ? "failed" : "stopped",
      message: `${error.message}: cannot see container ${name}`,
    };
  }
  if (found.foreign) {
    return {
      status: "stopped",
      message: `Container name "${name}" is taken by a container that is not ours (${
        ownerOf(found.foreign)
      }); it is left alone`,
    };
  }
  if (!found.c) return { status: "stopped", message: `No container ${name}` };
  return containerRuntime(found.c, await readState(ctx.paths, svc.name));
}

function logs(svc: Service, ctx: DriverContext, opts: LogOptions = {}): AsyncGenerator<string> {
  return containerLines(svc, ctx, opts, false);
}

/** `logs` with the engine's time of every line (`docker logs -t`). */
async function* logLines(
  svc: Service,
  ctx: DriverContext,
  opts: LogOptions = {},
): AsyncGenerator<LogLine> {
  for await (const raw of containerLines(svc, ctx, opts, true)) yield engineLine(raw);
}

async function* containerLines(
  svc: Service,
  ctx: DriverContext,
  opts: LogOptions,
  timestamps: boolean,
): AsyncGenerator<string> {
  const engine = new DockerEngine(ctx.env);
  const signal = opts.signal ?? ctx.signal;
  const { c, foreign } = await ours(svc, { ...ctx, signal }, engine);
  if (foreign) {
    throw new ProvisioningError(
      `Cannot show logs of "${svc.name}": container "${
        foreign.Name.replace(/^\//, "")
      }" is not ours (${ownerOf(foreign)})`,
    );
  }
  if (!c) return;
  yield* containerLogs(engine, c.Id, {
    lines: opts.lines ?? 50,
    follow: opts.follow,
    tty: c.Config.Tty,
    timestamps,
    since: timestamps ? opts.since : undefined,
    signal,
  });
}

/** The docker deployment driver. */
const dockerDriver = defineDriver<DockerConfig>({
  mode: "docker",
  config: dockerConfig,
  // The engine restarts crashed containers (restart_policy); the supervisor never does.
  capabilities: { supervision: "engine", owns: "container" },
  preflight,
  start,
  stop,
  status,
  logs,
  logLines,
});

export default dockerDriver;
