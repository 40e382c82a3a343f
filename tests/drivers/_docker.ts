/**
 * Test helpers for the real Docker engine: whether one answers at `DOCKER_HOST` (tests are
 * ignored with a printed reason when not), the offline busybox test image, free ports, a temp
 * home with a registry, and cleanup of every container a test made (by label or project).
 *
 * `scripts/dockerd.sh start DIR` starts a private engine and prints the `DOCKER_HOST` to use.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DockerEngine, engineEndpoint } from "../../drivers/docker/_api.ts";
import { Platform, stopServices } from "../../mod.ts";

/** The test image (`scripts/dockerd.sh` builds it too): busybox, `/www/health`, httpd on 8080. */
export const IMAGE = "provisioning-test/busybox:latest";
/** The same with an engine HEALTHCHECK (`busybox true` every second). */
export const HEALTH_IMAGE = "provisioning-test/busybox:health";

const DOCKER_HOST = process.env.DOCKER_HOST;

/** The engine of `DOCKER_HOST` (only meaningful when {@linkcode skipReason} is undefined). */
export const engine = new DockerEngine({ DOCKER_HOST });

/** Why docker tests cannot run here, or undefined when they can. */
export const skipReason: string | undefined = await (async () => {
  if (!DOCKER_HOST) return "DOCKER_HOST is not set (start one with scripts/dockerd.sh start DIR)";
  try {
    await engine.ping();
  } catch (error) {
    return `no Docker engine answers at ${DOCKER_HOST}: ${(error as Error).message}`;
  }
  try {
    await ensureImage(IMAGE, []);
    await ensureImage(HEALTH_IMAGE, [
      'HEALTHCHECK --interval=1s --timeout=2s CMD ["/bin/busybox","true"]',
    ]);
  } catch (error) {
    return `cannot build the test image: ${(error as Error).message}`;
  }
  return undefined;
})();

let told = false;
/** `Deno.test` that is ignored (with the reason printed once) when no engine answers. */
export function dockerTest(name: string, fn: () => Promise<void>): void {
  if (skipReason && !told) {
    told = true;
    console.log(`Skipping Docker engine tests: ${skipReason}`);
  }
  Deno.test({ name, ignore: skipReason !== undefined, fn });
}

/** Import the busybox image from the host's busybox (apt busybox-static), unless present. */
async function ensureImage(ref: string, changes: string[]): Promise<void> {
  if (await engine.inspectImage(ref)) return;
  const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((p) => existsSync(p));
  if (!busybox) throw new Error("busybox not found (apt-get install busybox-static)");
  const dir = mkdtempSync(join(tmpdir(), "prov-image-"));
  try {
    mkdirSync(join(dir, "bin"));
    mkdirSync(join(dir, "www"));
    mkdirSync(join(dir, "tmp"));
    spawnSync("cp", [busybox, join(dir, "bin/busybox")]);
    writeFileSync(join(dir, "www/health"), "ok\n");
    const tar = spawnSync("tar", ["-C", dir, "-cf", "-", "."], { maxBuffer: 64 << 20 });
    if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr}`);
    const [repo, tag] = ref.split(":");
    const query = new URLSearchParams({ fromSrc: "-", repo, tag });
    for (
      const c of ['CMD ["/bin/busybox","httpd","-f","-p","8080","-h","/www"]', ...changes]
    ) query.append("changes", c);
    await postRaw(`/images/create?${query}`, tar.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function postRaw(path: string, body: Uint8Array): Promise<void> {
  const ep = engineEndpoint({ DOCKER_HOST });
  return new Promise((resolve, reject) => {
    const req = request({
      socketPath: ep.socketPath,
      host: ep.host,
      port: ep.port,
      method: "POST",
      path,
      agent: false,
      headers: { "Content-Type": "application/x-tar", "Content-Length": body.length },
    }, (res) => {
      let text = "";
      res.on("data", (d) => (text += d));
      res.on(
        "end",
        () =>
          (res.statusCode ?? 500) < 300 && !text.includes('"error"')
            ? resolve()
            : reject(new Error(`import failed: ${res.statusCode} ${text.slice(0, 300)}`)),
      );
    });
    req.on("error", reject);
    req.end(body);
  });
}

import { freePort } from "../_ports.ts";
export { freePort };

/** A busybox httpd on 127.0.0.1:PORT that exits 0 on SIGTERM (PID 1 has no default handler). */
export function httpdCommand(port: number, verbose = true): string[] {
  return [
    "/bin/busybox",
    "sh",
    "-c",
    `trap 'exit 0' TERM; /bin/busybox httpd -f ${
      verbose ? "-vv " : ""
    }-p 127.0.0.1:${port} -h /www & wait`,
  ];
}

/** A TOML string literal. */
export const q = (s: string) => JSON.stringify(s);
/** A TOML array of strings. */
export const qa = (xs: string[]) => `[${xs.map(q).join(", ")}]`;

/** A temp dir with `home/` and a registry file; `env` for Platform.open and the CLI. */
export interface Sandbox {
  dir: string;
  home: string;
  config: string;
  env: Record<string, string>;
  /** Replace the registry text. */
  write(toml: string): void;
}

/**
 * Run `fn` in a sandbox; afterwards remove every container labelled with its home (and those
 * of `projects`, for compose) and the temp dir.
 */
export async function withSandbox(
  fn: (sb: Sandbox) => Promise<void>,
  opts: { projects?: string[]; toml?: string } = {},
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "prov-docker-"));
  const home = join(dir, "home");
  const config = join(dir, "services.toml");
  const sb: Sandbox = {
    dir,
    home,
    config,
    env: {
      ...process.env as Record<string, string>,
      DOCKER_HOST: DOCKER_HOST ?? "",
      PROVISIONING_HOME: home,
      PROVISIONING_NO_SUPERVISOR: "1",
      NO_COLOR: "1",
    },
    write: (toml) => writeFileSync(config, toml),
  };
  if (opts.toml) sb.write(opts.toml);
  try {
    await fn(sb);
  } finally {
    // Binary services of mixed graphs: stop whatever still runs (forced: SIGKILL to the group).
    if (existsSync(home) && existsSync(config)) {
      try {
        const p = await Platform.open({ config, home, env: sb.env });
        await stopServices(p, [], { force: true });
      } catch { /* the registry may be broken on purpose; containers go below anyway */ }
    }
    await removeContainers([`io.provisioning.home=${home}`]);
    for (const p of opts.projects ?? []) {
      await removeContainers([`com.docker.compose.project=${p}`]);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Force-remove every container carrying all `labels`. */
export async function removeContainers(labels: string[]): Promise<void> {
  for (const c of await engine.listContainers(labels)) await removeContainer(c.Id);
}

/** Force-remove one container (no error when it is gone). */
export async function removeContainer(id: string): Promise<void> {
  await engine.json("DELETE", `/containers/${id}`, { query: { force: 1, v: 1 } });
}

/** Poll `probe` until it returns a truthy value; throws with `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let delay = 20;; delay = Math.min(delay * 2, 250)) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`Timed out waiting for ${what}${last ? `: ${last}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** GET `url`: its status, or 0 when nothing answers. */
export async function httpStatus(url: string): Promise<number> {
  try {
    const res = await fetch(url);
    await res.body?.cancel();
    return res.status;
  } catch {
    return 0;
  }
}

/** Options of {@linkcode dockerToml}. */
export interface DockerServiceSpec {
  /** The health check's port (httpd listens there unless `command` says otherwise). */
  port: number;
  image?: string;
  command?: string[];
  containerName?: string;
  deps?: string[];
  env?: Record<string, string>;
  restartOnFailure?: boolean;
  maxRestarts?: number;
  shutdownTimeout?: number;
  startTimeout?: number;
  check?: "http" | "none";
}

/** A `[services.NAME]` docker table: busybox httpd on 127.0.0.1:PORT, host network, http check. */
export function dockerToml(name: string, s: DockerServiceSpec): string {
  const env = Object.entries(s.env ?? {}).map(([k, v]) => `${k} = ${q(v)}`).join(", ");
  return `
[services.${name}]
category = "docker"
dependencies = ${qa(s.deps ?? [])}
[services.${name}.deployment]
mode = "docker"
[services.${name}.deployment.docker]
image = ${q(s.image ?? IMAGE)}
network = "host"
command = ${qa(s.command ?? httpdCommand(s.port))}
env = { ${env} }
${s.containerName ? `container_name = ${q(s.containerName)}` : ""}
[services.${name}.health_check]
type = ${q(s.check ?? "http")}
interval = 1
${
    (s.check ?? "http") === "http"
      ? `[services.${name}.health_check.http]\nendpoint = "http://127.0.0.1:${s.port}/health"`
      : ""
  }
[services.${name}.startup]
start_timeout = ${s.startTimeout ?? 20}
restart_on_failure = ${s.restartOnFailure ?? false}
max_restarts = ${s.maxRestarts ?? 3}
[services.${name}.shutdown]
timeout = ${s.shutdownTimeout ?? 5}
`;
}
