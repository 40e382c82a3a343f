import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ProvisioningError, UsageError } from "../../core/errors.ts";
import { processStartTime } from "../../core/process/identity.ts";
import {
  defaultHome,
  ensureDirs,
  readPid,
  readState,
  removePid,
  removeState,
  safeName,
  statePaths,
  withLock,
  writeFileAtomic,
  writePid,
  writeState,
} from "../../core/state/files.ts";
import type { ServiceState, StatePaths } from "../../core/types.ts";

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

const sample: ServiceState = {
  name: "api",
  mode: "binary",
  status: "running",
  pid: 1234,
  pid_start: "5678",
  started_at: "2026-11-26T10:00:00.000Z",
  restarts: 2,
};

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

Deno.test("writeState() and readState() round-trip; a missing state reads as undefined", async () => {
  await withHome(async (paths) => {
    assert.equal(await readState(paths, "api"), undefined);
    await writeState(paths, sample); // creates the directories on first use
    assert.deepEqual(await readState(paths, "api"), sample);
    assert.equal((await stat(join(paths.state, "api.json"))).mode & 0o777, 0o600);
    await removeState(paths, "api");
    assert.equal(await readState(paths, "api"), undefined);
  });
});

Deno.test("readState() reports a corrupt file, moves it aside and reads as no state", async () => {
  await withHome(async (paths) => {
    await ensureDirs(paths);
    const reports: string[] = [];
    const onCorrupt = (file: string, reason: string) => reports.push(`${file}: ${reason}`);
    await writeFile(join(paths.state, "api.json"), "{ not json");
    assert.equal(await readState(paths, "api", { onCorrupt }), undefined);
    await writeFile(join(paths.state, "web.json"), JSON.stringify({ name: "web", status: 7 }));
    assert.equal(await readState(paths, "web", { onCorrupt }), undefined);
    assert.equal(reports.length, 2);
    assert.match(reports[0], /api\.json: /);
    assert.match(reports[1], /web\.json: .*status/);
    assert.deepEqual((await readdir(paths.state)).sort(), ["api.json.corrupt", "web.json.corrupt"]);
    assert.equal(await readState(paths, "api", { onCorrupt }), undefined);
    assert.equal(reports.length, 2, "a moved-aside file is reported once");
  });
});

Deno.test("writePid(), readPid() and removePid() manage services/pids/<name>.pid", async () => {
  await withHome(async (paths) => {
    assert.equal(await readPid(paths, "api"), undefined);
    await writePid(paths, "api", 4321);
    assert.equal(await readFile(join(paths.pids, "api.pid"), "utf8"), "4321\n");
    assert.equal(await readPid(paths, "api"), 4321);
    await writeFile(join(paths.pids, "web.pid"), "garbage");
    assert.equal(await readPid(paths, "web"), undefined);
    await removePid(paths, "api");
    await removePid(paths, "api");
    assert.equal(await readPid(paths, "api"), undefined);
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

/** A separate deno process that takes the lock, says "held", and keeps it until stdin closes. */
function lockHolder(home: string) {
  const code = `
    import { statePaths, withLock } from "./core/state/files.ts";
    await withLock(statePaths(${JSON.stringify(home)}), "api", async () => {
      console.log("held");
      for await (const _ of process.stdin) { /* wait for EOF */ }
      console.log("releasing");
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
      const waiting = withLock(paths, "api", () => {
        releasedFirst = holder.output().includes("releasing");
        return Promise.resolve();
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
