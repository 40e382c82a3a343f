/**
 * `readLogEntries`: every line with the position it ends at, and a resume after a position —
 * in the same file, and across a rotation (the rest of `<log>.1`, then the new file) — as the
 * agent's log stream uses them for `Last-Event-ID`.
 */
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type LogEntry, readLogEntries } from "../../core/state/log_tail.ts";

async function collect(it: AsyncIterable<LogEntry>, n = Infinity): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of it) {
    out.push(e);
    if (out.length >= n) break;
  }
  return out;
}

Deno.test("each line carries its file and the byte offset after it; a resume goes on after it", async () => {
  const dir = mkdtempSync(join(tmpdir(), "prov-tail-"));
  try {
    const log = join(dir, "a.log");
    writeFileSync(log, "one\ntwo\r\nthree\nfour\n");
    const all = await collect(readLogEntries(log, { lines: 10 }));
    const ino = statSync(log).ino;
    assert.deepEqual(all.map((e) => [e.line, e.offset]), [
      ["one", 4],
      ["two", 9],
      ["three", 15],
      ["four", 20],
    ]);
    assert.ok(all.every((e) => e.ino === ino));
    const after = await collect(readLogEntries(log, { after: all[1], follow: true }), 2);
    assert.deepEqual(after.map((e) => e.line), ["three", "four"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("a resume after a line of a rotated log reads the rest of .1, then the new log", async () => {
  const dir = mkdtempSync(join(tmpdir(), "prov-tail-"));
  try {
    const log = join(dir, "a.log");
    writeFileSync(log, "one\ntwo\n");
    const [, two] = await collect(readLogEntries(log, { lines: 10 }));
    appendFileSync(log, "three\n"); // written after the client's last event
    renameSync(log, `${log}.1`); // rotated
    writeFileSync(log, "four\nfive\n");
    const rest = await collect(readLogEntries(log, { after: two, follow: true }), 3);
    assert.deepEqual(rest.map((e) => e.line), ["three", "four", "five"]);
    assert.equal(rest[0].ino, two.ino);
    assert.equal(rest[1].ino, statSync(log).ino);
    // A position older than `.1`: the last lines, as without one.
    const old = await collect(readLogEntries(log, { after: { ino: 1, offset: 3 }, lines: 1 }));
    assert.deepEqual(old.map((e) => e.line), ["five"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
