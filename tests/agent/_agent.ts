/**
 * A real agent process for tests: the CLI's `agent` (tests/_cli.ts `cliCommand`) on a free loopback port for a sandbox's home and
 * registry, its sign-in URL read from its output, killed (by PID) when the sandbox goes; and a
 * small HTTP client that keeps status, headers and body.
 */
import { spawn } from "node:child_process";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { cliCommand, ROOT } from "../_cli.ts";
import { freePort, type Sandbox } from "../e2e/_registry.ts";

/** A running agent. */
export interface TestAgent {
  url: string;
  port: number;
  token: string;
  pid: number;
  /** Everything it printed so far. */
  output: () => string;
  /** SIGTERM, and its exit code. */
  stop: () => Promise<number | null>;
}

/**
 * Start `cli.ts agent` for `sb` (on `sb.host` when it has one, listening on that host's address,
 * else on `host`); resolves once it prints its sign-in URL.
 */
export async function spawnAgent(
  sb: Sandbox,
  args: string[] = [],
  env: Record<string, string> = {},
  host = sb.host?.address ?? "127.0.0.1",
): Promise<TestAgent> {
  const port = sb.host ? await sb.host.freePort() : await freePort();
  const argv = cliCommand(["agent", "--listen", `${host}:${port}`, "--config", sb.config, ...args]);
  const child = sb.adopt(spawn(...(sb.host ? sb.host.argv(...argv) : argv), {
    cwd: ROOT,
    env: { ...process.env, PROVISIONING_HOME: sb.home, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  }));
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  const url = await new Promise<string>((resolve, reject) => {
    const look = () => {
      const m = /Dashboard: (\S+)/.exec(out);
      if (m) resolve(m[1]);
    };
    child.stdout!.on("data", look);
    exited.then((c) => reject(new Error(`the agent exited (${c}): ${out}`)));
  });
  const token = new URL(url).hash.replace(/^#token=/, "");
  return {
    url: new URL(url).origin,
    port,
    token,
    pid: child.pid!,
    output: () => out,
    stop: () => {
      process.kill(child.pid!, "SIGTERM"); // (Deno's child.kill() reports any exit as signalled)
      return exited;
    },
  };
}

/** One HTTP(S) exchange: status, headers, body text. */
export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // deno-lint-ignore no-explicit-any
  json: () => any;
}

/** A request to `url` with `init`; the body is read whole. */
export function call(
  url: string,
  init: {
    method?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    ca?: string | Buffer;
  } = {},
): Promise<Answer> {
  const u = new URL(url);
  const request = u.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(u, {
      method: init.method ?? "GET",
      headers: init.headers,
      ...(init.ca ? { ca: init.ca } : {}),
      agent: false,
    }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () =>
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          text,
          json: () => JSON.parse(text),
        }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(init.body);
  });
}

/** The bearer header of `agent`. */
export const auth = (a: TestAgent) => ({ Authorization: `Bearer ${a.token}` });
