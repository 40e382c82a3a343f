/**
 * Faults of the machine: a full disk (a small tmpfs as the home) does not end supervision — a
 * crash is still restarted, and the state is written once there is room again — and the CLI says
 * `No space left on device: <path>` in one line with exit 1; a read-only home gets its own line.
 * Needs root (to mount).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { until } from "../_until.ts";
import { isAlive } from "../../core/process/identity.ts";
import { readState } from "../../core/state/store.ts";
import { statePaths } from "../../core/state/files.ts";
import { cliStatus, supervisedSandbox, supervisorPid } from "./_supervised.ts";
import { pidsWithArg } from "./_registry.ts";

const root = process.getuid?.() === 0;

/** Fill the file system of `dir` until it refuses more (ENOSPC). */
function fill(file: string): void {
  const chunk = new Uint8Array(16 * 1024);
  let size = 0;
  try {
    for (;;) {
      writeFileSync(file, chunk, { flag: "a" });
      size += chunk.length;
      if (size > 64 * 1024 * 1024) throw new Error("the tmpfs never filled up");
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
  }
}

Deno.test({
  name:
    "with the home's disk full the supervisor still restarts a crash, and the CLI says which path is full",
  ignore: !root,
  fn: async () => {
    await using sb = await supervisedSandbox([
      { name: "api", kind: "plain", startup: { restart_on_failure: true, max_restarts: 5 } },
      { name: "other", kind: "plain" },
    ]);
    mkdirSync(sb.home, { mode: 0o700 });
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", sb.home]);
    const filler = join(sb.home, "filler");
    try {
      const start = await sb.cli(["services", "start", "api"]);
      assert.equal(start.code, 0, start.stdout + start.stderr);
      const supervisor = (await supervisorPid(sb))!;
      const old = (await cliStatus(sb, "api")).pid!;

      fill(filler);
      process.kill(old, "SIGKILL");
      let now: number[] = [];
      await until(
        async () => {
          now = await pidsWithArg(sb.marker("api"));
          return now.length === 1 && now[0] !== old;
        },
        "the supervisor to restart api on a full disk",
        15_000,
      );
      assert.equal(await isAlive(supervisor), true, "the supervisor died on a full disk");

      const refused = await sb.cli(["services", "start", "other"]);
      assert.equal(refused.code, 1, refused.stdout + refused.stderr);
      assert.match(refused.stderr, /^❌ No space left on device: \/\S+$/m);
      assert.doesNotMatch(refused.stderr, /ENOSPC|at .*\.ts:/);

      rmSync(filler);
      await until(
        async () => (await readState(statePaths(sb.home), "api"))?.pid === now[0],
        "the state kept in memory to be written once there is room",
        20_000,
      );
      assert.equal((await cliStatus(sb, "api")).status, "running");
    } finally {
      rmSync(filler, { force: true });
      await sb.cli(["platform", "stop", "--force"]);
      await sb.cli(["supervisor", "stop"]);
      execFileSync("umount", ["-l", sb.home]);
    }
  },
});

Deno.test({
  name: "a read-only home gets its own one-line message",
  ignore: !root,
  fn: async () => {
    await using sb = await supervisedSandbox([{ name: "api", kind: "plain" }]);
    mkdirSync(statePaths(sb.home).locks, { recursive: true, mode: 0o700 });
    execFileSync("mount", ["--bind", sb.home, sb.home]);
    try {
      execFileSync("mount", ["-o", "remount,ro,bind", sb.home]);
      const r = await sb.cli(["services", "start", "api"]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /^❌ Read-only file system: \/\S+$/m);
    } finally {
      execFileSync("umount", [sb.home]);
    }
  },
});
