/**
 * The agent's Prometheus metrics, read back by a Prometheus text-format parser from npm
 * (`parse-prometheus-text-format`, a port of the Python client's parser): every family with its
 * type, cumulative histograms, label escaping, one-hot states, and nothing that should not be in
 * a label.
 *
 * The parser groups a histogram's samples into one object per family and loses the `_sum` and
 * `_count` of labelled histograms (its issue #13), so histogram samples are read line by line
 * through the same parser and grouped here by (service, check).
 *
 * @module
 */
import assert from "node:assert/strict";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import {
  HEALTH_CHECK_BUCKETS,
  HealthStats,
  METRICS_CONTENT_TYPE,
  type MetricsInput,
  renderMetrics,
  SERVICE_STATES,
  type ServiceSample,
} from "../../core/agent/metrics.ts";

/** What the parser returns for one family. */
interface Family {
  name: string;
  help: string;
  type: string;
  metrics: { value?: string; labels?: Record<string, string>; timestamp_ms?: string }[];
}
const parse = parsePrometheusTextFormat as unknown as (text: string) => Family[];

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Every sample line, each parsed by the parser on its own (no family grouping). */
function samples(text: string): Sample[] {
  return text.split("\n").filter((l) => l !== "" && !l.startsWith("#")).map((line) => {
    const [family] = parse(`${line}\n`);
    assert.equal(family.metrics.length, 1, line);
    const [m] = family.metrics;
    assert.equal(m.timestamp_ms, undefined, `no timestamps: ${line}`);
    return { name: family.name, labels: m.labels ?? {}, value: Number(m.value) };
  });
}

const NASTY = 'a"b\\c\nd'; // a"b\c, a line feed, d
const BUCKETS = [...HEALTH_CHECK_BUCKETS.map(String), "+Inf"];

function input(over: Partial<MetricsInput> = {}): MetricsInput {
  const health = new HealthStats();
  health.observe({ service: "api", check: "http", seconds: 0.003, ok: true });
  health.observe({ service: "api", check: "http", seconds: 0.04, ok: true });
  health.observe({ service: "api", check: "http", seconds: 0.7, ok: false });
  health.observe({ service: "api", check: "http", seconds: 30, ok: false });
  health.observe({ service: NASTY, check: "tcp", seconds: 0.01, ok: true });
  const services: ServiceSample[] = [
    { name: "web", mode: "docker", status: "backoff", healthy: null, restarts: 4 },
    {
      name: "api",
      mode: "binary",
      status: "running",
      healthy: true,
      restarts: 1,
      started_at: "2026-03-01T12:00:00.500Z",
    },
    {
      name: NASTY,
      mode: "shell",
      status: "stopped",
      healthy: false,
      restarts: 0,
      started_at: "2026-03-01T11:00:00Z",
    },
    { name: "db", mode: "docker_compose", status: "failed", healthy: null, restarts: 7 },
  ];
  return {
    version: "1.2.3",
    runtime: "deno 2.9.6",
    supervisorUp: true,
    services,
    health,
    ...over,
  };
}

const EXPECTED_TYPES: Record<string, string> = {
  provisioning_build_info: "GAUGE",
  provisioning_supervisor_up: "GAUGE",
  provisioning_service_up: "GAUGE",
  provisioning_service_state: "GAUGE",
  provisioning_service_healthy: "GAUGE",
  provisioning_service_restarts_total: "COUNTER",
  provisioning_service_start_time_seconds: "GAUGE",
  provisioning_health_check_duration_seconds: "HISTOGRAM",
  provisioning_health_checks_total: "COUNTER",
};

Deno.test("renderMetrics() gives every family once, with its HELP and TYPE, in Prometheus names", () => {
  const text = renderMetrics(input());
  assert.ok(text.endsWith("\n"));
  const families = parse(text);
  assert.deepEqual(families.map((f) => f.name), Object.keys(EXPECTED_TYPES));
  for (const f of families) {
    assert.equal(f.type, EXPECTED_TYPES[f.name], f.name);
    assert.notEqual(f.help, "", `${f.name} has a HELP`);
    assert.match(f.name, /^provisioning_[a-z_]+$/);
    assert.equal(f.name.endsWith("_total"), f.type === "COUNTER", `${f.name}: _total iff counter`);
  }
  // One HELP and one TYPE line per family, the TYPE before its samples.
  for (const name of Object.keys(EXPECTED_TYPES)) {
    const lines = text.split("\n");
    assert.equal(lines.filter((l) => l.startsWith(`# HELP ${name} `)).length, 1, name);
    const type = lines.findIndex((l) => l.startsWith(`# TYPE ${name} `));
    const first = lines.findIndex((l) => l.startsWith(name) && !l.startsWith("#"));
    assert.ok(type !== -1 && type < first, name);
  }
  assert.equal(METRICS_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
});

Deno.test("renderMetrics() values: build info, supervisor, up, healthy, restarts, start time", () => {
  const all = samples(renderMetrics(input()));
  const of = (name: string) =>
    all.filter((s) => s.name === name).map((s) => [s.labels.service, s.value]);
  const [build] = all.filter((s) => s.name === "provisioning_build_info");
  assert.deepEqual(build, {
    name: "provisioning_build_info",
    labels: { version: "1.2.3", runtime: "deno 2.9.6" },
    value: 1,
  });
  assert.deepEqual(of("provisioning_supervisor_up"), [[undefined, 1]]);
  assert.deepEqual(
    all.filter((s) => s.name === "provisioning_service_up").map((s) => [s.labels, s.value]),
    [
      [{ service: NASTY, mode: "shell" }, 0],
      [{ service: "api", mode: "binary" }, 1],
      [{ service: "db", mode: "docker_compose" }, 0],
      [{ service: "web", mode: "docker" }, 0],
    ],
  );
  // Unknown health is no series at all, not NaN.
  assert.deepEqual(of("provisioning_service_healthy"), [[NASTY, 0], ["api", 1]]);
  assert.deepEqual(of("provisioning_service_restarts_total"), [
    [NASTY, 0],
    ["api", 1],
    ["db", 7],
    ["web", 4],
  ]);
  // Only the running one with a start time; the stopped one's old started_at is not exported.
  assert.deepEqual(of("provisioning_service_start_time_seconds"), [
    ["api", Date.parse("2026-03-01T12:00:00.500Z") / 1000],
  ]);

  const down = samples(renderMetrics(input({ supervisorUp: false })));
  assert.deepEqual(
    down.filter((s) => s.name === "provisioning_supervisor_up").map((s) => s.value),
    [0],
  );
});

Deno.test("renderMetrics() state series are one-hot over all six states for every service", () => {
  const state = samples(renderMetrics(input())).filter((s) =>
    s.name === "provisioning_service_state"
  );
  assert.deepEqual([...SERVICE_STATES].sort(), [
    "backoff",
    "failed",
    "running",
    "starting",
    "stopped",
    "stopping",
  ]);
  const expected: Record<string, string> = {
    [NASTY]: "stopped",
    api: "running",
    db: "failed",
    web: "backoff",
  };
  for (const [service, current] of Object.entries(expected)) {
    const mine = state.filter((s) => s.labels.service === service);
    assert.deepEqual(mine.map((s) => s.labels.state).sort(), [...SERVICE_STATES].sort(), service);
    assert.deepEqual(mine.filter((s) => s.value === 1).map((s) => s.labels.state), [current]);
    assert.equal(mine.reduce((n, s) => n + s.value, 0), 1, service);
    assert.ok(mine.every((s) => s.value === 0 || s.value === 1));
  }
  assert.equal(state.length, 4 * SERVICE_STATES.length);
});

Deno.test("renderMetrics() health histograms are cumulative, +Inf equals _count", () => {
  const health = new HealthStats();
  // Spread over many buckets, one above the last bound, and an exact bound (le is inclusive).
  const durations = [0.001, 0.005, 0.02, 0.02, 0.3, 0.3, 0.3, 0.9, 4, 11];
  durations.forEach((seconds, i) =>
    health.observe({ service: "api", check: "http", seconds, ok: i % 3 !== 0 })
  );
  health.observe({ service: "api", check: "command", seconds: 0.2, ok: true });
  const text = renderMetrics(input({ health }));
  const all = samples(text);
  const histogram = "provisioning_health_check_duration_seconds";

  const of = (check: string, suffix: string) =>
    all.filter((s) =>
      s.name === `${histogram}_${suffix}` && s.labels.service === "api" && s.labels.check === check
    );
  const buckets = of("http", "bucket");
  assert.deepEqual(buckets.map((b) => b.labels.le), BUCKETS);
  // Cumulative: each bucket counts every observation ≤ its bound (a per-bucket count would not).
  const expected = [...HEALTH_CHECK_BUCKETS, Infinity].map((le) =>
    durations.filter((d) => d <= le).length
  );
  assert.deepEqual(buckets.map((b) => b.value), expected);
  assert.deepEqual(expected, [2, 2, 4, 4, 4, 4, 7, 8, 8, 9, 9, 10]); // the fixture is what it says
  for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i].value >= buckets[i - 1].value);
  const [count] = of("http", "count");
  const [sum] = of("http", "sum");
  assert.equal(count.value, durations.length);
  assert.equal(buckets.at(-1)!.value, count.value);
  assert.ok(Math.abs(sum.value - durations.reduce((a, b) => a + b, 0)) < 1e-9);
  // The other pair has its own series.
  assert.deepEqual(of("command", "bucket").map((b) => b.value), [
    0,
    0,
    0,
    0,
    0,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
  ]);
  assert.deepEqual(of("command", "count").map((b) => b.value), [1]);

  const results = all.filter((s) => s.name === "provisioning_health_checks_total");
  assert.deepEqual(
    results.map((s) => [s.labels.service, s.labels.check, s.labels.result, s.value]),
    [
      ["api", "command", "success", 1],
      ["api", "command", "failure", 0],
      ["api", "http", "success", 6],
      ["api", "http", "failure", 4],
    ],
  );
  // The whole document parses with the histogram typed as one.
  const family = parse(text).find((f) => f.name === histogram)!;
  assert.equal(family.type, "HISTOGRAM");
});

Deno.test("HealthStats counts a negative or non-finite duration as 0 s", () => {
  const health = new HealthStats();
  for (const seconds of [-1, NaN, Infinity]) {
    health.observe({ service: "api", check: "http", seconds, ok: true });
  }
  const [h] = health.snapshot();
  assert.equal(h.count, 3);
  assert.equal(h.sum, 0);
  assert.deepEqual(h.buckets, HEALTH_CHECK_BUCKETS.map(() => 3));
  const text = renderMetrics(input({ health }));
  assert.doesNotMatch(text, /NaN|Inf\b(?!")/);
});

Deno.test("renderMetrics() escapes label values: backslash, double quote, line feed", () => {
  const text = renderMetrics(input());
  // The raw text: one line per sample, the value escaped.
  assert.ok(text.includes('provisioning_service_up{service="a\\"b\\\\c\\nd",mode="shell"} 0\n'));
  assert.ok(!text.split("\n").some((l) => l === "d" || l.startsWith('d"')), "no raw line feed");
  // Read back by the parser, every series of the nasty service has its name intact.
  const nasty = samples(text).filter((s) => s.labels.service === NASTY);
  assert.deepEqual(
    [...new Set(nasty.map((s) => s.name))],
    [
      "provisioning_service_up",
      "provisioning_service_state",
      "provisioning_service_healthy",
      "provisioning_service_restarts_total",
      "provisioning_health_check_duration_seconds_bucket",
      "provisioning_health_check_duration_seconds_sum",
      "provisioning_health_check_duration_seconds_count",
      "provisioning_health_checks_total",
    ],
  );
  // Other awkward values survive too, in every label that takes outside text.
  for (const odd of ["ends\\", "lit\\n", "x}y {z=", 'q,"w"=', '\\\\"\\n', "ünï ☃"]) {
    const health = new HealthStats();
    health.observe({ service: odd, check: odd, seconds: 0.1, ok: true });
    const all = samples(renderMetrics({
      version: odd,
      runtime: odd,
      supervisorUp: true,
      services: [{ name: odd, mode: odd, status: "running", healthy: true, restarts: 0 }],
      health,
    }));
    for (const s of all) {
      for (const [k, v] of Object.entries(s.labels)) {
        if (k !== "le" && k !== "state" && k !== "result") assert.equal(v, odd, `${s.name} ${k}`);
      }
    }
  }
});

Deno.test("renderMetrics() labels hold no time, PID or exit code", () => {
  // A caller may hand over a whole state record: its extra fields must not leak.
  const base = input();
  const services = base.services.map((s) => ({
    ...s,
    pid: 424242,
    exit: { code: 137, signal: "SIGKILL" },
    since: "2026-03-01T12:34:56Z",
    reason: "exit code 137",
  }));
  const text = renderMetrics({ ...base, services });
  assert.doesNotMatch(text, /424242|137|SIGKILL|12:34:56|exit/i);
  const allowed: Record<string, (v: string) => boolean> = {
    version: (v) => v === "1.2.3",
    runtime: (v) => v === "deno 2.9.6",
    service: (v) => ["api", "db", "web", NASTY].includes(v),
    mode: (v) => ["binary", "docker", "docker_compose", "shell"].includes(v),
    state: (v) => (SERVICE_STATES as readonly string[]).includes(v),
    check: (v) => ["http", "tcp"].includes(v),
    result: (v) => v === "success" || v === "failure",
    le: (v) => BUCKETS.includes(v),
  };
  for (const s of samples(text)) {
    for (const [k, v] of Object.entries(s.labels)) {
      assert.ok(allowed[k], `unexpected label ${k} on ${s.name}`);
      assert.ok(allowed[k](v), `${s.name}{${k}=${JSON.stringify(v)}}`);
      assert.doesNotMatch(v, /\d{4}-\d\d-\d\dT|^\d{9,}$/, "no time in a label");
    }
  }
});

Deno.test("renderMetrics() is deterministic: the input's order does not matter", () => {
  const a = input();
  const reversedHealth = new HealthStats();
  // The same observations, pairs first seen in the other order.
  reversedHealth.observe({ service: NASTY, check: "tcp", seconds: 0.01, ok: true });
  for (const [seconds, ok] of [[0.003, true], [0.04, true], [0.7, false], [30, false]] as const) {
    reversedHealth.observe({ service: "api", check: "http", seconds, ok });
  }
  const b = input({ services: [...a.services].reverse(), health: reversedHealth });
  const text = renderMetrics(a);
  assert.equal(renderMetrics(b), text);
  assert.equal(renderMetrics(a), text, "rendering does not consume the stats");
  const up = samples(text).filter((s) => s.name === "provisioning_service_up");
  const names = up.map((s) => s.labels.service);
  assert.deepEqual(names, [...names].sort());
});

Deno.test("renderMetrics() with no services and no checks gives build info and supervisor only", () => {
  const text = renderMetrics(input({ services: [], health: new HealthStats() }));
  assert.deepEqual(parse(text).map((f) => f.name), [
    "provisioning_build_info",
    "provisioning_supervisor_up",
  ]);
});

Deno.test("renderMetrics() refuses two services of one name", () => {
  const base = input();
  assert.throws(
    () => renderMetrics({ ...base, services: [...base.services, { ...base.services[0] }] }),
    (e: unknown) => e instanceof RangeError && /web/.test(e.message),
  );
});
