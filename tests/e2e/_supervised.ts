/**
 * Sandboxes for supervision tests: `Sandbox` registries (see `_registry.ts`) with the keys the
 * supervisor reads (`[startup]` restart policy, a `file` health check on the demo service's ready
 * file, `[logs]`), plus readers of what the supervisor leaves behind: its PID file, its status,
 * and the timestamped lines it writes into a service's log.
 *
 * @module
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parse, stringify } from "smol-toml";
import { runCli } from "../_cli.ts";
import type { StatusReport } from "../../mod.ts";
import { Sandbox, type ServiceSpec } from "./_registry.ts";

/** A `ServiceSpec` plus the supervision keys. */
export interface SupervisedSpec extends ServiceSpec {
  /** Merged into `[services.X.startup]` (`restart_on_failure`, `max_restarts` ...). */
  startup?: Record<string, unknown>;
  /** Merged into `[services.X.health_check]` (`interval`, `retries` ...). */
  health?: Record<string, unknown>;
  /** `[services.X.logs]`. */
  logs?: Record<string, unknown>;
  /**
   * Run the demo service with `--ready-file <dir>/<name>.ready` and check that file (type
   * `file`) instead of its socket: deleting the file makes the running service unhealthy.
   */
  readyFile?: boolean;
}

/** The ready file of a `readyFile` service. */
export function readyFile(sb: Sandbox, name: string): string {
  return join(sb.dir, `${name}.ready`);
}

/** `Sandbox.create`, then the supervision keys of each spec written into its registry. */
export async function supervisedSandbox(specs: SupervisedSpec[]): Promise<Sandbox> {
  const sb = await Sandbox.create(specs);
  const doc = parse(await readFile(sb.config, "utf8")) as {
    services: Record<string, Record<string, Record<string, unknown>>>;
  };
  for (const s of specs) {
    const t = doc.services[s.name];
    t.startup = { ...t.startup, ...s.startup };
    if (s.readyFile) {
      const binary = (t.deployment as { binary: { args: string[] } }).binary;
      binary.args.push("--ready-file", readyFile(sb, s.name));
      const { type: _, http: _h, tcp: _t, ...rest } = t.health_check;
      t.health_check = { ...rest, type: "file", file: { path: readyFile(sb, s.name) } };
    }
    t.health_check = { ...t.health_check, ...s.health };
    if (s.logs) t.logs = s.logs;
  }
  await writeFile(sb.config, stringify(doc));
  return sb;
}

/** `services status NAME --json` through the CLI. */
export async function cliStatus(sb: Sandbox, name: string): Promise<StatusReport> {
  const r = await sb.cli(["services", "status", name, "--json"]);
  if (r.code !== 0) throw new Error(`services status ${name} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** What `supervisor status --json` prints: `{running: false}` or the watched services. */
export interface SupervisorReport {
  running?: false;
  pid?: number;
  memory?: { rss: number; heap_used: number; heap_total: number };
  services?: { name: string; phase: string; pid?: number; streak: number }[];
}

/** `supervisor status --json` through the CLI (the home comes from the environment). */
export async function cliSupervisorStatus(sb: Sandbox): Promise<SupervisorReport> {
  const r = await runCli(["supervisor", "status", "--json"], {
    env: { PROVISIONING_HOME: sb.home },
  });
  if (r.code !== 0) throw new Error(`supervisor status exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** The PID in `run/supervisor.pid` (its first field), or undefined without the file. */
export async function supervisorPid(sb: Sandbox): Promise<number | undefined> {
  const text = await readFile(join(sb.home, "run", "supervisor.pid"), "utf8").catch(() => "");
  const pid = Number(text.trim().split(" ")[0]);
  return pid > 0 ? pid : undefined;
}

/** One `--- <ISO> <what>: <text>` line of a service's log. */
export interface LogMark {
  at: number;
  text: string;
}

/** The `--- <ISO> supervisor: ...` lines of a service's log. */
export async function supervisorLines(sb: Sandbox, name: string): Promise<LogMark[]> {
  return marks(await sb.log(name), /^--- (\S+) supervisor: (.*)$/);
}

/** The `--- <ISO> starting <name>: ...` lines the binary driver writes at each spawn. */
export async function spawnLines(sb: Sandbox, name: string): Promise<LogMark[]> {
  return marks(await sb.log(name), new RegExp(`^--- (\\S+) (starting ${name}: .*)$`));
}

function marks(log: string, re: RegExp): LogMark[] {
  return log.split("\n").map((l) => re.exec(l)).filter((m) => m !== null).map((m) => {
    const at = Date.parse(m[1]);
    if (Number.isNaN(at)) throw new Error(`Bad timestamp "${m[1]}" in log line: ${m[0]}`);
    return { at, text: m[2] };
  });
}
