import assert from "node:assert/strict";
import { join } from "node:path";
import { DEMO_REGISTRY, ROOT, runCli, tempHome } from "../_cli.ts";
import { Sandbox } from "./_registry.ts";

const BUNDLED = join(ROOT, "config/services.toml");
const INVALID = join(ROOT, "tests/fixtures/registries/invalid");

Deno.test("services list --json lists the seven services, all stopped without state", async () => {
  using t = tempHome();
  const r = await runCli(["services", "list", "--json", "--config", BUNDLED], {
    env: { PROVISIONING_HOME: t.home },
  });
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout);
  assert.equal(rows.length, 7);
  assert.deepEqual(Object.keys(rows[0]).slice(0, 6), [
    "name",
    "type",
    "category",
    "status",
    "deployment_mode",
    "auto_start",
  ]);
  assert.deepEqual(rows[0], {
    name: "orchestrator",
    type: "platform",
    category: "orchestration",
    status: "stopped",
    deployment_mode: "binary",
    auto_start: true,
    pid: null,
    uptime_s: null,
    restarts: 0,
    health: "unknown",
    dependencies: [],
  });
  assert.ok(rows.every((x: { status: string }) => x.status === "stopped"));
});

Deno.test("services list prints the spec's columns and filters by category", async () => {
  using t = tempHome();
  const env = { PROVISIONING_HOME: t.home };
  const r = await runCli(["services", "list", "--config", BUNDLED], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout.split("\n")[0],
    /^name\s+type\s+category\s+status\s+deployment_mode\s+auto_start\s+pid\s+uptime\s+restarts\s+health$/,
  );
  assert.match(
    r.stdout,
    /coredns\s+infrastructure\s+dns\s+stopped\s+docker\s+false\s+-\s+-\s+0\s+-/,
  );
  // Categories match whatever their case, as `docker compose ps` matches services.
  const c = await runCli(["services", "list", "--category", "API", "--json", "--config", BUNDLED], {
    env,
  });
  assert.deepEqual(JSON.parse(c.stdout).map((x: { name: string }) => x.name), [
    "mcp-server",
    "api-gateway",
  ]);
  const running = await runCli(["services", "list", "--running", "--json", "--config", BUNDLED], {
    env,
  });
  assert.deepEqual(JSON.parse(running.stdout), []);
  const unknown = await runCli(["services", "list", "--category", "apis", "--config", BUNDLED], {
    env,
  });
  assert.equal(unknown.code, 2);
  assert.match(
    unknown.stderr,
    /Unknown category "apis"\n.*Known categories: orchestration, ui, dns, git, registry, api/,
  );
});

Deno.test("services dependencies shows dependencies and 'Required by'", async () => {
  const r = await runCli(["services", "dependencies", "orchestrator", "--config", BUNDLED]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /## orchestrator\n- Type: platform\n- Category: orchestration/);
  assert.match(
    r.stdout,
    /- Required by:\n {2}- control-center\n {2}- mcp-server\n {2}- api-gateway/,
  );
  const j = JSON.parse(
    (await runCli(["services", "dependencies", "api-gateway", "--json", "--config", BUNDLED]))
      .stdout,
  );
  assert.deepEqual(j.dependencies, ["orchestrator", "control-center", "mcp-server"]);
  assert.deepEqual(j.required_by, []);
  const tree = await runCli(["services", "dependencies", "--config", BUNDLED]);
  assert.match(
    tree.stdout,
    /orchestrator \(order: 10\)\n(.*\n)*.*─> control-center \(order: 20\)\n.*└─> api-gateway \(order: 45\)/,
  );
});

Deno.test("services dependencies --format mermaid|dot draws every edge", async () => {
  const m = await runCli(["services", "dependencies", "--format", "mermaid", "--config", BUNDLED]);
  assert.equal(m.code, 0, m.stderr);
  assert.match(m.stdout, /^flowchart LR/);
  assert.match(m.stdout, /orchestrator --> control_center/);
  assert.equal((m.stdout.match(/-->/g) ?? []).length, 5);
  const d = await runCli(["services", "dependencies", "--format", "dot", "--config", BUNDLED]);
  assert.match(d.stdout, /"mcp-server" -> "api-gateway";/);
  const bad = await runCli(["services", "dependencies", "--format", "svg", "--config", BUNDLED]);
  assert.equal(bad.code, 2);
});

Deno.test("services dependencies NAME --format mermaid|dot draws that service's closure, conflicts apart", async () => {
  await using sb = await Sandbox.create([
    { name: "db" },
    { name: "cache" },
    { name: "web", deps: ["db"], conflicts: ["legacy"] },
    { name: "edge", deps: ["web"] },
    { name: "legacy", conflicts: ["web"] },
    { name: "batch", deps: ["cache"] },
  ]);
  const env = { PROVISIONING_HOME: sb.home };
  const m = await runCli(
    ["services", "dependencies", "web", "--format", "mermaid", "--config", sb.config],
    { env },
  );
  assert.equal(m.code, 0, m.stderr);
  const nodes = [...m.stdout.matchAll(/^ {2}(\w+)\["/gm)].map((x) => x[1]).sort();
  assert.deepEqual(nodes, ["db", "edge", "web"], "web's dependencies and dependents, no more");
  assert.match(m.stdout, /db --> web/);
  assert.match(m.stdout, /web --> edge/);
  assert.doesNotMatch(m.stdout, /cache|batch|legacy/);
  const all = await runCli(
    ["services", "dependencies", "--format", "mermaid", "--config", sb.config],
    { env },
  );
  assert.equal((all.stdout.match(/x-\. conflicts \.-x/g) ?? []).length, 1, "one line per pair");
  const dot = await runCli(
    ["services", "dependencies", "--format", "dot", "--config", sb.config],
    { env },
  );
  assert.match(
    dot.stdout,
    /"web" -> "legacy" \[style=dashed, color=red, dir=none, label="conflicts"\];/,
  );
  const unknown = await runCli(
    ["services", "dependencies", "nope", "--format", "dot", "--config", sb.config],
    { env },
  );
  assert.equal(unknown.code, 2);
});

Deno.test("platform start --dry-run prints waves, order and critical path without starting", async () => {
  using t = tempHome();
  const env = { PROVISIONING_HOME: t.home };
  const r = await runCli([
    "platform",
    "start",
    "--dry-run",
    "api-gateway",
    "--json",
    "--config",
    BUNDLED,
  ], { env });
  assert.equal(r.code, 0, r.stderr);
  const plan = JSON.parse(r.stdout);
  assert.deepEqual(plan.waves, [["orchestrator"], ["control-center", "mcp-server"], [
    "api-gateway",
  ]]);
  assert.deepEqual(plan.services, ["orchestrator", "control-center", "mcp-server", "api-gateway"]);
  assert.equal(plan.critical_path.length, 3);
  const text = await runCli(["platform", "start", "--dry-run", "--config", BUNDLED], { env });
  assert.match(text.stdout, /Plan: start 1 service\(s\) in 1 wave\(s\)\n {2}Wave 1: orchestrator/);
  const stop = await runCli(["platform", "stop", "--dry-run", "--json", "--config", BUNDLED], {
    env,
  });
  assert.deepEqual(JSON.parse(stop.stdout).services, []);
});

Deno.test("services check reports an operation's services and exits 1 when they are not running", async () => {
  using t = tempHome();
  const env = { PROVISIONING_HOME: t.home };
  const r = await runCli(["services", "check", "server", "--config", BUNDLED], { env });
  assert.equal(r.code, 1);
  assert.equal(
    r.stdout.trim(),
    "Operation: server\nRequired services: orchestrator\nAll running: false\n" +
      "Not running: orchestrator\nStart them: provisioning services check server --start",
  );
  const j = await runCli(["services", "check", "api", "--json", "--config", BUNDLED], { env });
  assert.deepEqual(JSON.parse(j.stdout), {
    operation: "api",
    required: ["orchestrator", "control-center", "mcp-server", "api-gateway"],
    running: [],
    not_running: ["orchestrator", "control-center", "mcp-server", "api-gateway"],
    all_running: false,
  });
  const unknown = await runCli(["services", "check", "servr", "--config", BUNDLED], { env });
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /Unknown operation "servr".*\n.*Did you mean "server"\?/);
});

Deno.test("platform status without state shows every service stopped", async () => {
  using t = tempHome();
  const r = await runCli(["platform", "status", "--json", "--config", BUNDLED], {
    env: { PROVISIONING_HOME: t.home },
  });
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.running, 0);
  assert.equal(s.total, 7);
  assert.deepEqual(
    Object.keys(s.services[0]).filter((k) =>
      ["name", "status", "health", "restarts", "dependencies"].includes(k)
    ).sort(),
    ["dependencies", "health", "name", "restarts", "status"],
  );
  const text = await runCli(["platform", "status", "--config", BUNDLED], {
    env: { PROVISIONING_HOME: t.home },
  });
  assert.match(
    text.stdout,
    /Platform Services Status\nRunning: 0\/7\n\n=== ORCHESTRATION ===\n⚪ orchestrator - stopped ❓/,
  );
});

Deno.test("services validate reports the demo registry valid and exits 0", async () => {
  const r = await runCli(["services", "validate", "--json", "--config", DEMO_REGISTRY]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const rep = JSON.parse(r.stdout);
  assert.deepEqual({ total: rep.total, valid: rep.valid, invalid: rep.invalid }, {
    total: 7,
    valid: 7,
    invalid: 0,
  });
});

Deno.test("services validate of an invalid registry lists each problem and exits 2", async () => {
  const file = join(INVALID, "several_problems.toml");
  const r = await runCli(["services", "validate", "--config", file]);
  assert.equal(r.code, 2);
  assert.match(r.stdout, /Total services: 3\nValid: 0\nInvalid: 3/);
  assert.match(
    r.stdout,
    /❌ c:\n {2}- .*several_problems\.toml:\d+: services\.c\.dependencies: Unknown dependency "zzz"/,
  );
  const j = await runCli(["services", "validate", "--json", "--config", file]);
  const rep = JSON.parse(j.stdout);
  assert.deepEqual(Object.keys(rep).sort(), [
    "errors",
    "file",
    "invalid",
    "issues",
    "registry",
    "services",
    "total",
    "valid",
  ]);
});

Deno.test("a broken registry gives one clear line per problem and exit 2, never a stack", async () => {
  const r = await runCli(["services", "list", "--config", join(INVALID, "cycle_two.toml")]);
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /cycle_two\.toml:\d+: services\.a\.dependencies: Dependency cycle: a -> b -> a/,
  );
  assert.doesNotMatch(r.stderr, /\bat .*\.ts:\d+/);
  const j = await runCli([
    "services",
    "list",
    "--json",
    "--config",
    join(INVALID, "cycle_two.toml"),
  ]);
  assert.equal(JSON.parse(j.stdout).exit_code, 2);
});

Deno.test("usage errors exit 2", async () => {
  assert.equal((await runCli(["services", "bogus"])).code, 2);
  const r = await runCli(["services", "status", "orchestrater", "--config", BUNDLED]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Unknown service "orchestrater"\n.*Did you mean "orchestrator"\?/);
  assert.equal(
    (await runCli(["platform", "logs", "orchestrator", "--lines", "x", "--config", BUNDLED])).code,
    2,
  );
  assert.equal((await runCli(["--help"])).code, 0);
});
