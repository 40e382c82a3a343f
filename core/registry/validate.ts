/**
 * `services validate`: every configuration problem of the registry, and every missing
 * prerequisite of its services (binary not found, Docker not running ...), per service.
 *
 * @module
 */
import { formatIssue } from "../errors.ts";
import { PluginRegistry } from "../plugins/registry.ts";
import { discoverRegistry, validateRegistry } from "./load.ts";
import { statePaths, whereFrom } from "../state/files.ts";
import type { Finding } from "../types.ts";
import type { OpenOptions } from "../platform.ts";

/** One service's verdict. */
export interface ServiceValidation {
  name: string;
  valid: boolean;
  /** Configuration problems (`file:line: path: message`) and failed prerequisites. */
  errors: string[];
  /** Pre-flight prerequisite findings, passed and failed. */
  findings: Finding[];
}

/** The whole report, as `services validate --json` prints it. */
export interface ValidationReport {
  file: string;
  total: number;
  valid: number;
  invalid: number;
  services: ServiceValidation[];
  /** Problems that belong to no single service (syntax, unknown top-level keys). */
  errors: string[];
  /** True when the registry itself is invalid (exit 2); false when only prerequisites fail (exit 3). */
  config_invalid: boolean;
}

/** Validate the registry and check each valid service's prerequisites. */
export async function validateServices(
  opts: OpenOptions & { prerequisites?: boolean } = {},
): Promise<ValidationReport> {
  const { env, cwd, home } = whereFrom(opts);
  const plugins = opts.plugins ?? PluginRegistry.discover({ cwd, home, env });
  const { file } = discoverRegistry({ ...opts, env, cwd });
  const v = await validateRegistry({ ...opts, env, cwd, plugins });
  const ctx = { paths: statePaths(home), env, cwd };

  const services: ServiceValidation[] = await Promise.all(v.names.map(async (name) => {
    const errors = v.issues.filter((i) => i.service === name).map((i) => formatIssue(file, i));
    const svc = v.services.find((s) => s.name === name);
    let findings: Finding[] = [];
    if (svc && errors.length === 0 && opts.prerequisites !== false) {
      try {
        const driver = await plugins.driver(svc.deployment.mode);
        findings = (await driver.preflight(svc, ctx)).filter((f) => f.kind === "prerequisite");
      } catch (e) {
        findings = [{ ok: false, kind: "prerequisite", message: (e as Error).message }];
      }
    }
    errors.push(...findings.filter((f) => !f.ok).map((f) => f.message));
    return { name, valid: errors.length === 0, errors, findings };
  }));
  const valid = services.filter((s) => s.valid).length;
  return {
    file,
    total: services.length,
    valid,
    invalid: services.length - valid,
    services,
    errors: v.issues.filter((i) => !i.service || !v.names.includes(i.service)).map((i) =>
      formatIssue(file, i)
    ),
    config_invalid: v.issues.length > 0,
  };
}
