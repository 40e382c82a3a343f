/**
 * `core/state/log_times.ts`: the time a line starts with, an engine's `<time> <text>` lines, and
 * `readTimedLog` — a time for every line of a log file (its own, else the next known one, else
 * the file's mtime), across rotated files, and a follow that stamps new lines as it reads them.
 */
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { engineLine, lineTime, readTimedLog } from "../../core/state/log_times.ts";
import type { LogLine } from "../../core/types.ts";
import { until } from "../_until.ts";

const T = Date.parse("2026-01-31T10:00:00.000Z");

Deno.test("lineTime() reads an RFC 3339 time with a zone at the start of a line, ours after `--- `", () => {
  assert.equal(lineTime("2026-01-31T10:00:00.000Z web ready"), T);
  assert.equal(lineTime("--- 2026-01-31T10:00:00.000Z starting web"), T);
  assert.equal(lineTime("2026-01-31 11:00:00+01:00 x"), T);
  assert.equal(lineTime("2026-01-31T11:00:00,000+0100"), T);
  assert.equal(lineTime("2026-01-31T10:00:00.123456789Z"), T + 123);
  assert.equal(lineTime("2026-01-31 10:00:00,123 INFO no zone"), undefined);
  assert.equal(lineTime("2026-01-31T10:00:00Zed"), undefined);
  assert.equal(lineTime("web 2026-01-31T10:00:00Z"), undefined);
});

Deno.test("engineLine() splits `docker logs -t` / `kubectl logs --timestamps` lines", () => {
  assert.deepEqual(engineLine("2026-01-31T10:00:00.000000000Z hello world"), {
    line: "hello world",
    time: T,
  });
  assert.deepEqual(engineLine("2026-01-31T10:00:00.000000000Z "), { line: "", time: T });
  assert.deepEqual(engineLine("no time here"), { line: "no time here" });
});

async function collect(it: AsyncIterable<LogLine>, n = Infinity): Promise<LogLine[]> {
  const out: LogLine[] = [];
  for await (const l of it) {
    out.push(l);
    if (out.length >= n) break;
  }
  return out;
}

Deno.test("readTimedLog() gives every line a time, reads rotated files back, and follows with read times", async () => {
  const dir = mkdtempSync(join(tmpdir(), "prov-times-"));
  try {
    const log = join(dir, "a.log");
    writeFileSync(`${log}.2`, "two-a\n");
    writeFileSync(`${log}.1`, "one-a\n2026-01-31T10:00:00.000Z one-b\none-c\n");
    writeFileSync(log, "now-a\r\nnow-b");
    utimesSync(`${log}.2`, (T - 120_000) / 1000, (T - 120_000) / 1000);
    utimesSync(`${log}.1`, (T + 60_000) / 1000, (T + 60_000) / 1000);
    utimesSync(log, (T + 120_000) / 1000, (T + 120_000) / 1000);
    assert.deepEqual(await collect(readTimedLog(log, { lines: 10 })), [
      { line: "two-a", time: T - 120_000 },
      { line: "one-a", time: T },
      { line: "2026-01-31T10:00:00.000Z one-b", time: T },
      { line: "one-c", time: T + 60_000 },
      { line: "now-a", time: T + 120_000 },
      { line: "now-b", time: T + 120_000 },
    ]);
    const last = await collect(readTimedLog(log, { lines: 3 }));
    assert.deepEqual(last.map((l) => l.line), ["one-c", "now-a", "now-b"]);
    const since = await collect(readTimedLog(log, { lines: 10, since: T + 1 }));
    assert.deepEqual(since.map((l) => l.line), ["one-c", "now-a", "now-b"]);

    // Following: the unterminated line waits to be whole; new lines get the time they are read.
    const ac = new AbortController();
    const seen: LogLine[] = [];
    const following = (async () => {
      for await (const l of readTimedLog(log, { lines: 1, follow: true, signal: ac.signal })) {
        seen.push(l);
      }
    })();
    await until(() => seen.length === 1, "the tail");
    assert.deepEqual(seen[0].line, "now-a");
    const before = Date.now();
    appendFileSync(log, "-end\n--- 2026-01-31T10:00:00.000Z ours\n");
    await until(() => seen.length === 3, "the appended lines");
    ac.abort();
    await following;
    assert.equal(seen[1].line, "now-b-end");
    assert.ok(seen[1].time! >= before && seen[1].time! <= Date.now(), "the time it was read");
    assert.deepEqual(seen[2], { line: "--- 2026-01-31T10:00:00.000Z ours", time: T });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
