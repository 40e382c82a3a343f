/**
 * The `dns` health check: one query to a given DNS server (UDP), healthy when it answers the
 * name — and, with `expected`, when one of the answers is that value.
 *
 * ```toml
 * [services.coredns.health_check]
 * type = "dns"
 *
 * [services.coredns.health_check.dns]
 * name = "example.test"     # the name to resolve
 * server = "127.0.0.1"      # the server to ask (default 127.0.0.1)
 * port = 5353               # default 53
 * record = "A"              # A | AAAA | CNAME | MX | NS | PTR | SRV | TXT (default A)
 * expected = "127.0.0.42"   # optional: an answer that must be among the answers
 * ```
 *
 * The query goes to that server only (a `node:dns` `Resolver` with its own server list), so
 * the check sees the service, not the system's resolver.
 *
 * @module
 */
import { Resolver } from "node:dns";
import { isIP } from "node:net";
import { z } from "zod";
import { defineCheck } from "../core/plugins/api.ts";
import type { CheckContext, CheckResult } from "../core/types.ts";

const RECORDS = ["A", "AAAA", "CNAME", "MX", "NS", "PTR", "SRV", "TXT"] as const;

const config = z.strictObject({
  /** The name to resolve. */
  name: z.string().min(1, "Must name a host to resolve"),
  /** The DNS server's address (an IP address: the check must not depend on DNS to find it). */
  server: z.string().refine((s) => isIP(s) !== 0, "Must be an IPv4 or IPv6 address")
    .default("127.0.0.1"),
  port: z.number().int().min(1).max(65535).default(53),
  record: z.enum(RECORDS).default("A"),
  /** An answer that must be present (an address, a CNAME target, an MX exchange, a TXT string ...). */
  expected: z.string().min(1).optional(),
});

/** `[services.X.health_check.dns]` after defaults. */
export type DnsCheckConfig = z.output<typeof config>;

/** The answers of one query, as strings. */
function answers(records: unknown[]): string[] {
  return records.map((r) => {
    if (typeof r === "string") return r;
    if (Array.isArray(r)) return r.join(""); // TXT: chunks of one record
    const o = r as Record<string, unknown>;
    return String(o.exchange ?? o.name ?? o.address ?? JSON.stringify(r));
  });
}

function query(
  resolver: Resolver,
  name: string,
  record: string,
): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    resolver.resolve(name, record, (err: Error | null, records: unknown) => {
      if (err) reject(err);
      else resolve(records as unknown[]);
    });
  });
}

async function run(cfg: DnsCheckConfig, ctx: CheckContext): Promise<CheckResult> {
  const start = performance.now();
  const server = isIP(cfg.server) === 6
    ? `[${cfg.server}]:${cfg.port}`
    : `${cfg.server}:${cfg.port}`;
  const what = `DNS ${cfg.record} ${cfg.name} @${server}`;
  const done = (healthy: boolean, detail: string): CheckResult => ({
    healthy,
    message: healthy ? `${what} answered ${detail}` : `${what} failed: ${detail}`,
    durationMs: Math.round((performance.now() - start) * 100) / 100,
  });
  if (ctx.signal.aborted) return done(false, "cancelled");
  const resolver = new Resolver({ timeout: Math.max(1, ctx.timeoutMs), tries: 1 });
  resolver.setServers([server]);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    resolver.cancel();
  }, ctx.timeoutMs);
  const onAbort = () => resolver.cancel();
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  try {
    const got = answers(await query(resolver, cfg.name, cfg.record));
    if (got.length === 0) return done(false, "no answer");
    const list = got.join(", ");
    if (cfg.expected !== undefined && !got.includes(cfg.expected)) {
      return done(false, `expected ${cfg.expected}, got ${list}`);
    }
    return done(true, list);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (timedOut || code === "ETIMEOUT") return done(false, `timed out after ${ctx.timeoutMs} ms`);
    if (code === "ECANCELLED") return done(false, "cancelled");
    return done(false, code ?? (error as Error).message);
  } finally {
    clearTimeout(timer);
    ctx.signal.removeEventListener("abort", onAbort);
  }
}

/** The `dns` check. */
export default defineCheck({ type: "dns", config, run });
