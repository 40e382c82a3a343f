/**
 * `services validate`: every configuration problem of the registry, and every missing
 * prerequisite of its services (binary not found, Docker not running ...), per service.
 *
 * @module
 */
import { formatIssue } from "../errors.ts";
import { PluginRegistry } from "../plugins/registry.ts";
import { type RegistrySource, validateRegistry } from "./load.ts";
import { statePaths, whereFrom } from "../state/files.ts";
import type { Finding, RegistryIssue } from "../types.ts";
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
  /** The registry file read (as `registry.path`). */
  file: string;
  /**
   * Which file was read and how it was found: `--config`, `PROVISIONING_SERVICES`, `project`,
   * `home` or `bundled` (the order they are looked for in).
   */
  registry: { path: string; source: RegistrySource };
  total: number;
  valid: number;
  invalid: number;
  services: ServiceValidation[];
  /** Problems that belong to no single service (syntax, unknown top-level keys). */
  errors: string[];
  /** Every registry problem as data (`service`, `path`, `line`, `message`), in the order found. */
  issues: RegistryIssue[];
  /** True when the registry itself is invalid (exit 2); false when only prerequisites fail (exit 3). */
  config_invalid: boolean;
}

/** Validate the registry and check each valid service's prerequisites. */
export async function validateServices(
  opts: OpenOptions & { prerequisites?: boolean } = {},
): Promise<ValidationReport> {
  const { env, cwd, home } = whereFrom(opts);
  const plugins = opts.plugins ?? PluginRegistry.discover({ cwd, home, env });
  const v = await validateRegistry({ ...opts, env, cwd, plugins });
  const { file } = v;
  const ctx = { paths: statePaths(home), env, cwd };

  // Grouped once: a filter per service is quadratic (28 s for 40,000 services).
  const byService = new Map<string, string[]>(v.names.map((n) => [n, []]));
  const general: string[] = [];
  for (const i of v.issues) {
    const own = i.service === undefined ? undefined : byService.get(i.service);
    (own ?? general).push(formatIssue(file, i));
  }
  const valid = new Map(v.services.map((s) => [s.name, s]));

  const services: ServiceValidation[] = await mapPooled(v.names, async (name) => {
    const errors = byService.get(name)!;
    const svc = valid.get(name);
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
  });
  const passed = services.filter((s) => s.valid).length;
  return {
    file,
    registry: { path: file, source: v.source },
    total: services.length,
    valid: passed,
    invalid: services.length - passed,
    services,
    errors: general,
    issues: v.issues,
    config_invalid: v.issues.length > 0,
  };
}

/**
 * How many pre-flights run at once. Tens of thousands of file checks started together are
 * twice as slow as a few in flight at a time (the runtime's blocking pool is small).
 */
const PREFLIGHT_WIDTH = 16;

/** `Promise.all(items.map(fn))` with at most `PREFLIGHT_WIDTH` calls in flight; order kept. */
async function mapPooled<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PREFLIGHT_WIDTH, items.length) }, worker));
  return out;
}
