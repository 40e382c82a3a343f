/**
 * The agent's Prometheus metrics: what `GET /metrics` answers, rendered in the text exposition
 * format 0.0.4. Pure: no HTTP, no I/O, no clock. The handler gathers the service samples, keeps
 * one {@linkcode HealthStats} that the prober feeds, and serves {@linkcode renderMetrics} with
 * {@linkcode METRICS_CONTENT_TYPE}.
 *
 * Families (every one with `# HELP` and `# TYPE`; a family with no series is left out):
 *
 * | family                                          | type      | labels                    |
 * | ----------------------------------------------- | --------- | ------------------------- |
 * | `provisioning_build_info`                       | gauge     | version, runtime (1)      |
 * | `provisioning_supervisor_up`                    | gauge     |                           |
 * | `provisioning_service_up`                       | gauge     | service, mode             |
 * | `provisioning_service_state`                    | gauge     | service, state (one-hot)  |
 * | `provisioning_service_healthy`                  | gauge     | service                   |
 * | `provisioning_service_restarts_total`           | counter   | service                   |
 * | `provisioning_service_start_time_seconds`       | gauge     | service                   |
 * | `provisioning_health_check_duration_seconds`    | histogram | service, check            |
 * | `provisioning_health_checks_total`              | counter   | service, check, result    |
 *
 * Labels hold only bounded identities (names, modes, states, check types): never a time, a PID or
 * an exit code, which would make a new series per restart. Series are sorted by service (then
 * check), by UTF-16 code units, so one input renders to one text.
 *
 * ```ts
 * import { HealthStats, renderMetrics } from "./metrics.ts";
 * const health = new HealthStats();
 * health.observe({ service: "api", check: "http", seconds: 0.012, ok: true });
 * const text = renderMetrics({
 *   version: "0.1.0",
 *   runtime: "deno 2.9.6",
 *   supervisorUp: true,
 *   services: [{ name: "api", mode: "binary", status: "running", healthy: true, restarts: 0 }],
 *   health,
 * });
 * ```
 *
 * @module
 */
import { SERVICE_STATUSES, type ServiceStatus } from "../types.ts";

/** The `Content-Type` of {@linkcode renderMetrics}'s text: Prometheus text format 0.0.4. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * Upper bounds (seconds) of the health-check duration histogram: the Prometheus client defaults,
 * from 5 ms to 10 s, past which a check has timed out anyway. `+Inf` is implied.
 */
export const HEALTH_CHECK_BUCKETS: readonly number[] = Object.freeze([
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
]);

/** Every value of the `state` label of `provisioning_service_state`, in this order. */
export const SERVICE_STATES: readonly ServiceStatus[] = SERVICE_STATUSES;

/** One finished health-check attempt, as the prober saw it. */
export interface CheckObservation {
  /** The service's name. */
  service: string;
  /** The check's type (`http`, `tcp`, `command` ...): bounded, never a URL or a command line. */
  check: string;
  /** How long the attempt took. A negative or non-finite duration (a clock step) counts as 0. */
  seconds: number;
  /** Whether it passed. */
  ok: boolean;
}

/** The cumulative figures of one (service, check) pair, as {@linkcode HealthStats.snapshot} gives. */
export interface HealthSeries {
  service: string;
  check: string;
  /** Cumulative counts, one per {@linkcode HEALTH_CHECK_BUCKETS} bound: observations ≤ bound. */
  buckets: number[];
  /** Every observation (the `+Inf` bucket). */
  count: number;
  /** The sum of the observed durations, in seconds. */
  sum: number;
  successes: number;
  failures: number;
}

interface Tally {
  service: string;
  check: string;
  /** Observations per bucket, NOT cumulative; index `HEALTH_CHECK_BUCKETS.length` is above 10 s. */
  perBucket: number[];
  sum: number;
  successes: number;
  failures: number;
}

/**
 * Health-check results since the agent started, per (service, check type): a duration histogram
 * and success/failure counters. Counters only grow; a restart of the agent resets them, which
 * Prometheus' `rate()` treats as a counter reset.
 */
export class HealthStats {
  #tallies = new Map<string, Tally>();

  /** Count one attempt. */
  observe(o: CheckObservation): void {
    const key = JSON.stringify([o.service, o.check]);
    let t = this.#tallies.get(key);
    if (!t) {
      t = {
        service: o.service,
        check: o.check,
        perBucket: new Array(HEALTH_CHECK_BUCKETS.length + 1).fill(0),
        sum: 0,
        successes: 0,
        failures: 0,
      };
      this.#tallies.set(key, t);
    }
    const seconds = Number.isFinite(o.seconds) && o.seconds > 0 ? o.seconds : 0;
    const i = HEALTH_CHECK_BUCKETS.findIndex((le) => seconds <= le);
    t.perBucket[i === -1 ? HEALTH_CHECK_BUCKETS.length : i]++;
    t.sum += seconds;
    if (o.ok) t.successes++;
    else t.failures++;
  }

  /** A copy of the figures, sorted by service then check, buckets made cumulative. */
  snapshot(): HealthSeries[] {
    return [...this.#tallies.values()]
      .sort((a, b) => compare(a.service, b.service) || compare(a.check, b.check))
      .map((t) => {
        let running = 0;
        const cumulative = t.perBucket.map((n) => (running += n));
        return {
          service: t.service,
          check: t.check,
          buckets: cumulative.slice(0, HEALTH_CHECK_BUCKETS.length),
          count: cumulative[HEALTH_CHECK_BUCKETS.length],
          sum: t.sum,
          successes: t.successes,
          failures: t.failures,
        };
      });
  }
}

/** One managed service, as the agent reports it. */
export interface ServiceSample {
  name: string;
  /** Its deployment mode (`binary`, `docker` ...). */
  mode: string;
  status: ServiceStatus;
  /** The liveness verdict; `null` when unknown (no check, or none has run yet). */
  healthy: boolean | null;
  /** Restarts by the supervisor since the service was started. */
  restarts: number;
  /** When the current process started (ISO 8601); exported only while it runs. */
  started_at?: string;
}

/** What {@linkcode renderMetrics} renders. */
export interface MetricsInput {
  /** This build's version, for `provisioning_build_info`. */
  version: string;
  /** The JavaScript runtime and its version (`deno 2.9.6`), for `provisioning_build_info`. */
  runtime: string;
  /** Whether the supervisor answers. */
  supervisorUp: boolean;
  /** The services, in any order; names are unique. */
  services: ServiceSample[];
  health: HealthStats;
}

/**
 * The metrics as Prometheus text format 0.0.4, ending with a newline.
 *
 * `provisioning_service_healthy` is left out for a service whose health is unknown, rather than
 * exported as `NaN`: a missing series is how Prometheus says "no value" (`absent()`, `unless`,
 * and alerts on `== 0` stay correct), whereas one `NaN` turns every `sum()`/`avg()` over the
 * family into `NaN`, and NaN is also what Prometheus uses internally as its staleness marker.
 *
 * @throws {RangeError} when two services share a name (their series would collide).
 */
export function renderMetrics(o: MetricsInput): string {
  const services = [...o.services].sort((a, b) => compare(a.name, b.name));
  for (let i = 1; i < services.length; i++) {
    if (services[i].name === services[i - 1].name) {
      throw new RangeError(`Two services are named "${services[i].name}"`);
    }
  }
  const out: string[] = [];
  const family = (name: string, type: string, help: string, samples: string[]) => {
    if (samples.length === 0) return;
    out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`, ...samples);
  };

  family(
    "provisioning_build_info",
    "gauge",
    "The provisioning agent's build: always 1, the version and runtime are its labels.",
    [sample("provisioning_build_info", { version: o.version, runtime: o.runtime }, 1)],
  );
  family(
    "provisioning_supervisor_up",
    "gauge",
    "Whether the supervisor answers (1) or not (0).",
    [sample("provisioning_supervisor_up", {}, o.supervisorUp ? 1 : 0)],
  );
  family(
    "provisioning_service_up",
    "gauge",
    "Whether the service is running (1) or not (0).",
    services.map((s) =>
      sample(
        "provisioning_service_up",
        { service: s.name, mode: s.mode },
        s.status === "running" ? 1 : 0,
      )
    ),
  );
  family(
    "provisioning_service_state",
    "gauge",
    "The service's status: 1 for the current state, 0 for the others.",
    services.flatMap((s) =>
      SERVICE_STATES.map((state) =>
        sample("provisioning_service_state", { service: s.name, state }, s.status === state ? 1 : 0)
      )
    ),
  );
  family(
    "provisioning_service_healthy",
    "gauge",
    "Whether the service's health check passes (1) or fails (0); absent while unknown.",
    services.filter((s) => s.healthy !== null && s.healthy !== undefined).map((s) =>
      sample("provisioning_service_healthy", { service: s.name }, s.healthy ? 1 : 0)
    ),
  );
  family(
    "provisioning_service_restarts_total",
    "counter",
    "Restarts of the service by the supervisor after a crash.",
    services.map((s) =>
      sample("provisioning_service_restarts_total", { service: s.name }, s.restarts)
    ),
  );
  family(
    "provisioning_service_start_time_seconds",
    "gauge",
    "When the running service's current process started, in seconds since the Unix epoch.",
    services.flatMap((s) => {
      if (s.status !== "running" || !s.started_at) return [];
      const ms = Date.parse(s.started_at);
      if (!Number.isFinite(ms)) return [];
      return [sample("provisioning_service_start_time_seconds", { service: s.name }, ms / 1000)];
    }),
  );

  const health = o.health.snapshot();
  const histogram = "provisioning_health_check_duration_seconds";
  family(
    histogram,
    "histogram",
    "How long health-check attempts took, in seconds.",
    health.flatMap((h) => {
      const labels = { service: h.service, check: h.check };
      return [
        ...HEALTH_CHECK_BUCKETS.map((le, i) =>
          sample(`${histogram}_bucket`, { ...labels, le: formatNumber(le) }, h.buckets[i])
        ),
        sample(`${histogram}_bucket`, { ...labels, le: "+Inf" }, h.count),
        sample(`${histogram}_sum`, labels, h.sum),
        sample(`${histogram}_count`, labels, h.count),
      ];
    }),
  );
  family(
    "provisioning_health_checks_total",
    "counter",
    "Health-check attempts, by result (success or failure).",
    health.flatMap((h) => [
      sample(
        "provisioning_health_checks_total",
        { service: h.service, check: h.check, result: "success" },
        h.successes,
      ),
      sample(
        "provisioning_health_checks_total",
        { service: h.service, check: h.check, result: "failure" },
        h.failures,
      ),
    ]),
  );
  return out.join("\n") + "\n";
}

/** `name{k="v",...} value`. */
function sample(name: string, labels: Record<string, string>, value: number): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  return `${name}${pairs.length ? `{${pairs.join(",")}}` : ""} ${formatNumber(value)}`;
}

/** A label value as the format wants it: backslash, double quote and line feed escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

/** HELP text escapes only backslash and line feed. */
function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}

/** A sample value or `le` bound: Go's float syntax, with `+Inf`, `-Inf` and `NaN` spelled so. */
function formatNumber(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}

/** Code-unit order, independent of the locale. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
