/**
 * Helpers of the shipped plugins' tests: finding an apt program, a free UDP port, dnsmasq in
 * the foreground on 127.0.0.1 (cleaned up by `await using`).
 *
 * @module
 */
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import dns from "../checks/dns.ts";
import { checkContext, waitFor } from "./checks/_helpers.ts";

/** The program's path: a usual place first, then PATH; undefined when it is not installed. */
export function findProgram(name: string, usual: string[] = []): string | undefined {
  const dirs = (process.env.PATH ?? "").split(delimiter).filter(Boolean);
  return [...usual, ...dirs.map((d) => join(d, name))].find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** A UDP port on 127.0.0.1 that was free a moment ago. */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket("udp4");
    socket.once("error", reject);
    socket.bind(0, "127.0.0.1", () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

/** A running dnsmasq answering `example.test` with 127.0.0.42. */
export interface Dnsmasq {
  port: number;
  pid: number;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * A port free for both UDP and TCP on 127.0.0.1 (dnsmasq listens on both: a port free for UDP
 * alone was now and then taken for TCP, and dnsmasq exited with "Address already in use").
 */
export async function freeDnsPort(): Promise<number> {
  const { createServer } = await import("node:net");
  for (let attempt = 0;; attempt++) {
    const port = await freeUdpPort();
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
    });
    if (free || attempt >= 20) return port;
  }
}

/** Start dnsmasq in the foreground on a free port; resolves once it answers. */
export async function startDnsmasq(binary: string): Promise<Dnsmasq> {
  const port = await freeDnsPort();
  const dir = mkdtempSync(join(tmpdir(), "prov-dnsmasq-"));
  const child = spawn(binary, [
    "--no-daemon",
    `--port=${port}`,
    "--listen-address=127.0.0.1",
    "--bind-interfaces",
    "--no-resolv",
    "--no-hosts",
    "--address=/example.test/127.0.0.42",
    `--pid-file=${join(dir, "dnsmasq.pid")}`,
  ], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const dispose = async () => {
    child.kill("SIGTERM");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const cfg = dns.config.parse({ name: "example.test", port });
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`dnsmasq exited: ${stderr}`);
      return (await dns.run(cfg, checkContext(200))).healthy;
    }, `dnsmasq answering on port ${port}`);
  } catch (e) {
    await dispose();
    throw e;
  }
  return { port, pid: child.pid!, [Symbol.asyncDispose]: dispose };
}
