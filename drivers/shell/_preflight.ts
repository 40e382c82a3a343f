/**
 * Pre-flight of the `shell` driver: the working directory exists, and the program each command
 * starts with can be found (when it is a plain word, not a shell builtin or an expression).
 *
 * @module
 */
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import type { DriverContext, Finding } from "../../core/types.ts";

/** The commands and directory the pre-flight looks at. */
export interface ShellCommands {
  start: string;
  stop: string;
  status: string;
  logs?: string;
  working_dir?: string;
  env: Record<string, string>;
}

const BUILTINS = new Set(
  (". : [ alias bg break cd command continue echo eval exec exit export false fg getopts hash " +
    "kill printf pwd read readonly return set shift test times trap true type ulimit umask " +
    "unalias unset wait if then else elif fi case esac for while until do done ! { }")
    .split(" "),
);

/** The program a command line starts with, when it is a plain word; undefined otherwise. */
export function firstProgram(command: string): string | undefined {
  for (const word of command.trim().split(/\s+/)) {
    if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(word)) continue; // VAR=value prefix
    if (!/^[A-Za-z0-9_./+@%-]+$/.test(word) || BUILTINS.has(word)) return undefined;
    return word;
  }
  return undefined;
}

async function executable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/** Where `program` resolves to (through PATH for a bare name), or undefined. */
export async function findProgram(
  program: string,
  cwd: string,
  path: string | undefined,
): Promise<string | undefined> {
  if (program.includes("/")) {
    const file = isAbsolute(program) ? program : resolve(cwd, program);
    return (await executable(file)) ? file : undefined;
  }
  for (const dir of (path ?? "").split(delimiter).filter(Boolean)) {
    const file = join(dir, program);
    if (await executable(file)) return file;
  }
  return undefined;
}

/** Every prerequisite finding of a shell service. */
export async function shellPreflight(cfg: ShellCommands, ctx: DriverContext): Promise<Finding[]> {
  const findings: Finding[] = [];
  const cwd = resolve(ctx.cwd, cfg.working_dir ?? ".");
  if (cfg.working_dir) {
    const isDir = await stat(cwd).then((s) => s.isDirectory(), () => false);
    findings.push(
      isDir ? { ok: true, kind: "prerequisite", message: `Working directory "${cwd}" exists` } : {
        ok: false,
        kind: "prerequisite",
        message: `Working directory "${cwd}" not found`,
        hint: "Create it or fix working_dir",
      },
    );
  }
  if (!(await executable("/bin/sh"))) {
    findings.push({ ok: false, kind: "prerequisite", message: `Shell "/bin/sh" not found` });
  }
  const path = cfg.env.PATH ?? ctx.env.PATH;
  const seen = new Set<string>();
  for (const what of ["start", "stop", "status", "logs"] as const) {
    const program = cfg[what] === undefined ? undefined : firstProgram(cfg[what]!);
    if (!program || seen.has(program)) continue;
    seen.add(program);
    const found = await findProgram(program, cwd, path);
    findings.push(
      found
        ? { ok: true, kind: "prerequisite", message: `Program "${program}" found: ${found}` }
        : {
          ok: false,
          kind: "prerequisite",
          message: `Program "${program}" of the ${what} command not found`,
          hint: program.includes("/") ? "Check the path" : "Install it or add its folder to PATH",
        },
    );
  }
  return findings;
}
