/**
 * `deno task demo`: bring up the demo platform (examples/platform, seven small real services)
 * in a temporary PROVISIONING_HOME, show its status and health, show a refused stop, then stop
 * everything cleanly. Every step is the real CLI, as a user would type it.
 *
 * Importable: `await runDemo({ keep: true })` leaves the platform running and returns its home.
 *
 * @module
 */
import $ from "dax";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = $.path(import.meta.url).parentOrThrow().parentOrThrow();
const registry = root.join("examples/platform/services.toml");

export interface DemoOptions {
  /** Leave the platform running (and the temp home in place). */
  keep?: boolean;
}

/** Run the demo; resolves to the PROVISIONING_HOME it used. Throws when a step fails. */
export async function runDemo(opts: DemoOptions = {}): Promise<string> {
  const home = mkdtempSync(join(tmpdir(), "provisioning-demo-"));
  const env = {
    PROVISIONING_HOME: home,
    PROVISIONING_SERVICES: registry.toString(),
    PROVISIONING_DEMO_RUN: home,
  };
  const cli = (args: string) => {
    $.logStep("$ provisioning", args);
    return $.raw`${process.execPath} run -A --quiet ${root.join("cli.ts").toString()} ${args}`
      .env(env).cwd(root.toString()).noThrow();
  };
  const expect = async (args: string, code: number) => {
    const r = await cli(args);
    if (r.code !== code) {
      throw new Error(`"provisioning ${args}" exited ${r.code}, expected ${code}`);
    }
    console.log();
  };
  try {
    await expect("services validate", 0);
    await expect(
      "platform start --dry-run orchestrator control-center coredns gitea oci-registry mcp-server api-gateway",
      0,
    );
    await expect(
      "platform start orchestrator control-center coredns gitea oci-registry mcp-server api-gateway",
      0,
    );
    await expect("platform status", 0);
    await expect("platform health", 0);
    await expect("services dependencies orchestrator", 0);
    $.logLight("Stopping the orchestrator while others depend on it is refused (exit 4):");
    await expect("services stop orchestrator", 4);
    await expect("platform logs api-gateway --lines 5", 0);
    if (opts.keep) {
      $.logWarn("Left running:", `PROVISIONING_HOME=${home} PROVISIONING_SERVICES=${registry}`);
      return home;
    }
    await expect("platform stop", 0);
    await expect("platform status", 0);
    return home;
  } catch (e) {
    if (!opts.keep) await cli("platform stop --force");
    throw e;
  } finally {
    if (!opts.keep) rmSync(home, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  try {
    await runDemo({ keep: Deno.args.includes("--keep") });
    $.logStep("Demo finished", "every service was started, checked and stopped");
  } catch (e) {
    $.logError("Demo failed:", (e as Error).message);
    Deno.exit(1);
  }
}
