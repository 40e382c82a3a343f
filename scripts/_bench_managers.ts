/**
 * The process managers the supervision benchmarks compare, each running the same programs in a
 * temp directory of its own: ours (`startServices`, so the supervisor runs them), PM2 (npm
 * `pm2`, its own `PM2_HOME`, default `autorestart`) and supervisord (apt `supervisor`,
 * `supervisord -n` with `autorestart=true` and a unix socket in the temp dir). Each one's
 * `stop()` ends its programs and its daemon and removes its temp dir.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { Platform, startServices, stopServices, stopSupervisor } from "../mod.ts";
import { q, ROOT, running, scriptCommand, SERVICE_SCRIPT, tempDir } from "./_bench_util.ts";

/** One program to manage: the demo service as an HTTP server on `port`. */
export interface App {
  name: string;
  port: number;
  /** Arguments of `service.mjs` after the script. */
  args: string[];
}

/** A manager running some apps. */
export interface Managed {
  /** `ours`, `PM2`, `supervisord`. */
  name: string;
  /** The PID of the long-lived manager process (whose idle cost is measured). */
  daemonPid(): number | undefined;
  /** Stop the apps and the daemon; remove the temp dir. Never throws. */
  stop(): Promise<void>;
}

/** The demo service on `port`, ready `readyMs` after its script starts. */
export function httpApp(name: string, port: number, readyMs: number): App {
  return {
    name,
    port,
    args: [
      "--kind",
      "http",
      "--port",
      String(port),
      "--ready-after",
      String(readyMs),
      "--name",
      name,
    ],
  };
}

/** The interpreter that runs `service.mjs` (node when on PATH, as every manager here uses). */
export function appCommand(app: App): { command: string; args: string[] } {
  const run = scriptCommand();
  return { command: run.command, args: [...run.args(SERVICE_SCRIPT), ...app.args] };
}

/** Register `stop` for Ctrl+C while the manager runs; returns a stop that unregisters it. */
function managed(name: string, daemonPid: () => number | undefined, stop: () => Promise<void>) {
  const once = async () => {
    running.delete(once);
    await stop().catch(() => {});
  };
  running.add(once);
  return { name, daemonPid, stop: once } satisfies Managed;
}

/**
 * Ours: a registry of `apps` (http check every `interval` s, `restart_on_failure`, a
 * `restart_window` of 1 s so a kill after a second of uptime counts as a first crash), started
 * with `startServices`.
 */
export async function startOurs(
  apps: App[],
  opts: { interval?: number; env?: Record<string, string> } = {},
): Promise<Managed & { home: string; config: string }> {
  const tmp = tempDir("supervision-ours");
  const home = join(tmp.dir, "home");
  let p: Platform | undefined;
  const m = managed("ours", () => pidFile(join(home, "run", "supervisor.pid")), async () => {
    if (p) await stopServices(p, [], { force: true }).catch(() => {});
    await stopSupervisor(home).catch(() => false);
    tmp.remove();
  });
  try {
    const config = join(tmp.dir, "services.toml");
    writeFileSync(config, oursToml(apps, opts.interval ?? 10));
    p = await Platform.open({
      config,
      home,
      env: { ...process.env, PROVISIONING_HOME: home, ...opts.env },
    });
    const r = await startServices(p, apps.map((a) => a.name));
    if (!r.ok) {
      const bad = r.outcomes.find((o) => o.status !== "started");
      throw new Error(`Cannot start the benchmark services: ${bad?.name}: ${bad?.message}`);
    }
    return { ...m, home, config };
  } catch (e) {
    await m.stop();
    throw e;
  }
}

/** Our registry of `apps`: binary services, http checks every `interval` s, restarted on failure. */
export function oursToml(apps: App[], interval: number): string {
  return apps.map((a) => {
    const cmd = appCommand(a);
    return [
      `[services.${q(a.name)}]`,
      `deployment = { mode = "binary", binary = { binary_path = ${q(cmd.command)}, args = [${
        cmd.args.map(q).join(", ")
      }] } }`,
      `health_check = { type = "http", interval = ${interval}, http = { endpoint = ${
        q(`http://127.0.0.1:${a.port}/health`)
      } } }`,
      "startup = { restart_on_failure = true, max_restarts = 1000, restart_window = 1 }",
      "",
    ].join("\n");
  }).join("\n");
}

/** PM2 from `node_modules/.bin/pm2`, with `PM2_HOME` in a temp dir, apps from an ecosystem file. */
export async function startPm2(apps: App[]): Promise<Managed> {
  const interpreter = apps.length ? appCommand(apps[0]).command : undefined;
  return await startPm2Ecosystem({
    apps: apps.map((a) => ({ name: a.name, script: SERVICE_SCRIPT, args: a.args, interpreter })),
  });
}

/** PM2 running an ecosystem, as {@linkcode startPm2Ecosystem} returns it. */
export interface Pm2Managed extends Managed {
  /** Its `PM2_HOME` (every process PM2 starts has it in its environment). */
  home: string;
  /** Wall milliseconds of `pm2 start ecosystem.config.json`, the daemon's start included. */
  startMs: number;
  /** Run `pm2 ARGS` with this `PM2_HOME` to its end; its wall milliseconds. */
  pm2(args: string[]): Promise<number>;
}

/**
 * PM2 (its own `PM2_HOME` in a temp dir) running `ecosystem`, the object of an ecosystem file
 * (`{apps: [...]}`), started with `pm2 start ecosystem.config.json`: the daemon starts with it.
 * `stop()` is `pm2 kill` (the apps, then the daemon) and removes the temp dir.
 */
export async function startPm2Ecosystem(
  ecosystem: { apps: unknown[] },
  opts: { prefix?: string } = {},
): Promise<Pm2Managed> {
  const pm2 = join(ROOT, "node_modules", ".bin", "pm2");
  if (!existsSync(pm2)) throw new Error(`Cannot run PM2: ${pm2} not found (npm ci)`);
  const tmp = tempDir(opts.prefix ?? "supervision-pm2");
  const env = { ...process.env, PM2_HOME: join(tmp.dir, "pm2") };
  const m = managed("PM2", () => pidFile(join(env.PM2_HOME, "pm2.pid")), async () => {
    await run(pm2, ["kill"], { env }).catch(() => {}); // stops the apps, then the daemon
    tmp.remove();
  });
  const timed = async (args: string[]) => {
    const t0 = performance.now();
    await run(pm2, args, { env });
    return performance.now() - t0;
  };
  try {
    const file = join(tmp.dir, "ecosystem.config.json");
    writeFileSync(file, JSON.stringify(ecosystem));
    const startMs = await timed(["start", file]);
    return { ...m, home: env.PM2_HOME, startMs, pm2: timed };
  } catch (e) {
    await m.stop();
    throw e;
  }
}

/** supervisord in the foreground (`-n`), one `[program:x]` per app, `autorestart=true`. */
export async function startSupervisord(apps: App[]): Promise<Managed & { conf: string }> {
  const bin = "/usr/bin/supervisord";
  if (!existsSync(bin)) throw new Error("Cannot run supervisord: apt-get install supervisor");
  const tmp = tempDir("supervision-supervisord");
  const conf = join(tmp.dir, "supervisord.conf");
  writeFileSync(conf, supervisordConf(tmp.dir, apps));
  const daemon = spawn(bin, ["-n", "-c", conf], { stdio: "ignore" });
  const exited = new Promise((resolve) => daemon.once("exit", resolve));
  const error = await new Promise<Error | undefined>((resolve) => {
    daemon.once("spawn", () => resolve(undefined));
    daemon.once("error", resolve);
  });
  if (error) {
    tmp.remove();
    throw new Error(`Cannot run supervisord: ${error.message}`);
  }
  const m = managed("supervisord", () => daemon.pid, async () => {
    // SIGTERM: supervisord stops its programs, then exits.
    if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill("SIGTERM");
    const timer = setTimeout(() => daemon.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
    tmp.remove();
  });
  return { ...m, conf };
}

function supervisordConf(dir: string, apps: App[]): string {
  const lines = [
    "[unix_http_server]",
    `file=${join(dir, "supervisor.sock")}`,
    "chmod=0700",
    "[supervisord]",
    `logfile=${join(dir, "supervisord.log")}`,
    `pidfile=${join(dir, "supervisord.pid")}`,
    `childlogdir=${dir}`,
    "nodaemon=true",
    ...(process.getuid?.() === 0 ? ["user=root"] : []), // else it warns about running as root
    "[rpcinterface:supervisor]",
    "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
    "[supervisorctl]",
    `serverurl=unix://${join(dir, "supervisor.sock")}`,
  ];
  for (const a of apps) {
    const cmd = appCommand(a);
    lines.push(
      `[program:${a.name}]`,
      `command=${[cmd.command, ...cmd.args].join(" ")}`,
      "autorestart=true",
      `stdout_logfile=${join(dir, `${a.name}.log`)}`,
      "redirect_stderr=true",
    );
  }
  return lines.join("\n") + "\n";
}

/** The first field of a PID file, or undefined. */
function pidFile(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, "utf8").trim().split(/\s+/)[0]);
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Run a command to its end; throws with its output when it fails. */
function run(command: string, args: string[], opts: { env: NodeJS.ProcessEnv }): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: opts.env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.once("error", reject);
    child.once("close", (code) => {
      if (code === 0) resolve();
      else reject(new Error(`"${command} ${args.join(" ")}" exited with code ${code}:\n${output}`));
    });
  });
}
