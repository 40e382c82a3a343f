/**
 * Try the kubernetes example without a cluster: this starts the Kubernetes API test double
 * (`tests/k8s/api_double.ts` — a stand-in that simulates a cluster's API and controllers, not a
 * real API server), writes a kubeconfig for it into a temp dir, and runs the real CLI on
 * `examples/kubernetes/services.toml`: `platform start`, `platform status`, `services logs
 * orchestrator`, `platform stop`.
 *
 * ```sh
 * deno run -A examples/kubernetes/try.ts          # the four commands, then clean up
 * deno run -A examples/kubernetes/try.ts --keep   # start, then keep the double up (Ctrl+C ends it)
 * ```
 *
 * With `--keep` it prints the `KUBECONFIG` and `PROVISIONING_HOME` to export, so `provisioning`
 * (or the real `kubectl`, with `--validate=false` for writes) can be pointed at the double.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { startApiDouble } from "../../tests/k8s/api_double.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CONFIG = join(ROOT, "examples/kubernetes/services.toml");

/** A free TCP port on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Run the CLI with `args`, its output shown as it comes; resolves with its exit code. */
function cli(args: string[], env: Record<string, string>): Promise<number> {
  console.log(`\n$ provisioning ${args.join(" ")}`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [
      "run",
      "-A",
      join(ROOT, "cli.ts"),
      ...args,
      "--config",
      CONFIG,
    ], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "inherit", "inherit"],
    });
    child.once("error", reject);
    child.once("close", (code) => resolve(code ?? 1));
  });
}

const keep = process.argv.includes("--keep");
const dir = await mkdtemp(join(tmpdir(), "provisioning-k8s-example-"));
const api = await startApiDouble({
  tls: true,
  token: `example-${crypto.randomUUID()}`,
  behaviours: [[{}, { readyAfterMs: 400, logEveryMs: 1_000 }]],
});
const env = {
  KUBECONFIG: await api.writeKubeconfig(join(dir, "kubeconfig")),
  PROVISIONING_HOME: join(dir, "home"),
  GATEWAY_PORT: String(await freePort()),
};
let failed = false;
try {
  console.log(`Kubernetes API test double at ${api.url} (HTTPS, bearer token, simulated pods)`);
  failed = (await cli(["platform", "start"], env)) !== 0;
  if (!failed) {
    await cli(["platform", "status"], env);
    await cli(["services", "logs", "orchestrator", "--lines", "4"], env);
  }
  if (keep && !failed) {
    console.log(`\nThe double stays up until Ctrl+C. In another shell:`);
    for (const [k, v] of Object.entries(env)) console.log(`  export ${k}=${v}`);
    console.log(`  provisioning platform status --config ${CONFIG}`);
    await new Promise<void>((resolve) => process.once("SIGINT", () => resolve()));
  }
  failed = (await cli(["platform", "stop"], env)) !== 0 || failed;
} finally {
  await api.close();
  await rm(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
