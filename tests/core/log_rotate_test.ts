import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { open } from "node:fs/promises";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rotateIfLarger } from "../../core/state/rotate.ts";
import { logFile } from "../../core/state/files.ts";
import { Platform } from "../../mod.ts";
import { until } from "../_until.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "prov-rotate-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const read = (file: string) => readFile(file, "utf8").catch(() => undefined);

Deno.test("rotateIfLarger() leaves a log at or under max_size alone", async () => {
  await withDir(async (dir) => {
    const log = join(dir, "svc.log");
    await writeFile(log, "x".repeat(100));
    assert.equal(await rotateIfLarger(log, 100, 3), false);
    assert.equal(await rotateIfLarger(join(dir, "missing.log"), 1, 3), false);
    assert.deepEqual((await readdir(dir)).sort(), ["svc.log"]);
  });
});

Deno.test("rotateIfLarger() shifts .1 to .2 and so on, keeps `keep` files and empties the log", async () => {
  await withDir(async (dir) => {
    const log = join(dir, "svc.log");
    for (const gen of ["a", "b", "c", "d", "e"]) {
      await writeFile(log, `${gen}\n`.repeat(20));
      assert.equal(await rotateIfLarger(log, 10, 3), true, `generation ${gen} not rotated`);
      assert.equal((await stat(log)).size, 0);
    }
    assert.deepEqual((await readdir(dir)).sort(), [
      "svc.log",
      "svc.log.1",
      "svc.log.2",
      "svc.log.3",
    ]);
    assert.equal(await read(`${log}.1`), "e\n".repeat(20));
    assert.equal(await read(`${log}.2`), "d\n".repeat(20));
    assert.equal(await read(`${log}.3`), "c\n".repeat(20));
  });
});

Deno.test("rotateIfLarger() with keep = 0 truncates the log and keeps no copy", async () => {
  await withDir(async (dir) => {
    const log = join(dir, "svc.log");
    await writeFile(log, "line\n".repeat(10));
    assert.equal(await rotateIfLarger(log, 5, 0), true);
    assert.equal(await read(log), "");
    assert.deepEqual(await readdir(dir), ["svc.log"]);
  });
});

Deno.test("a process writing with O_APPEND keeps writing at the start of the truncated log", async () => {
  await withDir(async (dir) => {
    const log = join(dir, "svc.log");
    const out = await open(log, "a", 0o600);
    // The child writes one numbered line for every newline it reads on stdin.
    const child = spawn(
      process.execPath,
      [
        "eval",
        `let i = 0;
        for await (const chunk of Deno.stdin.readable) {
          for (const byte of chunk) if (byte === 10) console.log("line " + i++ + " " + "x".repeat(100));
        }`,
      ],
      { stdio: ["pipe", out.fd, "inherit"] },
    );
    const exited = new Promise((r) => child.once("exit", r));
    await out.close();
    try {
      const size = async () => (await stat(log)).size;
      child.stdin!.write("\n".repeat(20));
      await until(async () => (await size()) > 2_000, "20 lines before the rotation");
      const before = await size();
      assert.equal(await rotateIfLarger(log, 1_000, 2), true);
      assert.equal((await stat(`${log}.1`)).size, before);
      assert.ok((await size()) < before, "the log was not truncated");
      child.stdin!.write("\n");
      await until(async () => (await read(log) ?? "").includes("\n"), "a line after the rotation");
      const after = (await read(log))!;
      // Without O_APPEND the write would land at the old offset behind a hole of NUL bytes.
      assert.equal(after.includes("\0"), false, "the truncated log has a hole of NUL bytes");
      assert.match(after, /^line 20 x+\n$/);
      assert.match((await read(`${log}.1`))!, /^line 0 [^]*line 19 x+\n$/);
    } finally {
      child.stdin!.end();
      child.kill("SIGKILL");
      await exited;
    }
  });
});

Deno.test("Platform.logs() with follow keeps following the service's log across a rotation", async () => {
  await withDir(async (dir) => {
    const config = join(dir, "services.toml");
    await writeFile(
      config,
      [
        "[services.writer]",
        'deployment = { mode = "binary", binary = { binary_path = "node" } }',
        "",
      ].join("\n"),
    );
    const home = join(dir, "home");
    const p = await Platform.open({
      config,
      home,
      env: { ...process.env, PROVISIONING_HOME: home },
    });
    const log = logFile(p.paths, "writer");
    await mkdir(p.paths.logs, { recursive: true });
    const out = await open(log, "a", 0o600);
    const ac = new AbortController();
    const seen: string[] = [];
    const follower = (async () => {
      for await (const line of p.logs("writer", { lines: 10, follow: true, signal: ac.signal })) {
        seen.push(line);
      }
    })();
    try {
      const write = (from: number, to: number) =>
        out.write(
          Array.from({ length: to - from }, (_, i) => `old-or-new ${from + i}\n`).join(""),
        );
      await out.write("first\n");
      await until(() => seen.length === 1, "the follower to read the first line");
      seen.length = 0;
      await write(0, 50);
      await until(() => seen.length === 50, "the 50 lines written before the rotation");
      assert.equal(await rotateIfLarger(log, 100, 5), true);
      await write(50, 60); // less than was there before: the follower sees the file shrink
      await until(() => seen.length === 60, "the 10 lines written after the rotation");
      await write(60, 70);
      await until(() => seen.length === 70, "the 10 lines written after those");
      assert.deepEqual(seen, Array.from({ length: 70 }, (_, i) => `old-or-new ${i}`));
    } finally {
      ac.abort();
      await follower;
      await out.close();
    }
  });
});
