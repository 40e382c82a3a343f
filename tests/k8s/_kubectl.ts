/**
 * Running the real kubectl against an API double in tests: which kubectl builds the machine has
 * (the Google Cloud SDK ships `kubectl.1.27` … `kubectl.1.33` next to its dispatcher), and a
 * sandbox per test with its own HOME, kubeconfig and manifest dir in a temp dir (kubectl writes
 * its discovery cache under HOME), each run bounded by a timeout.
 *
 * `/usr/bin/kubectl` is a dispatcher meant to run the build matching the server's `/version`;
 * measured here it always ran its built-in 1.32 instead, so tests name the versioned binary.
 */

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type ApiDouble,
  type ApiDoubleOptions,
  type KubeconfigOptions,
  startApiDouble,
} from "./api_double.ts";

const SDK_BIN = "/usr/lib/google-cloud-sdk/bin";

/** The kubectl for a minor version (`"1.30"`): the versioned SDK build, else kubectl on PATH. */
export function kubectlFor(minor: string): string | undefined {
  const versioned = join(SDK_BIN, `kubectl.${minor}`);
  if (existsSync(versioned)) return versioned;
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir && existsSync(join(dir, "kubectl"))) return join(dir, "kubectl");
  }
  return undefined;
}

/** Why kubectl tests cannot run here, or undefined when they can. */
export const kubectlMissing: string | undefined = kubectlFor("1.30")
  ? undefined
  : "kubectl is not installed (neither /usr/lib/google-cloud-sdk/bin/kubectl.1.* nor kubectl on PATH)";

export type KubectlResult = { code: number | null; stdout: string; stderr: string };

/** A double plus a kubectl sandbox (temp HOME and kubeconfig) for one test. */
export interface KubectlEnv extends AsyncDisposable {
  api: ApiDouble;
  dir: string;
  kubeconfig: string;
  bin: string;
  /** Runs kubectl with `args`; kills it after `timeoutMs`. */
  kubectl(args: string[], timeoutMs?: number): Promise<KubectlResult>;
  /** Writes a file into the sandbox; returns its path. */
  file(name: string, text: string): Promise<string>;
}

/** Starts a double and a sandbox for kubectl `minor`. */
export async function kubectlEnv(
  minor: string,
  opts: ApiDoubleOptions = {},
  kc: KubeconfigOptions = {},
): Promise<KubectlEnv> {
  const bin = kubectlFor(minor);
  if (!bin) throw new Error(kubectlMissing);
  const dir = await mkdtemp(join(tmpdir(), "k8s-double-kubectl-"));
  let api: ApiDouble | undefined;
  try {
    api = await startApiDouble(opts);
    const kubeconfig = await api.writeKubeconfig(join(dir, "kubeconfig"), kc);
    const env = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: dir,
      KUBECONFIG: kubeconfig,
      KUBECACHEDIR: join(dir, "cache"),
    };
    const double = api;
    return {
      api: double,
      dir,
      kubeconfig,
      bin,
      kubectl: (args, timeoutMs = 30_000) => run(bin, args, env, dir, timeoutMs),
      async file(name, text) {
        await writeFile(join(dir, name), text);
        return join(dir, name);
      },
      async [Symbol.asyncDispose]() {
        await double.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await api?.close();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

function run(
  bin: string,
  args: string[],
  env: Record<string, string>,
  cwd: string,
  timeoutMs: number,
): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${timeoutMs} ms]`;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
