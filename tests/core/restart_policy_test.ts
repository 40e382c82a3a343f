import assert from "node:assert/strict";
import { nextStreak, restartDelayMs } from "../../core/supervisor/restart_policy.ts";

const policy = { restart_delay: 0.5, restart_delay_max: 30, restart_window: 60 };
/** A "random" source pinned to the middle of its range: no jitter. */
const noJitter = () => 0.5;

Deno.test("restartDelayMs() restarts at once after the first crash of a streak", () => {
  assert.equal(restartDelayMs(1, policy), 0);
  assert.equal(restartDelayMs(1, policy, () => 0.999), 0);
  assert.equal(restartDelayMs(0, policy), 0);
});

Deno.test("restartDelayMs() waits restart_delay before the second restart and doubles after that", () => {
  const delays = [2, 3, 4, 5, 6].map((streak) => restartDelayMs(streak, policy, noJitter));
  assert.deepEqual(delays, [500, 1_000, 2_000, 4_000, 8_000]);
});

Deno.test("restartDelayMs() never waits longer than restart_delay_max", () => {
  const capped = { restart_delay: 0.5, restart_delay_max: 3 };
  assert.equal(restartDelayMs(4, capped, noJitter), 2_000);
  assert.equal(restartDelayMs(5, capped, noJitter), 3_000);
  assert.equal(restartDelayMs(6, capped, noJitter), 3_000);
  assert.equal(restartDelayMs(60, capped, noJitter), 3_000);
  // Even a huge streak (2 ** 1000 overflows to Infinity) stays at the cap.
  assert.equal(restartDelayMs(1_100, capped, noJitter), 3_000);
});

Deno.test("restartDelayMs() jitters by at most ±10 % of the delay", () => {
  assert.equal(restartDelayMs(3, policy, () => 0), 900);
  assert.equal(restartDelayMs(3, policy, () => 1), 1_100);
  for (let i = 0; i < 1_000; i++) {
    const d = restartDelayMs(3, policy);
    assert.ok(d >= 900 && d <= 1_100, `delay ${d} ms outside 900..1100`);
  }
  const capped = { restart_delay: 1, restart_delay_max: 2 };
  for (let i = 0; i < 1_000; i++) {
    const d = restartDelayMs(10, capped);
    assert.ok(d >= 1_800 && d <= 2_200, `capped delay ${d} ms outside 1800..2200`);
  }
});

Deno.test("restartDelayMs() spreads the delays of a fleet instead of restarting in lock step", () => {
  const seen = new Set(Array.from({ length: 50 }, () => restartDelayMs(4, policy)));
  assert.ok(seen.size > 10, `only ${seen.size} distinct delays out of 50`);
});

Deno.test("nextStreak() counts crashes in a row while the service keeps dying young", () => {
  assert.equal(nextStreak(0, 100, policy), 1);
  assert.equal(nextStreak(1, 100, policy), 2);
  assert.equal(nextStreak(2, 59_999, policy), 3);
});

Deno.test("nextStreak() starts a fresh streak after restart_window seconds of uptime", () => {
  assert.equal(nextStreak(3, 60_000, policy), 1);
  assert.equal(nextStreak(7, 3_600_000, policy), 1);
  assert.equal(nextStreak(2, 1_500, { restart_window: 1.5 }), 1);
  assert.equal(nextStreak(2, 1_499, { restart_window: 1.5 }), 3);
});

Deno.test("a reset streak restarts at once again, then backs off from restart_delay", () => {
  let streak = 0;
  const delays: number[] = [];
  for (const uptime of [100, 100, 100, 120_000, 100]) {
    streak = nextStreak(streak, uptime, policy);
    delays.push(restartDelayMs(streak, policy, noJitter));
  }
  assert.deepEqual(delays, [0, 500, 1_000, 0, 500]);
});
