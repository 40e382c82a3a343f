import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { pidGone, waitFor } from "../checks/_helpers.ts";
import { DemoService } from "./_demo_service.ts";

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => socket.end(() => resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

Deno.test("demo http service answers 503 until ready, then 200 and its name", async () => {
  await using service = new DemoService(["--name", "cc", "--port", "0", "--ready-after", "500"]);
  const port = await service.port();
  const asked = Date.now();
  const early = await get(port, "/health");
  const answered = Date.now();
  const readyAt = Date.parse((await service.waitForLine(/^(\S+) cc ready$/))[1]);
  // Usually asked before ready; either way the answer must agree with the logged ready time.
  if (early.status === 503) {
    assert.equal(early.body, '{"status":"starting"}');
    assert.ok(readyAt >= asked, "answered 503 after it was ready");
  } else {
    assert.deepEqual(early, { status: 200, body: '{"status":"ok"}' });
    assert.ok(readyAt <= answered, "answered 200 before it was ready");
  }
  assert.deepEqual(await get(port, "/health"), { status: 200, body: '{"status":"ok"}' });
  assert.deepEqual(await get(port, "/"), { status: 200, body: "cc\n" });
  assert.equal((await get(port, "/nope")).status, 404);
});

Deno.test("demo service logs one ISO-timestamped line per event", async () => {
  await using service = new DemoService(["--name", "dns", "--ready-after", "0"]);
  await service.waitForLine(/ dns ready$/);
  for (const line of service.lines) {
    assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z dns \S/);
  }
});

Deno.test("demo tcp service listens only once ready", async () => {
  await using service = new DemoService([
    "--name",
    "coredns",
    "--kind",
    "tcp",
    "--port",
    "0",
    "--ready-after",
    "100",
  ]);
  const port = await service.port();
  await service.waitForLine(/ coredns ready$/);
  const at = (re: RegExp) => Date.parse(service.lines.find((l) => re.test(l))!.split(" ")[0]);
  const waited = at(/ listening on /) - at(/ starting /);
  assert.ok(waited >= 90, `listened ${waited} ms after start, before --ready-after 100`);
  assert.equal(await canConnect(port), true);
});

Deno.test("demo service exits 0 on SIGTERM and removes its ready file", async () => {
  const dir = await mkdtemp(join(tmpdir(), "demo-service-"));
  try {
    const readyFile = join(dir, "ready");
    await using service = new DemoService([
      "--name",
      "plain",
      "--ready-after",
      "50",
      "--ready-file",
      readyFile,
    ]);
    await service.waitForLine(/ plain ready$/);
    assert.equal((await readFile(readyFile, "utf8")).trim(), String(service.pid));
    service.child.kill("SIGTERM");
    const status = await service.status;
    assert.equal(status.code, 0);
    assert.equal(existsSync(readyFile), false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("demo service exits with --exit-code after --exit-after", async () => {
  await using service = new DemoService(["--exit-after", "100", "--exit-code", "7"]);
  assert.equal((await service.status).code, 7);
  assert.ok(service.lines.some((l) => l.endsWith("exiting with code 7")));
});

Deno.test("demo service with --ignore-sigterm survives SIGTERM", async () => {
  await using service = new DemoService(["--name", "stubborn", "--ignore-sigterm"]);
  await service.waitForLine(/ starting /);
  service.child.kill("SIGTERM");
  await service.waitForLine(/ignoring SIGTERM$/);
  assert.equal(service.alive(), true);
});

Deno.test("demo service with --fork leaves sleeping grandchildren behind", async () => {
  const forked: number[] = [];
  try {
    await using service = new DemoService(["--name", "parent", "--fork", "2"]);
    await service.waitForLine(/ parent ready$/);
    for (const line of service.lines) {
      const match = line.match(/forked pid (\d+)$/);
      if (match) forked.push(Number(match[1]));
    }
    assert.equal(forked.length, 2);
    for (const pid of forked) assert.equal(await pidGone(pid), false, `pid ${pid} runs`);
    service.child.kill("SIGTERM");
    await service.status;
    // By design the parent does not reap them: a stop must kill the whole process group.
    for (const pid of forked) assert.equal(await pidGone(pid), false, `pid ${pid} survived`);
  } finally {
    for (const pid of forked) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    for (const pid of forked) await waitFor(() => pidGone(pid), `pid ${pid} to be gone`);
  }
});
