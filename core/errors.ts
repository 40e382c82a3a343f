/**
 * User-facing errors. Each carries the CLI exit code of ARCHITECTURE.md; the CLI prints
 * `message` (plus `hints`) as one clear line and exits with `exitCode`.
 *
 * @module
 */
import type { Finding, RegistryIssue } from "./types.ts";

/** Exit codes of the CLI contract. */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  preflight: 3,
  refused: 4,
} as const;

/** Base of every error a user can cause; programmer errors stay plain `Error`s. */
export class ProvisioningError extends Error {
  override name = "ProvisioningError";
  exitCode: number;
  hints: string[];
  constructor(
    message: string,
    options: { exitCode?: number; hints?: string[]; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.exitCode = options.exitCode ?? ExitCode.failed;
    this.hints = options.hints ?? [];
  }
}

/** The registry could not be loaded: every problem at once, each with its TOML path. */
export class RegistryError extends ProvisioningError {
  override name = "RegistryError";
  file: string;
  issues: RegistryIssue[];
  constructor(file: string, issues: RegistryIssue[]) {
    super(
      issues.length === 1
        ? formatIssue(file, issues[0])
        : `Invalid registry ${file}: ${issues.length} problems`,
      { exitCode: ExitCode.usage },
    );
    this.file = file;
    this.issues = issues;
  }
  /** One line per issue, `file:line: path: message`. */
  lines(): string[] {
    return this.issues.map((i) => formatIssue(this.file, i));
  }
}

/** `file:line:col: path: message` (line and column when known). */
export function formatIssue(file: string, issue: RegistryIssue): string {
  const where = issue.line
    ? `${file}:${issue.line}${issue.column ? `:${issue.column}` : ""}`
    : file;
  return issue.path ? `${where}: ${issue.path}: ${issue.message}` : `${where}: ${issue.message}`;
}

/** The dependency graph has a cycle; `cycle` is the path, first node repeated at the end. */
export class DependencyCycleError extends ProvisioningError {
  override name = "DependencyCycleError";
  cycle: string[];
  constructor(cycle: string[]) {
    super(`Dependency cycle: ${cycle.join(" -> ")}`, { exitCode: ExitCode.usage });
    this.cycle = cycle;
  }
}

/** A pre-flight check failed; `findings` holds every result, failed ones have `ok: false`. */
export class PreflightError extends ProvisioningError {
  override name = "PreflightError";
  service: string;
  findings: Finding[];
  constructor(service: string, findings: Finding[]) {
    const failed = findings.filter((f) => !f.ok);
    super(
      `Pre-flight check failed: ${failed.map((f) => f.message).join("; ")}`,
      { exitCode: ExitCode.preflight, hints: failed.flatMap((f) => (f.hint ? [f.hint] : [])) },
    );
    this.service = service;
    this.findings = findings;
  }
}

/** A service did not become healthy within its `start_timeout`. */
export class StartTimeoutError extends ProvisioningError {
  override name = "StartTimeoutError";
  service: string;
  constructor(service: string, seconds: number, lastMessage?: string) {
    super(
      `Not healthy after ${seconds}s (start_timeout)${lastMessage ? `: ${lastMessage}` : ""}`,
      { exitCode: ExitCode.failed },
    );
    this.service = service;
  }
}

/** An operation was refused for safety (running dependents); `--force` overrides. */
export class RefusedError extends ProvisioningError {
  override name = "RefusedError";
  constructor(message: string, hints: string[] = ["Use --force to stop anyway"]) {
    super(message, { exitCode: ExitCode.refused, hints });
  }
}

/** Wrong flags or arguments, an unknown service name. */
export class UsageError extends ProvisioningError {
  override name = "UsageError";
  constructor(message: string, hints: string[] = []) {
    super(message, { exitCode: ExitCode.usage, hints });
  }
}
