/**
 * A home nobody else can subvert: a home or state folder made by another user, or writable by
 * others, is refused with one line; a symbolic link planted where a log goes is never followed;
 * a supervisor socket that is not ours is never talked to. Needs root (to play another user).
 */
import assert from "node:assert/strict";
import { chmodSync, chownSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { runCli } from "../_cli.ts";
import { Sandbox } from "./_registry.ts";

const root = process.getuid?.() === 0;
const NOBODY = 65534;

Deno.test({
  name: "a home owned by another user is refused with one line and nothing is written in it",
  ignore: !root,
  fn: async () => {
    await using sb = await Sandbox.create([{ name: "api", kind: "plain" }]);
    mkdirSync(sb.home, { mode: 0o755 });
    chownSync(sb.home, NOBODY, NOBODY);
    const r = await sb.cli(["services", "start", "api"]);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stderr, /Refusing to use .*home: it is owned by uid 65534/);
    assert.equal(r.stderr.split("\n").filter((l) => l.startsWith("❌")).length, 1, r.stderr);
    assert.deepEqual(Deno.readDirSync(sb.home).toArray(), []);
    chownSync(sb.home, 0, 0); // let the sandbox clean up
  },
});

Deno.test({
  name: "a state folder writable by others is refused",
  ignore: !root,
  fn: async () => {
    await using sb = await Sandbox.create([{ name: "api", kind: "plain" }]);
    mkdirSync(join(sb.home, "services", "logs"), { recursive: true, mode: 0o700 });
    chmodSync(join(sb.home, "services", "logs"), 0o777);
    const r = await sb.cli(["services", "start", "api"]);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stderr, /logs: it is writable by group or others \(mode 0777\)/);
    assert.match(r.stderr, /chmod 700/);
  },
});

Deno.test({
  name: "a symbolic link planted where a service's log goes is never written through",
  ignore: !root,
  fn: async () => {
    await using sb = await Sandbox.create([{ name: "api", kind: "plain" }]);
    const logs = join(sb.home, "services", "logs");
    mkdirSync(logs, { recursive: true, mode: 0o700 });
    const target = join(sb.dir, "precious.txt");
    writeFileSync(target, "precious\n", { mode: 0o644 });
    symlinkSync(target, join(logs, "api.log"));
    const r = await sb.cli(["services", "start", "api"]);
    assert.notEqual(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /api\.log: it is a symbolic link/);
    assert.equal(readFileSync(target, "utf8"), "precious\n");
    assert.equal(Deno.statSync(target).mode! & 0o777, 0o644, "the link's target was chmodded");
  },
});

Deno.test({
  name: "a supervisor socket owned by another user never receives a request",
  ignore: !root,
  fn: async () => {
    await using sb = await Sandbox.create([{ name: "api", kind: "plain" }]);
    const run = join(sb.home, "run");
    mkdirSync(run, { recursive: true, mode: 0o700 });
    const socket = join(run, "supervisor.sock");
    let received = "";
    const server = createServer((c) => c.on("data", (d) => (received += d)));
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    try {
      chownSync(socket, NOBODY, NOBODY);
      const r = await runCli(["supervisor", "status"], { env: { PROVISIONING_HOME: sb.home } });
      assert.equal(r.code, 3, r.stdout + r.stderr);
      assert.match(
        r.stderr,
        /Refusing to talk to the supervisor at .*supervisor\.sock: it is owned by uid 65534/,
      );
      assert.equal(received, "");
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  },
});
