/**
 * Which processes listen on a TCP port: Linux maps the LISTEN sockets of `/proc/net/tcp{,6}` to
 * the processes holding them through `/proc/PID/fd`; elsewhere `lsof` answers.
 *
 * @module
 */
import { execFile } from "node:child_process";
import { readdir, readFile, readlink } from "node:fs/promises";

const LISTEN = "0A";

/**
 * PIDs of the processes listening on TCP `port` (any address). Processes of other users are
 * only visible to root; an empty list means "none that we can see".
 */
export async function listeningPids(port: number): Promise<number[]> {
  if (process.platform !== "linux") return await lsof(port);
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const text = await readFile(table, "utf8").catch(() => "");
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || cols[3] !== LISTEN) continue;
      const localPort = parseInt(cols[1].slice(cols[1].lastIndexOf(":") + 1), 16);
      if (localPort === port && cols[9] !== "0") inodes.add(`socket:[${cols[9]}]`);
    }
  }
  if (inodes.size === 0) return [];
  const pids = (await readdir("/proc")).filter((e) => /^\d+$/.test(e)).map(Number);
  const hits = await Promise.all(pids.map(async (pid) => {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
      if (inodes.has(target)) return pid;
    }
    return undefined;
  }));
  return hits.filter((pid) => pid !== undefined);
}

function lsof(port: number): Promise<number[]> {
  return new Promise((resolve) => {
    execFile("lsof", ["-nP", `-iTCP:${port}`, "-sTCP:LISTEN", "-t"], (error, stdout) => {
      resolve(error ? [] : String(stdout).split("\n").filter(Boolean).map(Number));
    });
  });
}
