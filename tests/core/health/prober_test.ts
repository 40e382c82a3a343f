import assert from "node:assert/strict";
import { createServer } from "node:http";
import http from "../../../checks/http.ts";
import { probeOnce, type ProbeTarget, waitHealthy, watch } from "../../../core/health/prober.ts";
import { beat } from "../../../core/sleep.ts";
import type { Check, CheckResult, HealthCheckConfig } from "../../../core/types.ts";
import { DemoService } from "../../examples/_demo_service.ts";
import { close, freePort, listen } from "../../checks/_helpers.ts";

const health = (over: Partial<HealthCheckConfig> = {}): HealthCheckConfig => ({
  type: "http",
  interval: 10,
  retries: 3,
  timeout: 5,
  ...over,
});

const httpTarget = (port: number, over: Partial<HealthCheckConfig> = {}): ProbeTarget => ({
  check: http,
  cfg: http.config.parse({ endpoint: `http://127.0.0.1:${port}/health` }),
  health: health(over),
  service: "demo",
});

/** A plugin check that misbehaves: ignores its signal and never settles. */
const hangingCheck: Check<unknown> = {
  type: "hang",
  config: http.config,
  run: () => new Promise<CheckResult>(() => {}),
};

Deno.test("probeOnce runs one attempt of the check", async () => {
  const server = createServer((_req, res) => res.writeHead(200).end());
  const port = await listen(server);
  try {
    const result = await probeOnce(httpTarget(port));
    assert.equal(result.healthy, true);
    assert.equal(result.message, "HTTP status 200 matches expected");
  } finally {
    await close(server);
  }
});

Deno.test("probeOnce bounds a check that ignores its signal by health.timeout", async () => {
  const target = { ...httpTarget(1, { timeout: 0.1 }), check: hangingCheck };
  const started = performance.now();
  const result = await probeOnce(target);
  assert.equal(result.healthy, false);
  assert.equal(result.message, "Timed out after 100 ms");
  assert.ok(performance.now() - started < 5_000);
});

Deno.test("probeOnce turns a check that throws into an unhealthy result", async () => {
  const throwing: Check<unknown> = {
    type: "broken",
    config: http.config,
    run: () => Promise.reject(new Error("boom")),
  };
  const result = await probeOnce({ ...httpTarget(1), check: throwing });
  assert.deepEqual([result.healthy, result.message], [false, 'Check "broken" failed: boom']);
});

Deno.test("waitHealthy sees a starting demo service become healthy", async () => {
  await using service = new DemoService(["--name", "api", "--port", "0", "--ready-after", "1000"]);
  const port = await service.port();
  const seen: CheckResult[] = [];
  const outcome = await waitHealthy(httpTarget(port), {
    deadlineMs: 20_000,
    isAlive: service.alive,
    onAttempt: (r) => seen.push(r),
  });
  assert.equal(outcome.healthy, true, outcome.result.message);
  assert.equal(outcome.result.message, "HTTP status 200 matches expected");
  assert.ok(outcome.attempts >= 2, `expected 503s before readiness, got ${outcome.attempts}`);
  assert.equal(seen.length, outcome.attempts);
  assert.equal(seen[0].message, "HTTP status 503 (expected 200)");
  assert.ok(service.lines.some((line) => line.endsWith(" api ready")));
});

Deno.test("waitHealthy stops promptly when the process dies before it is healthy", async () => {
  await using service = new DemoService([
    "--name",
    "crashy",
    "--port",
    "0",
    "--ready-after",
    "60000",
    "--exit-after",
    "300",
    "--exit-code",
    "3",
  ]);
  const port = await service.port();
  const outcome = await waitHealthy(httpTarget(port), {
    deadlineMs: 60_000,
    isAlive: service.alive,
  });
  assert.equal(outcome.healthy, false);
  assert.match(outcome.result.message, /^Process exited before it became healthy/);
  assert.ok(outcome.elapsedMs < 30_000, `took ${outcome.elapsedMs} ms`);
  assert.equal((await service.status).code, 3);
});

Deno.test("waitHealthy gives up at the deadline with the last result", async () => {
  const port = await freePort();
  const outcome = await waitHealthy(httpTarget(port, { interval: 0.1 }), { deadlineMs: 400 });
  assert.equal(outcome.healthy, false);
  assert.equal(outcome.result.message, `Connection refused: 127.0.0.1:${port}`);
  assert.ok(outcome.attempts >= 2);
  assert.ok(outcome.elapsedMs < 10_000);
});

Deno.test("waitHealthy backs off instead of polling at a fixed fast rate", async () => {
  const port = await freePort();
  const outcome = await waitHealthy(httpTarget(port, { interval: 1 }), { deadlineMs: 1_500 });
  // 20 ms doubling to 1 s fits about 7 attempts in 1.5 s; a fixed 20 ms pace would make ~75.
  assert.ok(outcome.attempts >= 3 && outcome.attempts <= 20, `${outcome.attempts} attempts`);
});

Deno.test("waitHealthy stops when its signal aborts", async () => {
  const port = await freePort();
  const controller = new AbortController();
  const outcome = await waitHealthy(httpTarget(port), {
    deadlineMs: 60_000,
    signal: controller.signal,
    onAttempt: (_r, n) => n === 2 && controller.abort(),
  });
  assert.equal(outcome.healthy, false);
  assert.equal(outcome.attempts, 2);
  assert.ok(outcome.elapsedMs < 30_000);
});

Deno.test("watch turns unhealthy after health.retries failures and recovers on success", async () => {
  let status = 200;
  const server = createServer((_req, res) => res.writeHead(status).end());
  const port = await listen(server);
  const controller = new AbortController();
  const states: string[] = [];
  const guard = setTimeout(() => controller.abort(), 20_000);
  try {
    await watch(httpTarget(port, { interval: 0.02, retries: 2 }), {
      signal: controller.signal,
      onResult: (result, state) => {
        states.push(`${result.healthy}/${state.consecutiveFailures}/${state.unhealthy}`);
        if (states.length === 1) status = 503; // healthy once, then fail
        if (state.unhealthy) status = 200; // recover once declared unhealthy
        if (states.length > 1 && result.healthy) controller.abort();
      },
    });
  } finally {
    clearTimeout(guard);
    await close(server);
  }
  assert.deepEqual(states, ["true/0/false", "false/1/false", "false/2/true", "true/0/false"]);
});

Deno.test("watch returns at once when its signal is already aborted", async () => {
  const controller = new AbortController();
  controller.abort();
  let calls = 0;
  await watch(httpTarget(1), { signal: controller.signal, onResult: () => calls++ });
  assert.equal(calls, 0);
});

Deno.test("beat wakes every waiter of one period together, on its multiples", async () => {
  const woke: number[] = [];
  await beat(100); // from the start of a period ...
  const waiters = [0, 1, 2].map(async (i) => {
    if (i) await new Promise((r) => setTimeout(r, i * 7)); // ... join at different moments
    await beat(100);
    woke.push(performance.now());
  });
  await Promise.all(waiters);
  // One timer woke all three: the same turn of the event loop, within a millisecond (three
  // timers of their own would be 7 ms apart).
  assert.ok(Math.max(...woke) - Math.min(...woke) < 1, `${woke.map((t) => t.toFixed(2))}`);
});

Deno.test("beat resolves at once on abort and leaves no timer behind", async () => {
  const controller = new AbortController();
  const started = performance.now();
  const waiting = beat(60_000, controller.signal);
  controller.abort();
  await waiting;
  assert.ok(performance.now() - started < 1_000);
  // Deno's sanitizer fails this test if the 60 s timer were still pending.
});

Deno.test("watches with the same interval probe on the same beat", async () => {
  const server = createServer((_req, res) => res.writeHead(200).end());
  const port = await listen(server);
  const controller = new AbortController();
  const times: number[][] = [[], []];
  try {
    await Promise.all([0, 1].map(async (i) => {
      await new Promise((r) => setTimeout(r, i * 120)); // start 120 ms apart
      await watch(httpTarget(port, { interval: 0.3 }), {
        signal: controller.signal,
        onResult: () => {
          times[i].push(performance.now());
          if (times[0].length >= 3 && times[1].length >= 3) controller.abort();
        },
      });
    }));
  } finally {
    await close(server);
  }
  // After their first (immediate) attempts, both probe on the shared 300 ms beat (periods of
  // their own would keep them 120 ms apart).
  for (const k of [1, 2]) {
    const [a, b] = [times[0].at(-k)!, times[1].at(-k)!];
    assert.ok(Math.abs(a - b) < 50, `attempt -${k}: ${JSON.stringify(times)}`);
  }
});
