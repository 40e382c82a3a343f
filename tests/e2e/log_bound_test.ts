/**
 * Logs within their bound (issue 11, item 6), with real processes: a service writing as fast as
 * it can (`yes`), `max_size = 1 MiB`, `keep = 2`. The log folder is sampled over and over while
 * it writes; at no sample may it hold more than `max_size × (keep + 1)` plus 16 KiB (our own
 * `---` lines) — without a supervisor (the CLI has exited), and under a supervisor that is then
 * killed with SIGKILL. A `kill -9` of the log writer costs the service nothing (no SIGPIPE) and
 * loses no byte once a new writer reads again. A stop leaves no process behind, writer included.
 */
import assert from "node:assert/strict";
import { lstatSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  LOG_WRITER_VARIABLE,
  type LogWriter,
  respawnLogWriter,
} from "../../core/process/log_writer.ts";
import { isAlive } from "../../core/process/identity.ts";
import { scanTagged } from "../../core/process/tree.ts";
import { logFile, statePaths } from "../../core/state/files.ts";
import { readState } from "../../core/state/store.ts";
import { Sandbox, until } from "./_registry.ts";
import { supervisedSandbox, supervisorPid } from "./_supervised.ts";

const MAX = 1024 * 1024;
const KEEP = 2;
const SLACK = 16 * 1024;
const BOUND = MAX * (KEEP + 1) + SLACK;
const LINE = `${"y".repeat(99)}\n`;

/** `yes` with a 100-byte line: as fast as the pipe takes it. */
const FLOOD = () => ({
  binary_path: "/bin/sh",
  args: ["-c", `exec yes ${"y".repeat(99)}`],
});

/** A sandbox with the flooding service `flood` (max_size 1 MiB, keep 2). */
function floodSandbox(supervised: boolean): Promise<Sandbox> {
  return supervisedSandbox([{
    name: "flood",
    command: FLOOD,
    check: "none",
    logs: { max_size: "1MiB", keep: KEEP },
    ...(supervised ? { startup: { restart_on_failure: true, max_restarts: 3 } } : {}),
  }]);
}

/** Bytes in the log folder now (a file renamed between the listing and its stat is skipped). */
function folderBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    try {
      total += lstatSync(join(dir, name)).size;
    } catch { /* rotated away meanwhile: counted under its new name */ }
  }
  return total;
}

/** Sample the folder every few ms for `ms`; the largest size seen and how many samples. */
async function sample(dir: string, ms: number): Promise<{ max: number; samples: number }> {
  const end = Date.now() + ms;
  let max = 0;
  let samples = 0;
  while (Date.now() < end) {
    max = Math.max(max, folderBytes(dir));
    samples++;
    await new Promise((r) => setTimeout(r, 5));
  }
  return { max, samples };
}

/** Bytes the process `pid` (and the `head`s it waited for) has written: its `wchar`. */
function bytesWritten(pid: number): number {
  const io = readFileSync(`/proc/${pid}/io`, "utf8");
  return Number(/^wchar: (\d+)$/m.exec(io)?.[1] ?? 0);
}

/** Bytes the service `pid` has written so far. */
const flooded = bytesWritten;

/** Live log writers of `home`. */
function writersOf(home: string): number[] {
  return scanTagged(LOG_WRITER_VARIABLE)
    .filter((p) => p.value.startsWith(join(home, "/")))
    .map((p) => p.pid);
}

function assertBound(seen: { max: number; samples: number }, what: string): void {
  assert.ok(seen.samples > 20, `only ${seen.samples} samples`);
  assert.ok(
    seen.max <= BOUND,
    `${what}: the log folder reached ${seen.max} bytes (bound ${BOUND}, ${seen.samples} samples)`,
  );
}

/** The rotated files are exactly `max_size` of whole `yes` output (cut anywhere in a line). */
function assertRotated(logs: string): void {
  // (between two renames, `.1` or the log itself may be missing for a moment)
  const files = readdirSync(logs).filter((f) => !["flood.log", "flood.log.1"].includes(f));
  assert.deepEqual(files, ["flood.log.2"], "keep = 2: two rotated files, no more");
  const text = readFileSync(join(logs, "flood.log.2"), "latin1");
  assert.equal(text.length, MAX, "a rotated file holds exactly max_size bytes");
  const body = text.slice(text.indexOf("\n") + 1, text.lastIndexOf("\n") + 1);
  assert.ok(body.length > MAX - 2 * LINE.length && body.split(LINE).every((s) => s === ""));
}

Deno.test("without a supervisor: a flooding service's logs never pass max_size × (keep + 1)", async () => {
  await using sb = await floodSandbox(false);
  const r = await sb.cli(["services", "start", "flood"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  // The CLI has exited: the service and its writer run on their own.
  assert.equal(await supervisorPid(sb), undefined, "nothing needs watching: no supervisor");
  const state = await readState(statePaths(sb.home), "flood");
  const pid = state!.pid!;
  const writer = state!.handle!.log_writer as LogWriter;
  const logs = statePaths(sb.home).logs;
  assertBound(await sample(logs, 3_000), "unsupervised");
  assert.equal(await isAlive(pid, state!.pid_start), true, "it still floods");
  assert.ok(flooded(pid) > 8 * BOUND, `it wrote ${flooded(pid)} bytes: not a flood`);
  assertRotated(logs);

  const stop = await sb.cli(["services", "stop", "flood"]);
  assert.equal(stop.code, 0, stop.stdout + stop.stderr);
  assert.equal(await isAlive(pid), false);
  assert.equal(await isAlive(writer.pid), false, "the stop ended its log writer");
  assert.deepEqual(writersOf(sb.home), []);
});

Deno.test("under a supervisor, and after the supervisor is killed with SIGKILL, the logs stay bounded", async () => {
  await using sb = await floodSandbox(true);
  const r = await sb.cli(["services", "start", "flood"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const state = await readState(statePaths(sb.home), "flood");
  const [pid, start] = [state!.pid!, state!.pid_start];
  const supervisor = (await supervisorPid(sb))!;
  assert.ok(supervisor && (await isAlive(supervisor)), "a supervisor watches it");
  const logs = statePaths(sb.home).logs;
  assertBound(await sample(logs, 2_000), "supervised");

  process.kill(supervisor, "SIGKILL");
  await until(async () => !(await isAlive(supervisor)), "the supervisor to die");
  const before = flooded(pid);
  assertBound(await sample(logs, 2_000), "after the supervisor's SIGKILL");
  assert.equal(await isAlive(pid, start), true, "the service outlives its supervisor");
  assert.ok(flooded(pid) - before > 4 * BOUND, "and goes on flooding through its writer");

  const stop = await sb.cli(["services", "stop", "flood"]);
  assert.equal(stop.code, 0, stop.stdout + stop.stderr);
  assert.deepEqual(writersOf(sb.home), []);
});

Deno.test("kill -9 of the log writer: the service waits (no SIGPIPE), a new writer goes on, one buffer at most is lost", async () => {
  // A counter, one numbered line per write, so a lost or doubled byte shows.
  await using sb = await supervisedSandbox([{
    name: "count",
    command: () => ({
      binary_path: "/bin/sh",
      args: ["-c", 'i=0; while :; do i=$((i+1)); echo "line $i"; done'],
    }),
    check: "none",
    logs: { max_size: "64MiB", keep: 1 },
  }]);
  const r = await sb.cli(["services", "start", "count"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const paths = statePaths(sb.home);
  const state = await readState(paths, "count");
  const writer = state!.handle!.log_writer as LogWriter;
  const log = logFile(paths, "count");
  await until(() => lstatSync(log).size > 100_000, "the counter to write");
  process.kill(-writer.pid, "SIGKILL"); // the writer and its head
  await until(async () => !(await isAlive(writer.pid)), "the writer to die");
  // The FIFO fills and the service blocks in write(2): its output stops growing.
  await until(async () => {
    const before = flooded(state!.pid!);
    await new Promise((r) => setTimeout(r, 300)); // a window to see it write nothing in
    return flooded(state!.pid!) === before;
  }, "the service to wait on its full FIFO");
  assert.equal(await isAlive(state!.pid!, state!.pid_start), true, "no SIGPIPE: it still runs");
  const size = lstatSync(log).size;

  const next = await respawnLogWriter(paths, "count", log, { max_size: 64 * MAX, keep: 1 });
  await until(() => lstatSync(log).size > size + 200_000, "the new writer to write");
  const stop = await sb.cli(["services", "stop", "count"]);
  assert.equal(stop.code, 0, stop.stdout + stop.stderr);
  await until(async () => !(await isAlive(next.pid)), "the new writer to end with the service");
  // Every number once, in order, from 1 — but for what the killed writer had read and not yet
  // written: at most one `head` buffer (8 KiB, GNU's BUFSIZ), which no writer process can keep
  // from a kill -9 (supervisord's and PM2's lose theirs too).
  const numbers = readFileSync(log, "utf8").split("\n")
    .filter((l) => /^line \d+$/.test(l))
    .map((l) => Number(l.slice(5)));
  assert.equal(numbers[0], 1);
  assert.ok(numbers.length > 20_000, `only ${numbers.length} lines`);
  const jumps = numbers.flatMap((n, i) =>
    i > 0 && n !== numbers[i - 1] + 1 ? [[numbers[i - 1], n]] : []
  );
  assert.ok(
    jumps.length <= 1,
    `lines lost or doubled in ${jumps.length} places: ${JSON.stringify(jumps)}`,
  );
  for (const [a, b] of jumps) {
    assert.ok(
      b > a && (b - a - 1) * "line 99999\n".length <= 8192 + 22,
      `lost lines ${a + 1}..${b - 1}`,
    );
  }
});

Deno.test("the supervisor gives a running service whose log writer was killed a new one", async () => {
  await using sb = await supervisedSandbox([{
    name: "count",
    command: () => ({
      binary_path: "/bin/sh",
      args: ["-c", 'i=0; while :; do i=$((i+1)); echo "line $i"; done'],
    }),
    check: "none",
    logs: { max_size: "64MiB", keep: 1 },
    startup: { restart_on_failure: true },
  }]);
  const r = await sb.cli(["services", "start", "count"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const paths = statePaths(sb.home);
  const first = (await readState(paths, "count"))!;
  const writer = first.handle!.log_writer as LogWriter;
  process.kill(-writer.pid, "SIGKILL");
  // The next supervisor tick (every 10 s) finds it gone and starts another.
  let next: LogWriter | undefined;
  await until(
    async () => {
      next = (await readState(paths, "count"))?.handle?.log_writer as LogWriter | undefined;
      return !!next && next.pid !== writer.pid;
    },
    "a new log writer",
    25_000,
  );
  const now = (await readState(paths, "count"))!;
  assert.equal(now.pid, first.pid, "the service itself was not restarted");
  const size = lstatSync(logFile(paths, "count")).size;
  await until(() => lstatSync(logFile(paths, "count")).size > size + 100_000, "the log to grow");
  assert.match(await sb.log("count"), new RegExp(`log writer ${writer.pid} was gone`));
});
