/**
 * `core/state/log_merge.ts`: several services' lines as one — merged by time with each service's
 * own order kept (time-less services after), and followed as they come, a failing source told
 * apart from the others.
 */
import assert from "node:assert/strict";
import { mergeLive, mergeLogs } from "../../core/state/log_merge.ts";
import type { LogLine } from "../../core/types.ts";

Deno.test("mergeLogs() orders by time, keeps each service's order, ties in registry order, time-less services last", () => {
  const merged = mergeLogs([
    { service: "a", lines: [{ line: "a1", time: 1 }, { line: "a2" }, { line: "a3", time: 5 }] },
    { service: "none", lines: [{ line: "n1" }, { line: "n2" }] },
    { service: "b", lines: [{ line: "b1", time: 1 }, { line: "b2", time: 3 }] },
    { service: "c", lines: [{ line: "c1", time: 9 }, { line: "c0", time: 0 }] },
  ]);
  assert.deepEqual(merged.map((l) => l.line), [
    "a1",
    "a2",
    "b1",
    "b2",
    "a3",
    "c1",
    "c0",
    "n1",
    "n2",
  ]);
  assert.deepEqual(merged[0], { service: "a", line: "a1", time: 1 });
});

async function* lines(...items: (LogLine | Error)[]): AsyncIterable<LogLine> {
  for (const item of items) {
    await Promise.resolve();
    if (item instanceof Error) throw item;
    yield item;
  }
}

Deno.test("mergeLive() yields every source's lines until all end; a failing source is told, the others go on", async () => {
  const failed: string[] = [];
  const out = [];
  for await (
    const l of mergeLive([
      { service: "a", lines: lines({ line: "a1" }, { line: "a2" }) },
      { service: "bad", lines: lines({ line: "x1" }, new Error("gone")) },
      { service: "b", lines: lines({ line: "b1" }) },
    ], { onError: (s, e) => failed.push(`${s}: ${(e as Error).message}`) })
  ) out.push(`${l.service}:${l.line}`);
  assert.deepEqual(out.sort(), ["a:a1", "a:a2", "b:b1", "bad:x1"]);
  assert.deepEqual(failed, ["bad: gone"]);
  await assert.rejects(async () => {
    for await (const _ of mergeLive([{ service: "bad", lines: lines(new Error("gone")) }])) {
      /* none */
    }
  }, /gone/);
});

Deno.test("mergeLive() ends when the signal aborts, with sources that take the signal", async () => {
  const ac = new AbortController();
  async function* forever(signal: AbortSignal): AsyncIterable<LogLine> {
    yield { line: "first" };
    await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
  }
  const seen: string[] = [];
  for await (
    const l of mergeLive([{ service: "a", lines: forever(ac.signal) }], { signal: ac.signal })
  ) {
    seen.push(l.line);
    ac.abort();
  }
  assert.deepEqual(seen, ["first"]);
});
