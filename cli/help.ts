/**
 * Help that teaches: one table of examples keyed by command path (`"services start"`, `""` for
 * the program itself), printed as an `Examples:` section after each command's options, and
 * `help GROUP COMMAND` at any depth (commander's own help command goes one level down).
 *
 * The examples use the bundled registry's services (`config/services.toml`): orchestrator,
 * control-center, mcp-server, api-gateway ... and its operations (`server`, `api`).
 *
 * @module
 */
import type { Command } from "commander";
import { loadLib, UsageError } from "./commands/_lib.ts";

/** One example: the command line, and what it does (optional). */
export type Example = readonly [line: string, what?: string];

/** Every command's examples, by path. A command missing here fails `tests/e2e/cli_help_test.ts`. */
export const EXAMPLES: Record<string, readonly Example[]> = {
  "": [
    ["provisioning platform start --dry-run", "what starting the platform would do"],
    ["provisioning help services start", "one command's options and examples"],
  ],
  "platform": [
    ["provisioning platform start", "every auto_start service, with its dependencies"],
    ["provisioning platform status", "running count, services by category"],
  ],
  "platform start": [
    ["provisioning platform start --dry-run", "the plan: waves, critical path"],
    ["provisioning platform start api-gateway --recreate", "and all it needs"],
  ],
  "platform stop": [
    ["provisioning platform stop", "dependents first"],
    ["provisioning platform stop orchestrator --dry-run", "the plan, or the refusal"],
  ],
  "platform restart": [
    ["provisioning platform restart", "every running service"],
    ["provisioning platform restart api-gateway", "one service (dependents stay up)"],
  ],
  "platform reload": [
    ["provisioning platform reload --dry-run", "what changed in the registry, what would happen"],
    ["provisioning platform reload", "restart what changed, start added, stop removed services"],
  ],
  "platform status": [
    ["provisioning platform status"],
    ["provisioning platform status --json", "{running, total, services}"],
  ],
  "platform health": [
    ["provisioning platform health", "one check of every service; unhealthy exits 1"],
    ["provisioning platform health --json"],
  ],
  "platform logs": [
    ["provisioning platform logs orchestrator --lines 100"],
    ["provisioning platform logs api-gateway --follow", "until Ctrl+C"],
    ["provisioning platform logs --follow", "every service's lines as they come, name | line"],
    ["provisioning platform logs --since 10m -t", "the last ten minutes, with times"],
  ],
  "services": [
    ["provisioning services list --running"],
    ["provisioning services start api-gateway --skip-preflight"],
  ],
  "services list": [
    ["provisioning services list --category api"],
    ["provisioning services list --running --json"],
  ],
  "services status": [
    ["provisioning services status orchestrator", "pid, uptime, restarts, health"],
    ["provisioning services status --json", "every service"],
  ],
  "services start": [
    ["provisioning services start api-gateway", "pre-flight checks, dependencies first"],
    ["provisioning services start orchestrator --skip-preflight"],
  ],
  "services stop": [
    ["provisioning services stop api-gateway"],
    ["provisioning services stop orchestrator --force", "even while dependents run"],
  ],
  "services restart": [
    ["provisioning services restart api-gateway"],
    ["provisioning services restart orchestrator control-center"],
  ],
  "services health": [
    ["provisioning services health orchestrator", "unhealthy exits 1"],
    ["provisioning services health --json", "every service"],
  ],
  "services logs": [
    ["provisioning services logs orchestrator --lines 20"],
    ["provisioning services logs orchestrator --follow --json", "JSON lines until Ctrl+C"],
    ["provisioning services logs orchestrator api-gateway --timestamps", "two, merged by time"],
    ["provisioning services logs --since 2026-01-31T10:00Z --json", "one JSON document"],
  ],
  "services monitor": [
    ["provisioning services monitor orchestrator --interval 5"],
    ["provisioning services monitor --changes", "only when a service's health changes"],
  ],
  "services check": [
    ["provisioning services check api", "does all that api needs run?"],
    ["provisioning services check server --start", "start what it needs, until healthy"],
  ],
  "services dependencies": [
    ["provisioning services dependencies api-gateway", "dependencies and dependents"],
    ["provisioning services dependencies --format mermaid > deps.mmd"],
  ],
  "services validate": [
    ["provisioning services validate"],
    ["provisioning services validate --config ./services.toml --json"],
  ],
  "services readiness": [
    ["provisioning services readiness", "what runs, what can start, what stops the rest"],
    ["provisioning services readiness --json"],
  ],
  "supervisor": [
    ["provisioning supervisor status"],
  ],
  "supervisor run": [
    ["provisioning supervisor run", "in the foreground, until Ctrl+C"],
  ],
  "supervisor status": [
    ["provisioning supervisor status --json"],
  ],
  "supervisor stop": [
    ["provisioning supervisor stop", "services keep running"],
  ],
  "plugins": [
    ["provisioning plugins list"],
  ],
  "plugins list": [
    ["provisioning plugins list --json"],
    ["provisioning plugins list --all", "import every plugin found (runs its code)"],
  ],
  "agent": [
    ["provisioning agent", "on 127.0.0.1:7070"],
    ["provisioning agent --listen 0.0.0.0:7443 --tls-cert cert.pem --tls-key key.pem"],
  ],
  "agent token": [
    ["provisioning agent token", "created when missing"],
  ],
  "events": [
    ["provisioning events --since 1h", "what happened in the last hour, oldest first"],
    ["provisioning events orchestrator --follow", "one service's events as they happen"],
    ["provisioning events --since 2026-12-02T03:00:00Z --json", "JSON lines"],
  ],
  "why": [
    ["provisioning why api-gateway", "down the dependency chain to the root cause"],
    ["provisioning why orchestrator --json", "the chain as data; exit 0 only when healthy"],
  ],
  "completion": [
    ["provisioning completion bash > /etc/bash_completion.d/provisioning"],
    ["provisioning completion fish > ~/.config/fish/completions/provisioning.fish"],
  ],
};

/** `cmd`'s path below the program: `"services start"`, `""` for the program. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

/** Every command of the tree, the program first, depth first. */
export function allCommands(program: Command): Command[] {
  return [program, ...program.commands.flatMap(allCommands)];
}

/** The `Examples:` section of one path's table entry (empty without one). */
export function examplesText(path: string): string {
  const examples = EXAMPLES[path] ?? [];
  if (!examples.length) return "";
  // Comments line up, at the width of the longest commented line (a long bare one may pass it).
  const width = Math.max(0, ...examples.filter(([, what]) => what).map(([line]) => line.length));
  const lines = examples.map(([line, what]) =>
    what ? `  ${line.padEnd(width)}  # ${what}` : `  ${line}`
  );
  return `\nExamples:\n${lines.join("\n")}\n`;
}

/** Give every command of the built tree its examples (as `acceptGlobalOptions`, once). */
export function addExamples(program: Command): void {
  for (const cmd of allCommands(program)) {
    const text = examplesText(commandPath(cmd));
    if (text) cmd.addHelpText("after", text);
  }
}

/**
 * `help GROUP COMMAND ...` → `GROUP COMMAND --help`, so help works at any depth (commander's
 * help command only passes its first word on). An unknown word is a usage error naming the
 * commands there are. Anything else comes back as it was.
 */
export async function expandHelp(program: Command, argv: string[]): Promise<string[]> {
  if (argv[0] !== "help") return argv;
  const end = argv.findIndex((a, i) => i > 0 && a.startsWith("-"));
  const words = argv.slice(1, end === -1 ? undefined : end);
  let cmd = program;
  for (const word of words) {
    if (!cmd.commands.length) break;
    const sub = cmd.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (!sub) {
      await loadLib(); // the error's class
      const where = commandPath(cmd);
      throw new UsageError(`Unknown command "${[where, word].filter(Boolean).join(" ")}"`, [
        `Commands${where ? ` of "${where}"` : ""}: ${cmd.commands.map((c) => c.name()).join(", ")}`,
      ]);
    }
    cmd = sub;
  }
  return [...argv.slice(1), "--help"];
}
