import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, symlink } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  findProcessesByName,
  groupMembers,
  isAlive,
  killGroup,
  listeningPids,
  parseProcStat,
  portInUse,
  processStartTime,
  waitGone,
} from "../../core/process/identity.ts";
import { until } from "../_until.ts";

/** Start `sh -c script` in its own process group; stdout is piped. */
function group(script: string): { child: ChildProcess; pid: number; out: () => string } {
  const child = spawn("/bin/sh", ["-c", script], {
    detached: true,
    stdio: ["ignore", "pipe", "ignore"],
  });
  let out = "";
  child.stdout!.on("data", (d) => out += d);
  return { child, pid: child.pid!, out: () => out };
}

/** Kill a group started by {@linkcode group} and wait until its members are gone. */
async function reap(g: { child: ChildProcess; pid: number }): Promise<void> {
  const exited = g.child.exitCode !== null || g.child.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => g.child.once("exit", r));
  try {
    process.kill(-g.pid, "SIGKILL");
  } catch { /* already gone */ }
  await exited;
  g.child.stdout?.destroy();
  await waitGone(async () => (await groupMembers(g.pid)).length > 0, 5000);
}

function deadPid(): number {
  return Number(spawnSync("/bin/sh", ["-c", "echo $$"], { encoding: "utf8" }).stdout.trim());
}

Deno.test("parseProcStat() reads fields after the last ')' so comm may hold spaces and parens", () => {
  const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
  fields[0] = "S";
  fields[2] = "777"; // pgrp (field 5)
  fields[3] = "778"; // session (field 6)
  fields[19] = "424242"; // starttime (field 22)
  const stat = parseProcStat(`123 (a (weird) ) name) ${fields.join(" ")}\n`);
  assert.deepEqual(stat, {
    comm: "a (weird) ) name",
    state: "S",
    pgid: 777,
    sid: 778,
    startTime: "424242",
  });
  assert.equal(parseProcStat("garbage"), undefined);
});

Deno.test("processStartTime() is the kernel's start time of a live pid and undefined for a dead one", async () => {
  const own = await processStartTime(process.pid);
  assert.match(own ?? "", /^\d+$/);
  const stat = await readFile(`/proc/${process.pid}/stat`, "utf8");
  assert.equal(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19], own);
  assert.equal(await processStartTime(deadPid()), undefined);
  assert.equal(await processStartTime(0), undefined);
});

Deno.test("isAlive() requires the same start time when one is given", async () => {
  const start = await processStartTime(process.pid);
  assert.equal(await isAlive(process.pid), true);
  assert.equal(await isAlive(process.pid, start), true);
  assert.equal(await isAlive(process.pid, "1"), false);
  assert.equal(await isAlive(deadPid()), false);
  assert.equal(await isAlive(-1), false);
});

Deno.test("isAlive() counts a zombie as dead", async () => {
  // sh forks `sleep 0`, then execs into a sleep that never reaps it: a zombie stays behind.
  const g = group("sleep 0 & echo $!; exec sleep 30");
  try {
    await until(() => g.out().includes("\n"), "the zombie's pid");
    const zombie = Number(g.out().trim());
    await until(async () => {
      const stat = await readFile(`/proc/${zombie}/stat`, "utf8").catch(() => "");
      return parseProcStat(stat)?.state === "Z";
    }, "the child to become a zombie");
    assert.equal(await isAlive(zombie), false);
    assert.equal((await groupMembers(g.pid)).includes(zombie), false);
  } finally {
    await reap(g);
  }
});

Deno.test("groupMembers() lists the group and killGroup() signals every member", async () => {
  const g = group("sleep 30 & sleep 30 & echo started; wait");
  try {
    await until(async () => (await groupMembers(g.pid)).length === 3, "three members");
    const members = await groupMembers(g.pid);
    assert.ok(members.includes(g.pid));
    assert.equal(killGroup(g.pid, "SIGTERM"), true);
    assert.equal(await waitGone(async () => (await groupMembers(g.pid)).length > 0, 10_000), true);
    for (const pid of members) assert.equal(await isAlive(pid), false, `pid ${pid}`);
  } finally {
    await reap(g);
  }
});

Deno.test("killGroup() returns false for a gone group and refuses groups 0 and 1", () => {
  assert.equal(killGroup(deadPid(), "SIGTERM"), false);
  assert.throws(() => killGroup(0, "SIGTERM"), RangeError);
  assert.throws(() => killGroup(1, "SIGTERM"), RangeError);
});

Deno.test("waitGone() resolves true once the check turns false and false at its timeout", async () => {
  let calls = 0;
  assert.equal(await waitGone(() => Promise.resolve(++calls < 4), 10_000), true);
  assert.equal(calls, 4);
  assert.equal(await waitGone(() => Promise.resolve(true), 30), false);
  const aborted = AbortSignal.abort(new Error("stop waiting"));
  await assert.rejects(
    waitGone(() => Promise.resolve(true), 10_000, { signal: aborted }),
    /stop waiting/,
  );
});

Deno.test("findProcessesByName() matches comm exactly and the basename of argv[0]", async () => {
  const dir = await mkdtemp(join(tmpdir(), "prov-proc-"));
  const short = `pt${process.pid}`;
  const long = `provisioning-test-sleeper-${process.pid}`; // longer than comm's 15 characters
  await symlink("/bin/sleep", join(dir, short));
  await symlink("/bin/sleep", join(dir, long));
  const a = spawn(join(dir, short), ["30"], { detached: true, stdio: "ignore" });
  const b = spawn(join(dir, long), ["30"], { detached: true, stdio: "ignore" });
  const ga = { child: a, pid: a.pid! };
  const gb = { child: b, pid: b.pid! };
  try {
    await until(async () => (await findProcessesByName(short)).length === 1, short);
    assert.deepEqual(await findProcessesByName(short), [{ pid: a.pid, name: short }]);
    await until(async () => (await findProcessesByName(long)).length === 1, long);
    assert.deepEqual((await findProcessesByName(long)).map((p) => p.pid), [b.pid]);
    assert.deepEqual(await findProcessesByName(`${short}x`), []);
  } finally {
    await reap(ga);
    await reap(gb);
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("portInUse() and listeningPids() see a port bound on 127.0.0.1", async () => {
  const server: Server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  try {
    assert.equal(await portInUse(port), true);
    assert.deepEqual(await listeningPids(port), [process.pid]);
  } finally {
    await new Promise((r) => server.close(r));
  }
  assert.equal(await portInUse(port), false);
  assert.deepEqual(await listeningPids(port), []);
});
