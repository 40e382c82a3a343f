/**
 * `provisioning why NAME` through the CLI: a dependent blocked by a dependency that exits with a
 * code (the chain down to the root cause), a crash-looper the supervisor gave up on (its crashes
 * from the event journal, its exit code, its last log lines), a port taken by another process
 * (pre-flight names its pid), a missing binary, and a healthy service (since when, exit 0).
 */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { Sandbox, until } from "./_registry.ts";
import { supervisedSandbox, supervisorLines } from "./_supervised.ts";

const json = (r: { stdout: string; stderr: string }) => {
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new Error(`not JSON: ${r.stdout}${r.stderr}`);
  }
};

Deno.test("why: a healthy service says since when (exit 0); a blocked dependent names the root cause (exit 1)", async () => {
  await using sb = await Sandbox.create([
    { name: "ok" },
    { name: "db", flags: ["--exit-after", "100", "--exit-code", "7"], readyAfter: 5_000 },
    { name: "api", deps: ["db"] },
    { name: "web", deps: ["api"] },
  ]);
  const up = await sb.cli(["services", "start", "ok"]);
  assert.equal(up.code, 0, up.stdout + up.stderr);
  const ok = await sb.cli(["why", "ok"]);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(
    ok.stdout,
    /^✅ ok is running and healthy since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(pid \d+\)$/m,
  );

  const start = await sb.cli(["services", "start", "web"]);
  assert.equal(start.code, 1, start.stdout + start.stderr);
  const why = await sb.cli(["why", "web"]);
  assert.equal(why.code, 1, why.stdout + why.stderr);
  const first = why.stdout.split("\n")[0];
  assert.match(
    first,
    /^❌ web is blocked: api is blocked: db exited with code 7 at \d\d:\d\d:\d\d \(see: provisioning logs db\)$/,
  );
  assert.match(why.stdout, /Fix db first, then: provisioning services start web/);
  const doc = json(await sb.cli(["why", "web", "--json"]));
  assert.equal(doc.ok, false);
  assert.equal(doc.root_cause, "db");
  assert.deepEqual(doc.chain.map((r: { service: string }) => r.service), ["web", "api", "db"]);
  assert.equal(doc.chain[2].exit_code, 7);
  assert.ok(doc.chain[2].log_tail.length > 0, "db's last log lines");
});

Deno.test("why: a crash-looper the supervisor gave up on — its crashes, exit code and last lines", async () => {
  await using sb = await supervisedSandbox([{
    name: "loop",
    readyAfter: 50,
    flags: ["--exit-after", "300", "--exit-code", "3"],
    startup: { restart_on_failure: true, max_restarts: 2, restart_delay: 0.1, restart_window: 60 },
  }]);
  assert.equal((await sb.cli(["services", "start", "loop"])).code, 0);
  await until(
    async () => (await supervisorLines(sb, "loop")).some((l) => /^Gave up/.test(l.text)),
    "the supervisor to give up",
    20_000,
  );
  const why = await sb.cli(["why", "loop"]);
  assert.equal(why.code, 1, why.stdout + why.stderr);
  assert.match(
    why.stdout,
    /^❌ loop exited with code 3 at .*; gave up after 2 restart\(s\) \(max_restarts\)/,
  );
  assert.match(why.stdout, /Last events:\n(.*\n)*.*crashed \(exited with code 3\).*\[supervisor\]/);
  assert.match(why.stdout, /gave up after 2 restarts/);
  assert.match(why.stdout, /Last log lines \(provisioning services logs loop\):/);
});

Deno.test("why: a port taken by another process and a missing binary are what pre-flight finds now", async () => {
  await using sb = await Sandbox.create([
    { name: "web" },
    {
      name: "ghost",
      command: () => ({ binary_path: "/nonexistent/ghost-bin", args: [] }),
      check: "none",
      kind: "plain",
    },
  ]);
  const squatter = createServer();
  await new Promise<void>((r) => squatter.listen(sb.ports.web, "127.0.0.1", r));
  try {
    const why = await sb.cli(["why", "web"]);
    assert.equal(why.code, 1, why.stdout + why.stderr);
    assert.match(why.stdout, /^❌ web is stopped; Port \d+ already in use \(pid \d+\)/);
    assert.match(
      why.stdout,
      new RegExp(`⛔ Port ${sb.ports.web} already in use \\(pid ${process.pid}\\)`),
    );
  } finally {
    await new Promise((r) => squatter.close(r));
  }
  const ghost = await sb.cli(["why", "ghost"]);
  assert.equal(ghost.code, 1, ghost.stdout + ghost.stderr);
  assert.match(ghost.stdout, /⛔ .*\/nonexistent\/ghost-bin/);
});
