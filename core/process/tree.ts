/**
 * Kill a whole process tree, including grandchildren that were re-parented after their parent
 * died, by tagging it with an environment variable (the technique of Jenkins' ProcessTreeKiller).
 *
 * dax spawns its children in our own process group, so a group kill is not possible; a variable
 * that every descendant inherits is. Linux only (it reads `/proc`); elsewhere `killTagged` finds
 * nothing and the caller's own kill of the direct child is all there is.
 *
 * @module
 */
import { randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import process from "node:process";

/** The variable that tags every process of one check run. */
export const TAG_VARIABLE = "PROVISIONING_CHECK_RUN";

/** A fresh tag value, unique per run. */
export function newTag(): string {
  return `${process.pid}-${randomUUID()}`;
}

/** The pids of live processes whose environment carries `TAG_VARIABLE=tag`. */
export async function findTagged(tag: string): Promise<number[]> {
  let entries: string[];
  try {
    entries = await readdir("/proc");
  } catch {
    return [];
  }
  const entry = `${TAG_VARIABLE}=${tag}`;
  const found: number[] = [];
  await Promise.all(entries.map(async (name) => {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) return;
    try {
      const environ = await readFile(`/proc/${pid}/environ`, "latin1");
      if (environ.split("\0").includes(entry)) found.push(pid);
    } catch {
      // gone already, or not ours to read
    }
  }));
  return found;
}

/**
 * SIGKILLs every process tagged with `tag`, repeating until none is left (a process may fork
 * between the scan and the kill). Returns the pids that were signalled.
 */
export async function killTagged(tag: string, opts: { rounds?: number } = {}): Promise<number[]> {
  const killed = new Set<number>();
  for (let round = 0; round < (opts.rounds ?? 5); round++) {
    const pids = (await findTagged(tag)).filter((pid) => !killed.has(pid));
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
        killed.add(pid);
      } catch {
        // exited in the meantime
      }
    }
  }
  return [...killed];
}
