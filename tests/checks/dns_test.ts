/**
 * The shipped `dns` check against a real dnsmasq (apt `dnsmasq-base`) on a free port of
 * 127.0.0.1. Tests that need dnsmasq are skipped, with the reason, when it is not installed.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import dns from "../../checks/dns.ts";
import { Platform } from "../../core/platform.ts";
import { PluginRegistry } from "../../core/plugins/registry.ts";
import { checkContext } from "./_helpers.ts";
import { findProgram, freeUdpPort, startDnsmasq } from "../_plugin_helpers.ts";

const DNSMASQ = findProgram("dnsmasq", ["/usr/sbin/dnsmasq"]);
if (!DNSMASQ) {
  console.warn("dns check tests skipped: dnsmasq is not installed (apt-get install dnsmasq-base)");
}

Deno.test({
  name: "dns check is healthy when the server answers the name with the expected address",
  ignore: !DNSMASQ,
  async fn() {
    await using server = await startDnsmasq(DNSMASQ!);
    const cfg = dns.config.parse({
      name: "example.test",
      port: server.port,
      expected: "127.0.0.42",
    });
    const result = await dns.run(cfg, checkContext());
    assert.equal(result.healthy, true, result.message);
    assert.equal(
      result.message,
      `DNS A example.test @127.0.0.1:${server.port} answered 127.0.0.42`,
    );
  },
});

Deno.test({
  name: "dns check is unhealthy when the expected address is not among the answers",
  ignore: !DNSMASQ,
  async fn() {
    await using server = await startDnsmasq(DNSMASQ!);
    const cfg = dns.config.parse({ name: "example.test", port: server.port, expected: "10.0.0.1" });
    const result = await dns.run(cfg, checkContext());
    assert.equal(result.healthy, false);
    assert.equal(
      result.message,
      `DNS A example.test @127.0.0.1:${server.port} failed: expected 10.0.0.1, got 127.0.0.42`,
    );
  },
});

Deno.test({
  name: "dns check is unhealthy when the server has no answer for the name",
  ignore: !DNSMASQ,
  async fn() {
    await using server = await startDnsmasq(DNSMASQ!);
    const result = await dns.run(
      dns.config.parse({ name: "unknown.test", port: server.port }),
      checkContext(),
    );
    assert.equal(result.healthy, false);
    assert.match(result.message, /^DNS A unknown\.test @127\.0\.0\.1:\d+ failed: E[A-Z]+$/);
  },
});

Deno.test({
  name: "a service's dns health check runs through the plugin loader",
  ignore: !DNSMASQ,
  async fn() {
    await using server = await startDnsmasq(DNSMASQ!);
    const dir = mkdtempSync(join(tmpdir(), "prov-dns-"));
    try {
      writeFileSync(
        join(dir, "services.toml"),
        `[services.coredns.deployment]
mode = "remote"
[services.coredns.deployment.remote]
endpoint = "http://127.0.0.1:1"
[services.coredns.health_check]
type = "dns"
timeout = 2
[services.coredns.health_check.dns]
name = "example.test"
port = ${server.port}
expected = "127.0.0.42"
`,
      );
      const p = await Platform.open({
        config: join(dir, "services.toml"),
        home: join(dir, "home"),
        env: {},
        plugins: PluginRegistry.discover({ cwd: dir, home: join(dir, "home"), env: {} }),
      });
      const result = await p.probe(p.service("coredns"));
      assert.equal(result.healthy, true, result.message);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
});

Deno.test("dns check is unhealthy, not stuck, when nothing answers on the port", async () => {
  const port = await freeUdpPort();
  const result = await dns.run(dns.config.parse({ name: "example.test", port }), checkContext(300));
  assert.equal(result.healthy, false);
  assert.match(
    result.message,
    new RegExp(`^DNS A example\\.test @127\\.0\\.0\\.1:${port} failed: `),
  );
});

Deno.test("dns check reports cancelled when the caller has already aborted", async () => {
  const controller = new AbortController();
  controller.abort();
  const result = await dns.run(
    dns.config.parse({ name: "example.test" }),
    checkContext(5_000, { signal: controller.signal }),
  );
  assert.deepEqual([result.healthy, result.message], [
    false,
    "DNS A example.test @127.0.0.1:53 failed: cancelled",
  ]);
});

Deno.test("dns config applies defaults and wants an IP address as server", () => {
  assert.deepEqual(dns.config.parse({ name: "a.test" }), {
    name: "a.test",
    server: "127.0.0.1",
    port: 53,
    record: "A",
  });
  for (
    const bad of [{}, { name: "a.test", server: "dns.local" }, { name: "a", record: "ANY" }, {
      name: "a",
      port: 0,
    }]
  ) {
    assert.equal(dns.config.safeParse(bad).success, false, JSON.stringify(bad));
  }
  const v6 = dns.config.parse({ name: "a.test", server: "::1", port: 5353 });
  assert.equal(v6.server, "::1");
});
