import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, symlink } from "node:fs/promises";
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
import {
  cgroup2Mount,
  cgroupOf,
  cgroupPids,
  createCgroup,
  killCgroup,
  removeCgroup,
  spawnInCgroup,
} from "../../core/process/cgroup.ts";
import { findTagged, forgetScans, killTagged, tagged, tagOf } from "../../core/process/tree.ts";
import { until } from "../_until.ts";

/** Start `sh -c script` (or `command args`) in its own process group; stdout is piped. */
function group(
  script: string,
  args?: string[],
): { child: ChildProcess; pid: number; out: () => string } {
  const child = spawn(args ? script : "/bin/sh", args ?? ["-c", script], {
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
  fields[1] = "776"; // ppid (field 4)
  fields[2] = "777"; // pgrp (field 5)
  fields[3] = "778"; // session (field 6)
  fields[19] = "424242"; // starttime (field 22)
  const stat = parseProcStat(`123 (a (weird) ) name) ${fields.join(" ")}\n`);
  assert.deepEqual(stat, {
    comm: "a (weird) ) name",
    state: "S",
    ppid: 776,
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
  // sh forks a child, then execs into a sleep that never reaps it; the child is killed only
  // then, so it stays behind as a zombie. (A child that ended on its own before the exec could be
  // reaped by sh: CI caught that once with `sleep 0`.)
  const g = group("sleep 300 & echo $!; exec sleep 30");
  try {
    await until(() => g.out().includes("\n"), "the child's pid");
    const zombie = Number(g.out().trim());
    await until(
      async () => (await readFile(`/proc/${g.pid}/cmdline`, "utf8")) === "sleep\x0030\x00",
      "sh to become sleep 30",
    );
    process.kill(zombie, "SIGKILL");
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

const PYTHON = spawnSync("python3", ["-c", "import ctypes"]).status === 0;

Deno.test({
  name: "isAlive() counts a process whose main thread exited while its other threads run as alive",
  ignore: !PYTHON,
  fn: async () => {
    // The main thread calls pthread_exit: it shows as a zombie, but the process (its other
    // thread, its files and sockets) lives on until the last thread is gone.
    const g = group(
      "exec python3 -c 'import threading, time, ctypes, sys\n" +
        'r, w = __import__("os").pipe()\n' +
        't = threading.Thread(target=lambda: __import__("os").read(r, 1)); t.start()\n' +
        'print("ready", flush=True); ctypes.CDLL(None).pthread_exit(None)\'',
    );
    try {
      await until(async () => {
        const stat = await readFile(`/proc/${g.pid}/stat`, "utf8").catch(() => "");
        return parseProcStat(stat)?.state === "Z";
      }, "the main thread to exit");
      assert.equal(await isAlive(g.pid), true, "its other thread still runs");
      assert.ok((await groupMembers(g.pid)).includes(g.pid));
      process.kill(g.pid, "SIGKILL");
      await until(async () => !(await isAlive(g.pid)), "the whole process to die");
    } finally {
      await reap(g);
    }
  },
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

/** Start `sh -c script` in its own group with `extra` in its environment; stdout is piped. */
function tagged_group(script: string, extra: Record<string, string>) {
  const child = spawn("/bin/sh", ["-c", script], {
    detached: true,
    stdio: ["ignore", "pipe", "ignore"],
    env: { ...process.env, ...extra },
  });
  let out = "";
  child.stdout!.on("data", (d) => out += d);
  return { child, pid: child.pid!, out: () => out };
}

Deno.test("findTagged() finds every descendant carrying a variable, re-parented and setsid'd ones too", async () => {
  const value = `svc:${process.pid}:${Date.now()}`;
  // The shell leaves: its children are re-parented; one of them left the session too.
  const g = tagged_group("sleep 30 & setsid sleep 30 & echo started", { TEST_TRACK: value });
  const found = () => findTagged(value, { variable: "TEST_TRACK" });
  try {
    const stats = async () =>
      await Promise.all(
        (await found()).map(async (pid) =>
          parseProcStat(await readFile(`/proc/${pid}/stat`, "utf8").catch(() => ""))
        ),
      );
    // Both sleeping, the shell gone (they are re-parented), one of them in a session of its own.
    await until(async () => {
      const st = await stats();
      return st.length === 2 && st.every((s) => s?.comm === "sleep" && s.ppid !== g.pid) &&
        st.some((s) => s!.sid === s!.pgid && s!.pgid !== g.pid);
    }, "two tagged sleeps, re-parented, one setsid'd");
    const pids = await found();
    assert.equal(tagOf(pids[0], "TEST_TRACK"), value);
    assert.equal(tagOf(pids[0], "TEST_NOT_THERE"), undefined);
    // By prefix, as the binary driver scans for every incarnation of one service.
    assert.deepEqual(
      (await findTagged(value.slice(0, -3), { variable: "TEST_TRACK", prefix: true })).sort(),
      pids.sort(),
    );
    assert.deepEqual(await findTagged(value.slice(0, -3), { variable: "TEST_TRACK" }), []);
    assert.deepEqual(await findTagged(value), [], "another variable is another tag");
    const killed = await killTagged(value, { variable: "TEST_TRACK" });
    assert.deepEqual(killed.sort(), pids.sort());
    await until(async () => (await found()).length === 0, "the tagged sleeps to die");
  } finally {
    await killTagged(value, { variable: "TEST_TRACK" });
    await reap(g);
  }
});

Deno.test("a shared scan drops processes that died since, and forgetScans() drops the scan", async () => {
  const value = `share:${process.pid}:${Date.now()}`;
  const query = { variable: "TEST_TRACK", maxAgeMs: 60_000 };
  const g = tagged_group("exec sleep 30", { TEST_TRACK: value });
  try {
    await until(() => tagged(value, { variable: "TEST_TRACK" }).length === 1, "the tagged sleep");
    forgetScans();
    assert.deepEqual(tagged(value, query).map((p) => p.pid), [g.pid]);
    const late = tagged_group("exec sleep 30", { TEST_TRACK: value });
    try {
      await until(() => tagged(value, { variable: "TEST_TRACK" }).length === 2, "a second one");
      assert.deepEqual(tagged(value, query).map((p) => p.pid), [g.pid], "the shared scan");
      process.kill(g.pid, "SIGKILL");
      await until(async () => !(await isAlive(g.pid)), "the first to die");
      assert.deepEqual(tagged(value, query), [], "a dead process leaves the shared scan");
      forgetScans();
      assert.deepEqual(tagged(value, query).map((p) => p.pid), [late.pid]);
    } finally {
      await reap(late);
    }
  } finally {
    forgetScans();
    await reap(g);
  }
});

/** Whether this machine lets us create cgroups (root on a cgroup2 mount). */
const CGROUPS = (() => {
  const m = cgroup2Mount();
  if (!m) return false;
  const probe = join(m.path, "provisioning", `probe-${process.pid}`);
  const ok = createCgroup(probe);
  if (ok) removeCgroup(probe);
  return ok;
})();

Deno.test({
  name:
    "spawnInCgroup() starts a child inside a cgroup, moving this process there and back once, then by the child moving itself",
  ignore: !CGROUPS,
  fn: async () => {
    const base = join(cgroup2Mount()!.path, "provisioning", `test-${process.pid}`);
    const own = cgroupOf("self");
    const groups: ReturnType<typeof group>[] = [];
    const dirs = ["one", "two"].map((n) => join(base, "home", `${n}.service`));
    // Each forks at once, in the background and into a new session: all three are inside.
    const script = "sleep 30 & setsid sleep 30 & echo started; wait";
    try {
      for (const dir of dirs) {
        assert.ok(createCgroup(dir));
        const g = spawnInCgroup(dir, "/bin/sh", ["-c", script], (cmd, args) => group(cmd, args));
        assert.ok(g);
        groups.push(g);
        assert.equal(cgroupOf("self"), own, "back in our own cgroup (or never left it)");
        await until(() => g.out().includes("started"), "the shell to run its script");
        assert.equal(cgroupOf(g.pid), dir);
        await until(() => cgroupPids(dir).length === 3, "the shell and its two children");
        assert.ok(!cgroupPids(dir).includes(process.pid));
      }
      for (const dir of dirs) {
        const members = cgroupPids(dir);
        killCgroup(dir);
        await until(
          () => readFileSync(join(dir, "cgroup.events"), "utf8").includes("populated 0"),
          "the cgroup to empty",
        );
        for (const pid of members) assert.equal(await isAlive(pid), false, `pid ${pid}`);
        removeCgroup(dir, base);
      }
      assert.equal(existsSync(join(base, "home")), false, "empty parents go too, up to the stop");
      assert.equal(existsSync(base), true);
    } finally {
      for (const g of groups) await reap(g);
      for (const dir of dirs) removeCgroup(dir, base);
      removeCgroup(base);
    }
  },
});

Deno.test("createCgroup() is false where no cgroup can be made, and spawnInCgroup() then spawns nothing", async () => {
  const dir = await mkdtemp(join(tmpdir(), "prov-nocg-"));
  try {
    const plain = join(dir, "a", "b.service");
    assert.equal(createCgroup(plain), false, "a plain directory is no cgroup");
    assert.equal(existsSync(join(dir, "a")), false, "the directories it made are gone again");
    let called = false;
    assert.equal(spawnInCgroup(plain, "/bin/true", [], () => (called = true)), undefined);
    assert.equal(called, false);
    await mkdir(join(dir, "c"));
    assert.deepEqual(cgroupPids(join(dir, "c")), []);
    assert.deepEqual(cgroupPids(join(dir, "missing")), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
