/**
 * The event journal (`services/events.jsonl`) and `provisioning events`: appends of several
 * processes at once never interleave or lose a line, with or without rotations in between; a
 * start and a stop through the CLI, and a crash the supervisor recovers, read back as a timeline
 * (text and JSON lines), filtered by service and by time; `--follow` sees new events across a
 * rotation.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { cliCommand, ROOT } from "../_cli.ts";
import { ensureDirs, statePaths } from "../../core/state/files.ts";
import { appendEvent, journalFile, type JournalRecord } from "../../core/state/journal.ts";
import { Sandbox, until } from "./_registry.ts";
import { cliStatus, supervisedSandbox } from "./_supervised.ts";

/** A writer process: waits for the go file, then appends `count` events through journal.ts. */
const WRITER = `
import { existsSync } from "node:fs";
import { appendEvent } from ${
  JSON.stringify(pathToFileURL(join(ROOT, "core/state/journal.ts")).href)
};
import { statePaths } from ${JSON.stringify(pathToFileURL(join(ROOT, "core/state/files.ts")).href)};
const [home, name, count, maxSize, keep, go] = Deno.args;
const paths = statePaths(home);
console.log("ready");
while (!existsSync(go)) await new Promise((r) => setTimeout(r, 1));
for (let i = 1; i <= Number(count); i++) {
  // Awaited as a caller's next turn would: a rotation it starts runs among the others' appends.
  await appendEvent(paths, {
    type: "started",
    service: name,
    by: "cli",
    text: "event " + i + " of " + name + " " + "x".repeat(i % 50),
  }, { maxSize: Number(maxSize), keep: Number(keep) });
}
`;

/** Run `n` writer processes at once, `count` events each; resolves when all have exited. */
async function writers(home: string, n: number, count: number, maxSize: number, keep: number) {
  const script = join(home, "..", "writer.ts");
  const go = join(home, "..", "go");
  writeFileSync(script, WRITER);
  const children = Array.from({ length: n }, (_, i) =>
    spawn(Deno.execPath(), [
      "run",
      "-A",
      "--quiet",
      script,
      home,
      `w${i}`,
      String(count),
      String(maxSize),
      String(keep),
      go,
    ], { stdio: ["ignore", "pipe", "inherit"] }));
  await Promise.all(
    children.map((c) => new Promise<void>((resolve) => c.stdout!.once("data", () => resolve()))),
  );
  writeFileSync(go, "");
  const codes = await Promise.all(
    children.map((c) => new Promise<number | null>((resolve) => c.once("exit", resolve))),
  );
  assert.deepEqual(codes, Array(n).fill(0));
}

/** Every line of the journal and its rotated files, oldest file first; each must be JSON. */
function rawLines(home: string): JournalRecord[] {
  const file = journalFile(statePaths(home));
  const dir = join(home, "services");
  const rotated = readdirSync(dir).filter((f) => /^events\.jsonl\.\d+$/.test(f))
    .sort((a, b) => Number(b.split(".").pop()) - Number(a.split(".").pop()));
  const out: JournalRecord[] = [];
  for (const f of [...rotated.map((r) => join(dir, r)), file]) {
    const text = readFileSync(f, "utf8");
    assert.ok(text === "" || text.endsWith("\n"), `${f} ends in the middle of a line`);
    for (const line of text.split("\n").filter(Boolean)) {
      try {
        out.push(JSON.parse(line));
      } catch {
        assert.fail(`not one JSON record per line in ${f}: ${line.slice(0, 200)}`);
      }
    }
  }
  return out;
}

/** Each writer's records carry 1..count in the order given. */
function assertPerWriterOrder(records: JournalRecord[], writers: number, count: number): void {
  for (let i = 0; i < writers; i++) {
    const mine = records.filter((r) => r.service === `w${i}`);
    assert.equal(mine.length, count, `writer w${i}: ${mine.length} of ${count} lines`);
    assert.equal(new Set(mine.map((r) => r.writer_pid)).size, 1);
    mine.forEach((r, k) => assert.equal(r.seq, k + 1, `writer w${i}: line ${k} has seq ${r.seq}`));
    assert.match(mine[0].text, /^event 1 of w\d/);
  }
}

/** `events ... --json` through the CLI: its records. */
async function cliEvents(sb: Sandbox, args: string[] = []): Promise<JournalRecord[]> {
  const r = await sb.cli(["events", ...args, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).events;
}

/** The types of `records` of `service`, in order. */
const typesOf = (records: JournalRecord[], service: string) =>
  records.filter((r) => r.service === service).map((r) => r.type);

/** Whether `want` occurs in `seen` in this order (other items in between allowed). */
function inOrder(seen: string[], want: string[]): boolean {
  let i = 0;
  for (const s of seen) if (s === want[i]) i++;
  return i === want.length;
}

Deno.test("3 processes appending 1,000 events each at once: 3,000 whole JSON lines, seq increasing per writer", async () => {
  await using sb = await Sandbox.create([]);
  await ensureDirs(statePaths(sb.home));
  await writers(sb.home, 3, 1000, 1024 * 1024 * 1024, 3);
  const records = rawLines(sb.home);
  assert.equal(records.length, 3000);
  assertPerWriterOrder(records, 3, 1000);
  // The CLI reads them all back, each writer's in its own order.
  const shown = await cliEvents(sb);
  assert.equal(shown.length, 3000);
  assertPerWriterOrder(shown, 3, 1000);
});

Deno.test("rotations during concurrent appends lose no line: every event is in the journal or its rotated files", async () => {
  await using sb = await Sandbox.create([]);
  await ensureDirs(statePaths(sb.home));
  // About 450 KB in all, rotated past 16 KiB: ~30 rotations while three processes append.
  await writers(sb.home, 3, 1000, 16 * 1024, 100);
  const rotated = readdirSync(join(sb.home, "services")).filter((f) => /\.jsonl\.\d+$/.test(f));
  assert.ok(rotated.length >= 10, `only ${rotated.length} rotations`);
  const records = rawLines(sb.home);
  assert.equal(records.length, 3000);
  // In the files' order each writer's lines already run 1..1000 (a line written to a file just
  // renamed lands in that older file, still before the writer's next one).
  assertPerWriterOrder(records, 3, 1000);
  const shown = await cliEvents(sb);
  assert.equal(shown.length, 3000);
  assertPerWriterOrder(shown, 3, 1000);
  for (let i = 1; i < shown.length; i++) {
    assert.ok(shown[i - 1].at <= shown[i].at, `events out of time order at ${i}`);
  }
});

Deno.test("`events` after a start and a stop through the CLI: requested (cli pid, user), starting, started, healthy, stopping, stopped", async () => {
  await using sb = await Sandbox.create([{ name: "db" }, { name: "web", deps: ["db"] }]);
  const start = await sb.cli(["services", "start", "web"]);
  assert.equal(start.code, 0, start.stdout + start.stderr);
  const stop = await sb.cli(["platform", "stop"]);
  assert.equal(stop.code, 0, stop.stdout + stop.stderr);

  const records = await cliEvents(sb);
  const web = typesOf(records, "web");
  assert.ok(
    inOrder(web, ["requested", "starting", "started", "healthy", "stopping", "stopped"]),
    `web: ${web.join(", ")}`,
  );
  assert.ok(inOrder(typesOf(records, "db"), ["starting", "started", "healthy", "stopped"]));
  const requested = records.find((r) => r.type === "requested" && r.service === "web")!;
  assert.equal(requested.operation, "start");
  assert.equal(requested.by, "cli");
  const by = requested.requested_by as { kind: string; pid: number; user: string };
  assert.equal(by.kind, "cli");
  assert.ok(by.pid > 0 && by.pid !== process.pid, `requested by pid ${by.pid}`);
  assert.equal(by.user, userInfo().username);
  assert.match(requested.text, /^start requested by cli \(pid \d+, user \S+\)$/);
  // A stop of the whole platform is one event without a service.
  const all = records.find((r) => r.type === "requested" && r.operation === "stop")!;
  assert.equal(all.service, undefined);
  assert.equal(records.find((r) => r.type === "stopped" && r.service === "web")!.how, "graceful");
  assert.equal(records.find((r) => r.type === "started" && r.service === "db")!.dependency, true);
  for (const r of records) {
    assert.ok(r.seq > 0 && r.writer_pid > 0 && !Number.isNaN(Date.parse(r.at)));
  }

  // The text timeline, one line per event, as journalctl prints it.
  const text = await sb.cli(["events", "web"]);
  assert.equal(text.code, 0, text.stderr);
  const lines = text.stdout.trimEnd().split("\n");
  assert.match(lines[0], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z web: start requested by cli /);
  assert.ok(lines.some((l) => /Z web: healthy \(pid \d+\) \[cli\]$/.test(l)), text.stdout);
  assert.ok(lines.some((l) => /Z platform: stop of the platform requested by cli/.test(l)));
  assert.ok(!lines.some((l) => / db: /.test(l)), "`events web` shows db's events");
});

Deno.test("`events NAME` filters, `--since` cuts by time, and a bad --since is a usage error", async () => {
  await using sb = await Sandbox.create([{ name: "db" }, { name: "web", deps: ["db"] }]);
  assert.equal((await sb.cli(["services", "start", "db"])).code, 0);
  // The cut: just after the start's last record (the stop is a later process).
  const mark = new Date(Date.parse((await cliEvents(sb, ["db"])).at(-1)!.at) + 1);
  assert.equal((await sb.cli(["services", "stop", "db"])).code, 0);

  const db = await cliEvents(sb, ["db"]);
  assert.ok(db.length >= 6 && db.every((r) => r.service === "db"));
  assert.deepEqual(await cliEvents(sb, ["web"]), []);
  const none = await sb.cli(["events", "web"]);
  assert.equal(none.stdout.trim(), "No events of web.");

  const recent = await cliEvents(sb, ["--since", mark.toISOString()]);
  assert.deepEqual(recent.map((r) => r.type), ["requested", "stopping", "stopped"]);
  assert.equal((await cliEvents(sb, ["--since", "1h"])).length, db.length);
  assert.deepEqual(
    await cliEvents(sb, ["--since", new Date(Date.now() + 60_000).toISOString()]),
    [],
  );
  const bad = await sb.cli(["events", "--since", "yesterday"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Invalid since "yesterday"/);
});

Deno.test("a crash the supervisor recovers: crashed (SIGKILL), backoff, restarting, healthy, by the supervisor", async () => {
  await using sb = await supervisedSandbox([{
    name: "api",
    startup: { restart_on_failure: true },
  }]);
  const start = await sb.cli(["services", "start", "api"]);
  assert.equal(start.code, 0, start.stdout + start.stderr);
  const old = (await cliStatus(sb, "api")).pid!;
  process.kill(old, "SIGKILL");
  let records: JournalRecord[] = [];
  await until(
    async () => {
      records = await cliEvents(sb, ["api"]);
      return records.some((r) => r.type === "healthy" && r.by === "supervisor");
    },
    "a healthy event from the supervisor",
    20_000,
  );

  const after = records.slice(records.findIndex((r) => r.type === "crashed"));
  assert.deepEqual(after.map((r) => `${r.type} [${r.by}]`), [
    "crashed [supervisor]",
    "backoff [supervisor]",
    "restarting [supervisor]",
    "healthy [supervisor]",
  ]);
  const [crashed, backoff, restarting, healthy] = after;
  assert.equal(crashed.signal, "SIGKILL");
  assert.equal(crashed.pid, old);
  assert.equal(crashed.text, "crashed (killed by SIGKILL)");
  assert.equal(backoff.attempt, 1);
  assert.equal(typeof backoff.delay_ms, "number");
  assert.match(backoff.text, /^backoff: restart 1 of \d+ in \d+\.\d\ds/);
  assert.equal(restarting.attempt, 1);
  assert.notEqual(healthy.pid, old);
  assert.equal(healthy.pid, (await cliStatus(sb, "api")).pid);
  const text = await sb.cli(["events", "api", "--since", "1m"]);
  assert.match(text.stdout, /Z api: crashed \(killed by SIGKILL\) \[supervisor\]\n/);
});

/** `events --follow --json` as a child process; its lines as they come. */
function follow(sb: Sandbox): { child: ChildProcess; lines: () => JournalRecord[] } {
  const child = sb.adopt(spawn(...cliCommand(["events", "--follow", "--json"]), {
    cwd: ROOT,
    env: { ...process.env, PROVISIONING_HOME: sb.home, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "inherit"],
  }));
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  return {
    child,
    lines: () => out.split("\n").filter(Boolean).map((l) => JSON.parse(l)),
  };
}

Deno.test("`events --follow` prints new events as they are appended, and goes on after a rotation", async () => {
  await using sb = await Sandbox.create([]);
  const paths = statePaths(sb.home);
  await ensureDirs(paths);
  const note = (text: string, opts = {}) =>
    appendEvent(paths, { type: "warning", service: "web", by: "cli", text }, opts);
  await note("before the follower");
  const f = follow(sb);
  await until(() => f.lines().length === 1, "the follower to print the past event", 15_000);
  await note("one");
  await until(() => f.lines().length === 2, "the follower to print a new event");
  // This append leaves the file larger than 1 byte: it is renamed to .1 right after.
  await note("rotated away", { maxSize: 1 });
  assert.ok(readdirSync(join(sb.home, "services")).includes("events.jsonl.1"));
  await note("after the rotation");
  await until(() => f.lines().length === 4, "the follower to print events across the rotation");
  assert.deepEqual(f.lines().map((r) => r.text), [
    "before the follower",
    "one",
    "rotated away",
    "after the rotation",
  ]);
  const exited = new Promise((r) => f.child.once("exit", r));
  process.kill(f.child.pid!, "SIGINT"); // (Deno's child.kill() reports any exit as signalled)
  assert.equal(await exited, 0, "Ctrl+C ends --follow cleanly");
});

Deno.test("a journal that cannot be written never fails an operation: the start succeeds, said once on stderr", async () => {
  await using sb = await Sandbox.create([{ name: "web" }]);
  const paths = statePaths(sb.home);
  await ensureDirs(paths);
  // Not a file: every append fails (as on a full or read-only disk).
  mkdirSync(journalFile(paths));
  const start = await sb.cli(["services", "start", "web"]);
  assert.equal(start.code, 0, start.stdout + start.stderr);
  const said = start.stderr.split("\n").filter((l) => l.includes("Not recording events"));
  assert.equal(said.length, 1, start.stderr);
  assert.ok(said[0].includes(journalFile(paths)), said[0]);
  assert.equal((await cliStatus(sb, "web")).status, "running");
  const stop = await sb.cli(["services", "stop", "web"]);
  assert.equal(stop.code, 0, stop.stdout + stop.stderr);
  rmSync(journalFile(paths), { recursive: true }); // the sandbox's own cleanup journals too
});
