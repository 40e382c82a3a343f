/**
 * Status and stop of one container, shared by the docker and docker-compose drivers.
 *
 * The engine is the truth about a container (running, restarting, exit code, OOM kill, its own
 * health check); the recorded state says what we last did with it. Nothing here writes state. A container that exited while
 * the state file says we started it has crashed (`failed`); one we stopped is `stopped`.
 *
 * @module
 */
import { ProvisioningError } from "../../core/errors.ts";
import type { Handle, RuntimeStatus, ServiceState, StopResult } from "../../core/types.ts";
import { type ContainerInspect, type DockerEngine, EngineError } from "./_api.ts";

/** How long a killed container may take to be reported gone. */
const KILL_WAIT_MS = 10_000;

/** Short id and name of a container, for messages: `provisioning-api (3f2a1b0c9d8e)`. */
export function describeContainer(c: ContainerInspect): string {
  return `${c.Name.replace(/^\//, "")} (${c.Id.slice(0, 12)})`;
}

/** The runtime status of container `c`, given the service's last recorded state. */
export function containerRuntime(c: ContainerInspect, prev?: ServiceState): RuntimeStatus {
  const s = c.State;
  const who = `Container ${describeContainer(c)}`;
  const restarts = c.RestartCount || undefined;
  if (s.Running && !s.Restarting) {
    const started = Date.parse(s.StartedAt);
    const health = s.Health ? `; engine health: ${s.Health.Status}${healthDetail(c)}` : "";
    return {
      status: "running",
      pid: s.Pid || undefined,
      uptime_s: Number.isFinite(started)
        ? Math.max(0, Math.floor((Date.now() - started) / 1000))
        : undefined,
      restarts,
      message: `${who} ${s.Paused ? "is paused" : "is running"}${health}`,
    };
  }
  const exit = `exited with code ${s.ExitCode}${s.OOMKilled ? " (OOM killed)" : ""}`;
  if (s.Restarting) {
    const policy = c.HostConfig?.RestartPolicy?.Name ?? "?";
    return {
      status: "starting",
      restarts,
      exit_code: s.ExitCode,
      message: `${who} ${exit}; the engine restarts it (restart policy "${policy}", ${
        c.RestartCount ?? 0
      } restarts so far)`,
    };
  }
  if (s.Status === "created") {
    return { status: "stopped", message: `${who} is created but not started` };
  }
  const weStopped = prev?.status === "stopped" || prev?.status === "stopping";
  const weStarted = prev?.status === "running" || prev?.status === "starting";
  const crashed = s.Dead || s.OOMKilled || weStarted || (!weStopped && s.ExitCode !== 0);
  const at = s.FinishedAt && !s.FinishedAt.startsWith("0001") ? ` at ${s.FinishedAt}` : "";
  return {
    status: crashed ? "failed" : "stopped",
    exit_code: s.ExitCode,
    restarts,
    message: `${who} ${exit}${at}${s.Error ? `: ${s.Error}` : ""}`,
  };
}

function healthDetail(c: ContainerInspect): string {
  const h = c.State.Health;
  if (!h || h.Status !== "unhealthy") return "";
  const last = h.Log?.at(-1)?.Output?.trim();
  return ` (${h.FailingStreak} failing${last ? `: ${last.slice(0, 200)}` : ""})`;
}

/**
 * Stop container `c`: the engine sends its stop signal and SIGKILL after `timeout` seconds
 * (`POST /containers/{id}/stop?t=N`); `force` kills at once. Returns the container as it is
 * afterwards. Throws when it is still running.
 */
export async function stopContainer(
  engine: DockerEngine,
  c: ContainerInspect,
  opts: { timeout: number; force?: boolean; signal?: AbortSignal },
): Promise<ContainerInspect> {
  const id = c.Id;
  if (c.State.Running || c.State.Restarting || c.State.Paused) {
    try {
      if (opts.force) {
        await engine.json("POST", `/containers/${id}/kill`, { signal: opts.signal });
      } else {
        await engine.json("POST", `/containers/${id}/stop`, {
          query: { t: opts.timeout },
          signal: opts.signal,
          timeoutMs: opts.timeout * 1000 + 30_000,
        });
      }
    } catch (error) {
      // 409: it stopped by itself in between; anything else is real.
      if (!(error instanceof EngineError && error.status === 409)) throw error;
    }
    await engine.json("POST", `/containers/${id}/wait`, {
      query: { condition: "not-running" },
      signal: opts.signal,
      timeoutMs: KILL_WAIT_MS,
    }).catch(() => {});
  }
  const after = await engine.inspectContainer(id, opts.signal);
  if (after?.State.Running && !after.State.Restarting) {
    throw new ProvisioningError(
      `Cannot stop container ${describeContainer(c)}: still running after ${
        opts.force ? "a kill" : `${opts.timeout}s and a kill`
      }`,
    );
  }
  return after ?? c;
}

/** The exit of container `c` as a stop reports it (none for a container never started). */
export function containerExit(c?: ContainerInspect): StopResult {
  return c && c.State.Status !== "created"
    ? { exit: { code: c.State.ExitCode, signal: null } }
    : {};
}

/** What a start of container `c` reports to the state store. */
export function containerHandle(c: ContainerInspect, extra: Record<string, unknown> = {}): Handle {
  return {
    pid: c.State.Pid || undefined,
    started_at: c.State.StartedAt || undefined,
    data: { container_id: c.Id, container_name: c.Name.replace(/^\//, ""), ...extra },
  };
}
