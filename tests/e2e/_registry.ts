/**
 * End-to-end sandboxes: a registry written from small specs into a temp dir, free ports, a temp
 * `PROVISIONING_HOME`, and a cleanup that leaves no process behind.
 *
 * Every demo service runs `node examples/platform/service.mjs --name <name>-<token>`, where the
 * token is unique per sandbox, so a test can find its processes in `/proc` by that exact argument
 * (and never touches anything else).
 *
 * @module
 */
import { type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "smol-toml";
import { type CliResult, ROOT, runCli } from "../_cli.ts";
import { isAlive, killGroup, waitGone } from "../../core/process/identity.ts";
import { readState } from "../../core/state/store.ts";
import { type LifecycleEvent, Platform, stopServices, stopSupervisor } from "../../mod.ts";
import type { TestHost } from "../_hosts.ts";
import { until } from "../_until.ts";
export { until };

/** The demo service program. */
export const SERVICE_SCRIPT = join(ROOT, "examples/platform/service.mjs");

/** One service of a test registry. */
export interface ServiceSpec {
  name: string;
  /** The demo service's `--kind` (default `http`); `plain` has no socket and no check. */
  kind?: "http" | "tcp" | "plain";
  /** `--ready-after` in ms (default 50). */
  readyAfter?: number;
  /** More flags for service.mjs (`--exit-after 0`, `--fork 3` ...). */
  flags?: string[];
  /** Run this instead of service.mjs; gets the service's port and the sandbox dir. */
  command?: (port: number, dir: string) => { binary_path: string; args: string[] };
  /** Health check type (default: `http`/`tcp` by kind, `none` for plain). */
  check?: "http" | "tcp" | "none";
  deps?: string[];
  requiredFor?: string[];
  conflicts?: string[];
  category?: string;
  autoStart?: boolean;
  /** Seconds (default 10). */
  startTimeout?: number;
  /** Seconds before SIGKILL (default 5). */
  shutdownTimeout?: number;
}

import { freePort } from "../_ports.ts";
export { freePort };

/** Live (non-zombie) processes with `arg` as one of their exact command-line arguments. */
export async function pidsWithArg(arg: string): Promise<number[]> {
  const pids = (await readdir("/proc")).filter((e) => /^\d+$/.test(e)).map(Number);
  const hits = await Promise.all(pids.map(async (pid) => {
    const argv = await readFile(`/proc/${pid}/cmdline`, "utf8").then(
      (t) => t.split("\0"),
      (): string[] => [],
    );
    return argv.includes(arg) && (await isAlive(pid)) ? pid : undefined;
  }));
  return hits.filter((p) => p !== undefined);
}

/** Events collected from `onEvent`, with lookups by type and service. */
export class EventLog {
  readonly events: LifecycleEvent[] = [];
  readonly onEvent = (e: LifecycleEvent): void => {
    this.events.push(e);
  };
  /** Index of the first `type` event of `service`; throws when there is none. */
  index(type: LifecycleEvent["type"], service: string): number {
    const i = this.events.findIndex((e) => e.type === type && e.service === service);
    if (i < 0) {
      const seen = this.events.map((e) => `${e.type}:${e.service}`).join(" ");
      throw new Error(`No "${type}" event for "${service}"; events: ${seen}`);
    }
    return i;
  }
  /** The first `type` event of `service`. */
  get(type: LifecycleEvent["type"], service: string): LifecycleEvent {
    return this.events[this.index(type, service)];
  }
  /** Whether `a` happened before `b`, by order of emission and by timestamp. */
  before(a: [LifecycleEvent["type"], string], b: [LifecycleEvent["type"], string]): boolean {
    const [ia, ib] = [this.index(...a), this.index(...b)];
    return ia < ib && this.events[ia].elapsed_ms <= this.events[ib].elapsed_ms;
  }
}

/** A registry in a temp dir with its own state home; `await using` cleans everything up. */
export class Sandbox implements AsyncDisposable {
  readonly dir: string;
  readonly home: string;
  readonly config: string;
  readonly token: string;
  readonly ports: Record<string, number>;
  /** Environment for the library and the CLI: this process's, with the sandbox's home. */
  readonly env: Record<string, string | undefined>;
  #children: ChildProcess[] = [];

  /** The test host its CLI runs on (tests/_hosts.ts), or this machine. */
  host?: TestHost;

  private constructor(dir: string, token: string, ports: Record<string, number>) {
    this.dir = dir;
    this.token = token;
    this.ports = ports;
    this.home = join(dir, "home");
    this.config = join(dir, "services.toml");
    this.env = { ...process.env, PROVISIONING_HOME: this.home, NO_COLOR: "1" };
  }

  /** Write the registry of `specs` with free ports into a new temp dir. */
  static async create(specs: ServiceSpec[], opts: { host?: TestHost } = {}): Promise<Sandbox> {
    const dir = await mkdtemp(join(tmpdir(), "prov-e2e-"));
    const token = randomBytes(4).toString("hex");
    const ports: Record<string, number> = {};
    for (const s of specs) ports[s.name] = await freePort();
    const sb = new Sandbox(dir, token, ports);
    sb.host = opts.host;
    const services = Object.fromEntries(specs.map((s) => [s.name, sb.#table(s)]));
    await writeFile(sb.config, stringify({ services }));
    return sb;
  }

  /** The `--name` a demo service of this sandbox runs with (unique to the sandbox). */
  marker(name: string): string {
    return `${name}-${this.token}`;
  }

  /** A new `Platform` on the sandbox's registry and home. */
  open(): Promise<Platform> {
    return Platform.open({ config: this.config, home: this.home, env: this.env });
  }

  /** Run the CLI with `--config` and the sandbox's home. */
  cli(args: string[]): Promise<CliResult> {
    return runCli([...args, "--config", this.config], {
      env: { PROVISIONING_HOME: this.home },
      host: this.host,
    });
  }

  /** The service's log file. */
  log(name: string): Promise<string> {
    return readFile(join(this.home, "services", "logs", `${name}.log`), "utf8").catch(() => "");
  }

  /** Kill (SIGKILL) and await `child` when the sandbox is disposed. */
  adopt(child: ChildProcess): ChildProcess {
    this.#children.push(child);
    return child;
  }

  /**
   * Stop everything through the library (forced) and ask the home's supervisor to exit, then
   * SIGKILL whatever is left: process groups the state files still own (same PID and start time
   * only), processes started for this sandbox (its marker in their arguments or its home in their
   * environment), and adopted children. Removes the temp dir.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      const p = await this.open().catch(() => undefined);
      if (p) {
        await stopServices(p, [], { force: true }).catch(() => {});
        for (const svc of p.services) {
          const st = await readState(p.paths, svc.name).catch(() => undefined);
          if (st?.pid && st.pid_start && (await isAlive(st.pid, st.pid_start))) {
            killGroup(st.pid, "SIGKILL");
          }
        }
      }
      await stopSupervisor(this.home).catch(() => false);
      const leftovers = await this.#marked();
      for (const pid of leftovers) {
        try {
          process.kill(pid, "SIGKILL");
        } catch { /* gone meanwhile */ }
      }
      await waitGone(async () => (await this.#marked()).length > 0, 5_000);
      await Promise.all(this.#children.map((child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGKILL");
        return exited;
      }));
    } finally {
      await rm(this.dir, { recursive: true, force: true });
    }
  }

  /** Live processes with this sandbox's token in their arguments or its home in their env. */
  async #marked(): Promise<number[]> {
    const pids = (await readdir("/proc")).filter((e) => /^\d+$/.test(e)).map(Number);
    const home = `\0PROVISIONING_HOME=${this.home}\0`;
    const hits = await Promise.all(pids.map(async (pid) => {
      const argv = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
      const env = await readFile(`/proc/${pid}/environ`, "utf8").catch(() => "");
      const ours = argv.includes(`-${this.token}`) || `\0${env}`.includes(home);
      return ours && (await isAlive(pid)) ? pid : undefined;
    }));
    return hits.filter((p): p is number => p !== undefined && p !== process.pid);
  }

  #table(s: ServiceSpec): Record<string, unknown> {
    const kind = s.kind ?? "http";
    const port = this.ports[s.name];
    const check = s.check ?? (kind === "plain" ? "none" : kind);
    const binary = s.command ? s.command(port, this.dir) : {
      binary_path: "node",
      args: [
        SERVICE_SCRIPT,
        ...["--name", this.marker(s.name), "--kind", kind],
        ...(kind === "plain" ? [] : ["--port", String(port)]),
        ...["--ready-after", String(s.readyAfter ?? 50)],
        ...(s.flags ?? []),
      ],
    };
    const checks: Record<string, unknown> = {
      http: { endpoint: `http://127.0.0.1:${port}/health`, expected_status: 200 },
      tcp: { host: "127.0.0.1", port },
    };
    return {
      name: s.name,
      type: "platform",
      category: s.category ?? "test",
      description: `e2e ${s.name}`,
      required_for: s.requiredFor ?? [],
      dependencies: s.deps ?? [],
      conflicts: s.conflicts ?? [],
      deployment: { mode: "binary", binary },
      health_check: {
        type: check,
        interval: 1,
        timeout: 1,
        ...(check in checks ? { [check]: checks[check] } : {}),
      },
      startup: {
        auto_start: s.autoStart ?? false,
        start_timeout: s.startTimeout ?? 10,
      },
      shutdown: { timeout: s.shutdownTimeout ?? 5 },
    };
  }
}
