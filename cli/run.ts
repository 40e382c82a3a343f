/**
 * The entry's two jobs besides parsing: print what an action returned, and turn an error into
 * one clear line (or a JSON document) and an exit code.
 *
 * @module
 */
import { CommanderError } from "commander";
import { ExitCode, ProvisioningError, RegistryError } from "../mod.ts";
import type { CommandResult } from "./commands/_common.ts";

const json = (doc: unknown) => console.log(JSON.stringify(doc, null, 2));

/** Print a result: `doc` as JSON with `--json` (when it has one), else `text`; its exit code. */
export function print(res: CommandResult, asJson: boolean): number {
  if (asJson && res.doc !== undefined) json(res.doc);
  else if (res.text !== undefined) console.log(res.text);
  return res.exitCode ?? ExitCode.ok;
}

/** Report an error the way the CLI contract says; returns the exit code. */
export function fail(e: unknown, asJson: boolean): number {
  if (e instanceof CommanderError) {
    if (
      e.code === "commander.helpDisplayed" || e.code === "commander.version" ||
      e.code === "commander.help"
    ) return 0;
    return ExitCode.usage;
  }
  if (e instanceof ProvisioningError || (e instanceof Error && "exitCode" in e)) {
    const pe = e as ProvisioningError;
    const lines = e instanceof RegistryError ? e.lines() : [pe.message];
    if (asJson) {
      json({
        error: pe.message,
        exit_code: pe.exitCode,
        hints: pe.hints,
        issues: e instanceof RegistryError ? e.issues : undefined,
      });
    } else {
      for (const l of lines) console.error(`❌ ${l}`);
      for (const h of pe.hints) console.error(`   ${h}`);
    }
    if (process.env.PROVISIONING_DEBUG) console.error(e);
    return pe.exitCode;
  }
  const msg = e instanceof Error ? e.message : String(e);
  if (asJson) json({ error: msg, exit_code: ExitCode.failed });
  else {
    console.error(
      `❌ ${msg}${process.env.PROVISIONING_DEBUG ? "" : " (set PROVISIONING_DEBUG=1 for details)"}`,
    );
  }
  if (process.env.PROVISIONING_DEBUG) console.error(e);
  return ExitCode.failed;
}
