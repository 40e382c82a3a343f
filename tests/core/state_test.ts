import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import binaryDriver from "../../drivers/binary.ts";
import { ProvisioningError, UsageError } from "../../core/errors.ts";
import { processStartTime } from "../../core/process/identity.ts";
import {
  defaultHome,
  ensureDirs,
  safeName,
  statePaths,
  writeFileAtomic,
} from "../../core/state/files.ts";
import { withLock } from "../../core/state/lock.ts";
import { readPid, readState, StateStore, StateTransitionError } from "../../core/state/store.ts";
import type { DriverContext, Service, StatePaths } from "../../core/types.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

async function withHome(fn: (paths: StatePaths) => Promise<void>): Promise<void> {
  const home = await mkdtemp(join(tmpdir(), "prov-state-"));
  try {
    await fn(statePaths(home));
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** A PID that existed a moment ago and is now gone (reaped). */
function deadPid(): number {
  const child = spawnSync("/bin/sh", ["-c", "echo $$"], { encoding: "utf8" });
  return Number(child.stdout.trim());
}

/** Every file and directory under `dir` with its size and mtime: what a pure read must not change. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string) => {
    const st = await stat(d);
    out[d] = `dir ${st.mtimeMs}`;
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) await walk(path);
      else {
        const f = await stat(path);
        out[path] = `${f.size} ${f.mtimeMs} ${await readFile(path, "utf8")}`;
      }
    }
  };
  await walk(dir);
  return out;
}

/** Run `fn` with `process.emitWarning` captured. */
async function capturingWarnings(fn: (warnings: string[]) => Promise<void>): Promise<void> {
  const warnings: string[] = [];
  const original = process.emitWarning;
  process.emitWarning = ((w: string | Error) => {
    warnings.push(String(w));
  }) as typeof process.emitWarning;
  try {
    await fn(warnings);
  } finally {
    process.emitWarning = original;
  }
}

/** An ISO time within the last `ms` milliseconds. */
function recent(iso: string | undefined, ms = 60_000): boolean {
  const t = Date.parse(iso ?? "");
  return !Number.isNaN(t) && t <= Date.now() && Date.now() - t < ms;
}

Deno.test("statePaths() puts pids, state, logs and locks under services/ and run/ beside it", () => {
  assert.deepEqual(statePaths("/h"), {
    home: "/h",
    pids: "/h/services/pids",
    state: "/h/services/state",
    logs: "/h/services/logs",
    locks: "/h/services/locks",
    run: "/h/run",
  });
});

Deno.test("defaultHome() prefers PROVISIONING_HOME and falls back to ~/.provisioning", () => {
  assert.equal(defaultHome({ PROVISIONING_HOME: "/srv/p", HOME: "/home/u" }), "/srv/p");
  assert.equal(defaultHome({ HOME: "/home/u" }), "/home/u/.provisioning");
});

Deno.test("ensureDirs() creates every directory 0700 and tightens existing ones", async () => {
  await withHome(async (paths) => {
    await mkdir(paths.logs, { recursive: true, mode: 0o755 });
    await ensureDirs(paths);
    for (const dir of [paths.home, paths.pids, paths.state, paths.logs, paths.locks, paths.run]) {
      assert.equal((await stat(dir)).mode & 0o777, 0o700, dir);
    }
  });
});

Deno.test("writeFileAtomic() replaces the file with mode 0600 and leaves no temp file", async () => {
  await withHome(async (paths) => {
    await ensureDirs(paths);
    const file = join(paths.state, "x.json");
    await writeFile(file, "old", { mode: 0o644 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => writeFileAtomic(file, `value ${i}\n`)));
    assert.match(await readFile(file, "utf8"), /^value \d+\n$/);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(paths.state), ["x.json"]);
  });
});

Deno.test("writeFileAtomic() removes its temp file when the rename fails", async () => {
  await withHome(async (paths) => {
    await ensureDirs(paths);
    const target = join(paths.state, "dir.json");
    await mkdir(join(target, "inside"), { recursive: true }); // a non-empty directory
    await assert.rejects(writeFileAtomic(target, "data"));
    assert.deepEqual(await readdir(paths.state), ["dir.json"]);
  });
});

Deno.test("StateStore transitions and readState() round-trip; a missing state reads as undefined", async () => {
  await withHome(async (paths) => {
    const store = new StateStore(paths, { by: "test 1" });
    assert.equal(await readState(paths, "api"), undefined);
    // The first transition creates the directories.
    const starting = await store.starting("api", "binary", {
      pid: 1234,
      pid_start: "5678",
      handle: { pgid: 1234 },
      started_at: "2026-11-26T10:00:00.000Z",
    });
    assert.deepEqual(await readState(paths, "api"), starting);
    assert.deepEqual(
      { ...starting, since: undefined },
      {
        name: "api",
        mode: "binary",
        status: "starting",
        pid: 1234,
        pid_start: "5678",
        handle: { pgid: 1234 },
        started_at: "2026-11-26T10:00:00.000Z",
        restarts: 0,
        since: undefined,
        by: "test 1",
      },
    );
    const running = await store.running("api");
    assert.equal(running.status, "running");
    assert.equal(running.pid, 1234);
    assert.deepEqual(await store.read("api"), running);
    assert.equal((await stat(join(paths.state, "api.json"))).mode & 0o777, 0o600);
    assert.equal(await readState(paths, "web"), undefined);
  });
});

Deno.test("the store writes services/pids/<name>.pid to agree with the state; readPid() reads it", async () => {
  await withHome(async (paths) => {
    const store = new StateStore(paths);
    assert.equal(await readPid(paths, "api"), undefined);
    await store.starting("api", "binary", { pid: 4321, pid_start: "1" });
    assert.equal(await readFile(join(paths.pids, "api.pid"), "utf8"), "4321\n");
    assert.equal((await stat(join(paths.pids, "api.pid"))).mode & 0o777, 0o600);
    assert.equal(await readPid(paths, "api"), 4321);
    await writeFile(join(paths.pids, "web.pid"), "garbage"); // an outsider's file
    assert.equal(await readPid(paths, "web"), undefined);
    await store.stopping("api");
    assert.equal(await readPid(paths, "api"), 4321, "a stopping service keeps its PID file");
    await store.stopped("api", "binary");
    assert.equal(await readPid(paths, "api"), undefined);
    assert.deepEqual(await readdir(paths.pids), ["web.pid"]);
    await store.stopped("api", "binary"); // stopped again: nothing to remove, no error
    assert.equal(await readPid(paths, "api"), undefined);
  });
});

Deno.test("readState() of a corrupt file is a pure read: undefined, reported, the file untouched", async () => {
  await withHome(async (paths) => {
    await ensureDirs(paths);
    const reports: string[] = [];
    const onCorrupt = (file: string, reason: string) => reports.push(`${file}: ${reason}`);
    await writeFile(join(paths.state, "api.json"), "{ not json");
    assert.equal(await readState(paths, "api", { onCorrupt }), undefined);
    await writeFile(join(paths.state, "web.json"), JSON.stringify({ name: "web", status: 7 }));
    assert.equal(await readState(paths, "web", { onCorrupt }), undefined);
    // A file of another service's name is not this one's state either.
    await writeFile(
      join(paths.state, "db.json"),
      JSON.stringify({ name: "other", mode: "binary", status: "stopped", restarts: 0 }),
    );
    assert.equal(await readState(paths, "db", { onCorrupt }), undefined);
    assert.equal(reports.length, 3);
    assert.match(reports[0], /api\.json: /);
    assert.match(reports[1], /web\.json: .*status/);
    assert.match(reports[2], /db\.json: it belongs to "other"/);
    assert.deepEqual((await readdir(paths.state)).sort(), ["api.json", "db.json", "web.json"]);
    assert.equal(await readFile(join(paths.state, "api.json"), "utf8"), "{ not json");
  });
});

Deno.test("readState() warns once per corrupt file and process, however often it is read", async () => {
  await withHome(async (paths) => {
    await ensureDirs(paths);
    await writeFile(join(paths.state, "api.json"), "{ not json");
    await writeFile(join(paths.state, "web.json"), "[]");
    await capturingWarnings(async (warnings) => {
      for (let i = 0; i < 3; i++) {
        assert.equal(await readState(paths, "api"), undefined);
        assert.equal(await readState(paths, "web"), undefined);
      }
      assert.equal(warnings.length, 2, warnings.join("\n"));
      assert.match(warnings[0], /^Ignoring corrupt state file ".*\/api\.json": /);
      assert.match(warnings[1], /^Ignoring corrupt state file ".*\/web\.json": /);
    });
    assert.deepEqual((await readdir(paths.state)).sort(), ["api.json", "web.json"]);
  });
});

Deno.test("the next transition moves a corrupt state file aside to <name>.json.corrupt", async () => {
  await withHome(async (paths) => {
    await ensureDirs(paths);
    const store = new StateStore(paths);
    await writeFile(join(paths.state, "api.json"), "{ not json");
    await writeFile(join(paths.state, "web.json"), JSON.stringify({ name: "web", status: 7 }));
    const onCorrupt = () => {};
    assert.equal(await readState(paths, "api", { onCorrupt }), undefined);
    await store.starting("api", "binary", { pid: 4321, pid_start: "1" });
    await store.failed("web", "It never started", { mode: "binary" });
    assert.deepEqual(
      (await readdir(paths.state)).sort(),
      ["api.json", "api.json.corrupt", "web.json", "web.json.corrupt"],
    );
    assert.equal(await readFile(join(paths.state, "api.json.corrupt"), "utf8"), "{ not json");
    assert.equal((await readState(paths, "api"))?.status, "starting");
    assert.equal((await readState(paths, "api"))?.restarts, 0, "a fresh record");
    assert.deepEqual(
      [(await readState(paths, "web"))?.status, (await readState(paths, "web"))?.mode],
      ["failed", "binary"],
    );
  });
});

Deno.test("an illegal transition throws StateTransitionError and writes nothing", async () => {
  await withHome(async (paths) => {
    const store = new StateStore(paths);
    await assert.rejects(store.running("api"), StateTransitionError, "running from no record");
    await assert.rejects(store.stopping("api"), StateTransitionError, "stopping from no record");
    assert.equal(await readState(paths, "api"), undefined);

    await store.stopped("api", "binary");
    const stopped = await readFile(join(paths.state, "api.json"), "utf8");
    await assert.rejects(store.running("api"), (e: unknown) => {
      assert.ok(e instanceof StateTransitionError);
      assert.equal(e.name, "StateTransitionError");
      assert.equal(e.message, 'Cannot move "api" from stopped to running');
      return true;
    });
    await assert.rejects(store.backoff("api", { message: "x", delayMs: 1 }), StateTransitionError);
    assert.equal(await readFile(join(paths.state, "api.json"), "utf8"), stopped);

    await store.starting("api", "binary", { pid: 4321, pid_start: "1" });
    await store.running("api");
    await assert.rejects(
      store.starting("api", "binary", { pid: 9999, pid_start: "2" }),
      { message: 'Cannot move "api" from running to starting' },
    );
    assert.equal((await readState(paths, "api"))?.pid, 4321);
    assert.equal(await readPid(paths, "api"), 4321);
  });
});

Deno.test("failed clears pid and pid_start, removes the PID file and records why, when and by whom", async () => {
  await withHome(async (paths) => {
    const store = new StateStore(paths, { by: "supervisor 99" });
    await store.starting("api", "binary", { pid: 4321, pid_start: "1", handle: { pgid: 4321 } });
    await store.running("api");
    await store.note("api", "Unhealthy: connection refused");
    const failed = await store.failed("api", "Process 4321 exited with code 3", {
      exit: { code: 3, signal: null },
      last_log_lines: ["listening", "panic: out of cheese"],
    });
    assert.deepEqual(await readState(paths, "api"), failed);
    assert.equal(failed.status, "failed");
    assert.equal(failed.pid, undefined);
    assert.equal(failed.pid_start, undefined);
    assert.equal(failed.message, "Process 4321 exited with code 3");
    assert.deepEqual(failed.last_log_lines, ["listening", "panic: out of cheese"]);
    assert.deepEqual(
      [failed.last_exit?.code, failed.last_exit?.signal],
      [3, null],
    );
    assert.ok(recent(failed.last_exit?.at), failed.last_exit?.at);
    assert.ok(recent(failed.since), failed.since);
    assert.ok(recent(failed.stopped_at), failed.stopped_at);
    assert.equal(failed.by, "supervisor 99");
    assert.deepEqual(failed.handle, { pgid: 4321 }, "the handle is kept for a later stop");
    assert.equal(await readPid(paths, "api"), undefined);
    assert.deepEqual(await readdir(paths.pids), []);

    // A failure of a service without any record (a pre-flight refusal) creates one.
    const refused = await store.failed("web", "Port 80 already in use", { mode: "docker" });
    assert.deepEqual(
      [refused.status, refused.mode, refused.restarts, refused.message, refused.last_log_lines],
      ["failed", "docker", 0, "Port 80 already in use", undefined],
    );
    // The next start begins afresh: no reason of the failure is carried into it.
    const again = await store.starting("api", "binary", { pid: 5555, pid_start: "2" });
    assert.equal(again.message, undefined);
    assert.equal(again.last_log_lines, undefined);
    assert.equal(again.last_exit?.code, 3, "the last exit is history, and kept");
    assert.equal(await readPid(paths, "api"), 5555);
  });
});

Deno.test("backoff records next_attempt_at and the crash; the restart counts it", async () => {
  await withHome(async (paths) => {
    const store = new StateStore(paths);
    await store.starting("api", "binary", { pid: 4321, pid_start: "1" });
    await store.running("api");
    const before = Date.now();
    const backoff = await store.backoff("api", {
      message: "Process 4321 killed by SIGKILL; restarting in 2s",
      delayMs: 2_000,
      exit: { code: null, signal: "SIGKILL" },
    });
    const after = Date.now();
    assert.deepEqual(await readState(paths, "api"), backoff);
    assert.equal(backoff.status, "backoff");
    assert.equal(backoff.message, "Process 4321 killed by SIGKILL; restarting in 2s");
    const due = Date.parse(backoff.next_attempt_at ?? "");
    assert.ok(due >= before + 2_000 && due <= after + 2_000, backoff.next_attempt_at);
    assert.equal(backoff.last_exit?.signal, "SIGKILL");
    assert.equal(backoff.pid, undefined);
    assert.equal(await readPid(paths, "api"), undefined);
    assert.equal(backoff.restarts, 0);

    const restarted = await store.starting("api", "binary", {
      pid: 4322,
      pid_start: "2",
      restart: true,
    });
    assert.equal(restarted.restarts, 1);
    assert.equal(restarted.next_attempt_at, undefined);
    assert.equal(restarted.message, undefined);
    assert.equal(await readPid(paths, "api"), 4322);
  });
});

Deno.test("exited() records how the recorded process ended, and ignores an older process's exit", async () => {
  await withHome(async (paths) => {
    const store = new StateStore(paths);
    assert.equal(await store.exited("api", 1, { code: 0, signal: null }), undefined);
    assert.equal(await readState(paths, "api"), undefined, "no record, nothing written");
    await store.starting("api", "binary", { pid: 4321, pid_start: "1" });
    await store.running("api");
    const ignored = await store.exited("api", 1111, { code: 1, signal: null });
    assert.equal(ignored?.last_exit, undefined);
    assert.equal((await readState(paths, "api"))?.last_exit, undefined);
    const recorded = await store.exited("api", 4321, { code: null, signal: "SIGTERM" });
    assert.equal(recorded?.status, "running", "the status is the transitions' business");
    assert.equal((await readState(paths, "api"))?.last_exit?.signal, "SIGTERM");
  });
});

Deno.test("reads write nothing: binary.status() of a dead pid leaves every file as it was", async () => {
  await withHome(async (paths) => {
    const store = new StateStore(paths);
    const gone = deadPid();
    await store.starting("api", "binary", { pid: gone, pid_start: "1" });
    await store.running("api");
    await writeFile(join(paths.state, "broken.json"), "{ not json");
    const svc = {
      name: "api",
      deployment: { mode: "binary", binary: { binary_path: "/bin/true" } },
    } as unknown as Service;
    const ctx: DriverContext = { paths, env: {}, cwd: paths.home };
    // Let a same-millisecond write show up as a changed mtime.
    await new Promise((r) => setTimeout(r, 20));
    const before = await snapshot(paths.home);

    const status = await binaryDriver.status(svc, ctx);
    assert.equal(status.status, "failed");
    assert.equal(status.stale, true);
    await binaryDriver.status(svc, ctx);
    await readState(paths, "api");
    await readPid(paths, "api");
    await readState(paths, "broken", { onCorrupt: () => {} });
    await capturingWarnings(async () => void await store.read("broken"));

    assert.deepEqual(await snapshot(paths.home), before);
    assert.equal(await readPid(paths, "api"), gone);
    assert.equal((await readState(paths, "api"))?.status, "running");
  });
});

Deno.test("safeName() accepts service names and rejects anything that could escape a directory", () => {
  for (const ok of ["api", "api-gateway", "a.b_c", "0x"]) assert.equal(safeName(ok), ok);
  for (const bad of ["", "../etc/passwd", "a/b", "..", "a..b", ".hidden", "-x", "Api", "a b"]) {
    assert.throws(() => safeName(bad), UsageError, bad);
  }
});

Deno.test("withLock() runs two concurrent holders of the same name one after the other", async () => {
  await withHome(async (paths) => {
    const events: string[] = [];
    let inside = 0;
    const critical = (id: string) => async () => {
      inside++;
      assert.equal(inside, 1, "only one holder inside the lock");
      events.push(`${id} in`);
      await new Promise((r) => setTimeout(r, 30));
      events.push(`${id} out`);
      inside--;
      return id;
    };
    const results = await Promise.all([
      withLock(paths, "api", critical("a")),
      withLock(paths, "api", critical("b")),
      withLock(paths, "other", () => Promise.resolve("c")),
    ]);
    assert.deepEqual(results, ["a", "b", "c"]);
    const [first, second] = [events[0].split(" ")[0], events[2].split(" ")[0]];
    assert.notEqual(first, second);
    assert.deepEqual(events, [`${first} in`, `${first} out`, `${second} in`, `${second} out`]);
    assert.deepEqual(await readdir(paths.locks), [], "the lock file is removed after use");
  });
});

Deno.test("withLock() takes over a lock whose owner is dead or whose pid was reused", async () => {
  await withHome(async (paths) => {
    await ensureDirs(paths);
    const lock = join(paths.locks, "api.lock");
    await writeFile(lock, `${deadPid()} 12345 dead\n`);
    assert.equal(
      await withLock(paths, "api", () => Promise.resolve("taken"), { waitMs: 2000 }),
      "taken",
    );
    // A live pid (ours) with another start time: the pid was reused, the lock is stale.
    await writeFile(lock, `${process.pid} 1 reused\n`);
    assert.equal(
      await withLock(paths, "api", () => Promise.resolve("again"), { waitMs: 2000 }),
      "again",
    );
    assert.deepEqual(await readdir(paths.locks), []);
  });
});

Deno.test("withLock() gives up after waitMs naming the pid that holds the lock", async () => {
  await withHome(async (paths) => {
    await ensureDirs(paths);
    await writeFile(
      join(paths.locks, "api.lock"),
      `${process.pid} ${await processStartTime(process.pid)} x\n`,
    );
    await assert.rejects(
      withLock(paths, "api", () => Promise.resolve("never"), { waitMs: 100 }),
      (e: unknown) =>
        e instanceof ProvisioningError &&
        e.message === `Cannot lock "api": held by pid ${process.pid}`,
    );
  });
});

/**
 * A separate deno process that takes the lock, says "held", and keeps it until stdin closes;
 * then, still holding it, it appends "releasing" to `<home>/order` (a file: what it prints
 * reaches us later than a waiter may take the lock).
 */
function lockHolder(home: string) {
  const code = `
    import { appendFileSync } from "node:fs";
    import { statePaths } from "./core/state/files.ts";
    import { withLock } from "./core/state/lock.ts";
    await withLock(statePaths(${JSON.stringify(home)}), "api", async () => {
      console.log("held");
      for await (const _ of process.stdin) { /* wait for EOF */ }
      appendFileSync(${JSON.stringify(join(home, "order"))}, "releasing\\n");
    });`;
  const child = spawn(Deno.execPath(), ["eval", "--ext=ts", code], {
    cwd: ROOT,
    stdio: ["pipe", "pipe", "inherit"],
  });
  let out = "";
  const said = (word: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => out.includes(word) && resolve();
      child.stdout!.on("data", (d) => {
        out += d;
        check();
      });
      child.once("exit", () =>
        out.includes(word) ? resolve() : reject(new Error(`holder exited: ${out}`)));
      check();
    });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  return { child, said, exited, output: () => out };
}

Deno.test("withLock() waits for a lock held by another process until it is released", async () => {
  await withHome(async (paths) => {
    const holder = lockHolder(paths.home);
    try {
      await holder.said("held");
      let releasedFirst: boolean | undefined;
      const waiting = withLock(paths, "api", async () => {
        releasedFirst = (await readFile(join(paths.home, "order"), "utf8").catch(() => ""))
          .includes("releasing");
      }, { waitMs: 20_000 });
      holder.child.stdin!.end();
      await waiting;
      assert.equal(releasedFirst, true);
    } finally {
      holder.child.kill("SIGKILL");
      await holder.exited;
    }
  });
});

Deno.test("withLock() takes over the lock of a holder killed with SIGKILL", async () => {
  await withHome(async (paths) => {
    const holder = lockHolder(paths.home);
    try {
      await holder.said("held");
      holder.child.kill("SIGKILL");
      await holder.exited;
      assert.equal(
        await withLock(paths, "api", () => Promise.resolve("mine"), { waitMs: 5000 }),
        "mine",
      );
    } finally {
      holder.child.stdin!.destroy();
      holder.child.stdout!.destroy();
    }
  });
});
