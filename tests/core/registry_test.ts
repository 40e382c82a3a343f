import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { expandString, expandValue } from "../../core/registry/_expand.ts";
import { locateKeys } from "../../core/registry/_toml_lines.ts";
import { PluginRegistry } from "../../core/plugins/registry.ts";
import {
  BUNDLED_REGISTRY,
  discoverRegistry,
  graphIssues,
  loadRegistry,
  MAX_REGISTRY_BYTES,
  readRegistryFile,
  validateRegistry,
} from "../../core/registry/load.ts";
import { validateServices } from "../../core/registry/validate.ts";
import { RegistryError } from "../../core/errors.ts";

const FIXTURES = fileURLToPath(new URL("../fixtures/registries/", import.meta.url));
const ENV = { HOME: "/home/tester", PATH: "/usr/bin:/bin" };
const plugins = PluginRegistry.discover({ cwd: "/nonexistent", home: "/nonexistent", env: {} });

/** `# expect: ...` lines of a fixture. */
function expectations(text: string, key: string): string[] {
  return [...text.matchAll(new RegExp(`^# ${key}: (.*)$`, "gm"))].map((m) => m[1].trim());
}

for (const file of readdirSync(join(FIXTURES, "invalid")).sort()) {
  const path = join(FIXTURES, "invalid", file);
  Deno.test(`registry rejects invalid/${file} with its path and message`, async () => {
    const text = readFileSync(path, "utf8");
    const expected = expectations(text, "expect");
    assert.ok(expected.length > 0, "fixture must state what it expects");
    const v = await validateRegistry({ config: path, env: ENV, plugins });
    assert.equal(v.registry, undefined);
    const got = v.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message));
    for (const e of expected) {
      assert.ok(
        got.some((g) => g.includes(e)),
        `expected an issue containing\n  ${e}\ngot\n  ${got.join("\n  ")}`,
      );
    }
    for (const line of expectations(text, "expect-line")) {
      assert.ok(
        v.issues.some((i) => i.line === Number(line)),
        `expected an issue on line ${line}: ${JSON.stringify(v.issues)}`,
      );
    }
  });
}

for (const file of readdirSync(join(FIXTURES, "valid")).sort()) {
  const path = join(FIXTURES, "valid", file);
  Deno.test(`registry accepts valid/${file}`, async () => {
    const v = await validateRegistry({ config: path, env: ENV, plugins });
    assert.deepEqual(v.issues, []);
    const names = expectations(readFileSync(path, "utf8"), "expect-services")[0];
    if (names) assert.deepEqual(v.registry!.services.map((s) => s.name), names.split(/,\s*/));
  });
}

Deno.test("registry applies the spec's defaults", async () => {
  const reg = await loadRegistry({
    config: join(FIXTURES, "valid/minimal.toml"),
    env: ENV,
    plugins,
  });
  const api = reg.byName.get("api")!;
  assert.deepEqual(
    { hc: api.health_check, startup: api.startup, shutdown: api.shutdown },
    {
      hc: { type: "none", interval: 10, retries: 3, timeout: 5 },
      startup: {
        auto_start: false,
        start_timeout: 30,
        start_order: 100,
        restart_on_failure: false,
        max_restarts: 3,
        restart_delay: 0.5,
        restart_delay_max: 30,
        restart_window: 60,
        restart_with_dependencies: false,
      },
      shutdown: { signal: "SIGTERM", timeout: 10 },
    },
  );
  assert.deepEqual(api.logs, { max_size: 10 * 1024 * 1024, keep: 5 });
  assert.deepEqual(api.deployment, {
    mode: "binary",
    binary: { binary_path: "/bin/true", args: [], env: {} },
  });
  assert.equal(api.type, "utility");
});

Deno.test("registry expands ${VAR}, ${VAR:-default}, ${HOME} and a leading ~", async () => {
  const reg = await loadRegistry({
    config: join(FIXTURES, "valid/all_modes_and_checks.toml"),
    env: { ...ENV, PORT: "7100" },
    plugins,
  });
  const bin = reg.byName.get("bin")!.deployment.binary as Record<string, unknown>;
  assert.equal(bin.binary_path, "/home/tester/bin/app");
  assert.deepEqual(bin.args, ["--port", "7100"]);
  assert.equal(bin.working_dir, "/home/tester");
  assert.equal(reg.byName.get("bin")!.shutdown.signal, "SIGTERM");
  assert.equal(expandString("${NOPE:-x}-$${HOME}-~/a", ENV), "x-${HOME}-~/a");
  assert.equal(expandString("~/a", ENV), "/home/tester/a");
  const missing: string[] = [];
  expandString("${A}${B:-b}${C}", {}, missing);
  assert.deepEqual(missing, ["A", "C"]);
});

Deno.test("registry reports every problem at once, with lines", async () => {
  const path = join(FIXTURES, "invalid/several_problems.toml");
  await assert.rejects(loadRegistry({ config: path, env: ENV, plugins }), (e: unknown) => {
    assert.ok(e instanceof RegistryError);
    assert.equal(e.exitCode, 2);
    assert.ok(e.issues.length >= 3);
    assert.ok(e.lines().every((l) => l.startsWith(`${path}:`)), e.lines().join("\n"));
    return true;
  });
});

Deno.test("locateKeys maps headers, dotted keys and inline tables to lines", () => {
  const lines = locateKeys(
    '[services.a]\ntype = "x"\nhealth_check.type = "tcp"\n\n[services."b.c".deployment]\nmode = "binary"\n',
  );
  assert.equal(lines.get("services.a"), 1);
  assert.equal(lines.get("services.a.type"), 2);
  assert.equal(lines.get("services.a.health_check.type"), 3);
  assert.equal(lines.get('services."b.c".deployment.mode'), 6);
});

Deno.test("discoverRegistry follows --config, PROVISIONING_SERVICES, project, home, bundled", () => {
  const dir = mkdtempSync(join(tmpdir(), "prov-discover-"));
  try {
    const home = join(dir, "home");
    const cwd = join(dir, "cwd");
    mkdirSync(join(home, "config"), { recursive: true });
    mkdirSync(join(cwd, "provisioning", "config"), { recursive: true });
    const env = { PROVISIONING_HOME: home };
    const notices: string[] = [];
    const notice = (line: string) => notices.push(line);
    assert.deepEqual(discoverRegistry({ cwd, env, notice }), {
      file: BUNDLED_REGISTRY,
      source: "bundled",
    });
    assert.deepEqual(notices, [
      `Using the bundled registry ${BUNDLED_REGISTRY}: found no --config, PROVISIONING_SERVICES, ` +
      `${join(cwd, "provisioning", "config", "services.toml")} or ` +
      `${join(home, "config", "services.toml")}`,
    ]);
    writeFileSync(join(home, "config", "services.toml"), "");
    assert.equal(discoverRegistry({ cwd, env, notice }).source, "home");
    assert.equal(notices.length, 1, "a registry found is no news");
    writeFileSync(join(cwd, "provisioning", "config", "services.toml"), "");
    assert.equal(
      discoverRegistry({ cwd, env }).file,
      join(cwd, "provisioning", "config", "services.toml"),
    );
    assert.equal(
      discoverRegistry({ cwd, env: { ...env, PROVISIONING_SERVICES: "x.toml" } }).file,
      join(cwd, "x.toml"),
    );
    assert.equal(
      discoverRegistry({ cwd, env: { ...env, PROVISIONING_SERVICES: "x.toml" }, config: "/y.toml" })
        .file,
      "/y.toml",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("the bundled registry holds the spec's seven services", async () => {
  const reg = await loadRegistry({ config: BUNDLED_REGISTRY, env: ENV, plugins });
  assert.deepEqual(reg.services.map((s) => s.name), [
    "orchestrator",
    "control-center",
    "coredns",
    "gitea",
    "oci-registry",
    "mcp-server",
    "api-gateway",
  ]);
  assert.deepEqual(reg.services.filter((s) => s.startup.auto_start).map((s) => s.name), [
    "orchestrator",
  ]);
  assert.deepEqual(reg.byName.get("api-gateway")!.dependencies, [
    "orchestrator",
    "control-center",
    "mcp-server",
  ]);
});

Deno.test("a missing registry file is one clear issue", async () => {
  const v = await validateRegistry({ config: "/nonexistent/services.toml", env: ENV, plugins });
  assert.deepEqual(v.issues.map((i) => i.message), ["Cannot read registry: no such file"]);
});

Deno.test("the registry is read only from a regular file of at most 64 MiB", async () => {
  const dir = mkdtempSync(join(tmpdir(), "prov-read-"));
  try {
    const fifo = join(dir, "fifo.toml");
    execFileSync("mkfifo", [fifo]); // nobody writes it: reading it would block forever
    const big = join(dir, "big.toml");
    writeFileSync(big, "");
    truncateSync(big, MAX_REGISTRY_BYTES + 1); // sparse: costs no disk
    const cases: [string, string][] = [
      ["/dev/zero", "Cannot read registry: not a regular file (a character device)"],
      [fifo, "Cannot read registry: not a regular file (a FIFO)"],
      [dir, "Cannot read registry: not a regular file (a directory)"],
      [big, `Cannot read registry: larger than 64 MiB (${MAX_REGISTRY_BYTES + 1} bytes)`],
    ];
    for (const [config, message] of cases) {
      const v = await validateRegistry({ config, env: ENV, plugins });
      assert.deepEqual(v.issues.map((i) => i.message), [message], config);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("invalid UTF-8 is reported with its line and column, not replaced", () => {
  const bytes = new TextEncoder().encode('[services.a]\ndescription = "ok é"\nx = "');
  const file = join(mkdtempSync(join(tmpdir(), "prov-utf8-")), "s.toml");
  try {
    for (const bad of [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xe0, 0x80, 0x80]]) {
      writeFileSync(file, new Uint8Array([...bytes, ...bad, 0x22, 0x0a]));
      const r = readRegistryFile(file);
      assert.ok("issue" in r, String(bad));
      assert.equal(r.issue.line, 3, String(bad));
      assert.equal(r.issue.column, 6, String(bad));
      assert.match(r.issue.message, /^Invalid UTF-8 \(byte 0x[0-9a-f]{2}\)/);
    }
    writeFileSync(file, new Uint8Array([0xef, 0xbb, 0xbf, ...bytes, 0x22, 0x0a])); // a BOM is fine
    assert.ok("text" in readRegistryFile(file));
  } finally {
    rmSync(dirname(file), { recursive: true, force: true });
  }
});

Deno.test("expansion reports malformed references and never lets a value escape a shell line", () => {
  const env = { HOME: "/home/t", X: "a'b" };
  assert.deepEqual(expandValue("${X", env).errors.length, 1);
  assert.deepEqual(expandValue("${X:-d}${9}", env).errors.length, 1);
  assert.equal(expandValue("${NOPE:-~/data}", env).value, "/home/t/data");
  assert.equal(expandValue("echo ${X}", env, { shell: true }).value, `echo 'a'"'"'b'`);
  assert.equal(expandValue("~/bin/x", env, { shell: true }).value, "'/home/t'/bin/x");
  const escaped = expandValue("echo \\${X}", env, { shell: true });
  assert.deepEqual(escaped.errors, [
    'A "\\" right before "${X}" would escape the quote around its value: remove the "\\"',
  ]);
  assert.equal(expandValue("echo '\\${X}'", env, { shell: true }).errors.length, 0);
});

Deno.test("validateServices gives each service its own errors and keeps the others apart", async () => {
  const dir = mkdtempSync(join(tmpdir(), "prov-validate-"));
  try {
    const source = `[services.good]
deployment = { mode = "binary", binary = { binary_path = "/bin/true" } }
[services.bad]
deployment = { mode = "binary", binary = { binary_path = "/bin/true" } }
startup = { start_timeout = 1e9 }
[services.folder]
deployment = { mode = "binary", binary = { binary_path = "${dir}" } }
[services.dep]
dependencies = ["nowhere"]
deployment = { mode = "binary", binary = { binary_path = "/bin/true" } }
`;
    const config = join(dir, "services.toml");
    writeFileSync(config, source + "[oops]\n");
    const report = await validateServices({ config, env: ENV, home: join(dir, "home") });
    const errors = Object.fromEntries(report.services.map((s) => [s.name, s.errors]));
    assert.deepEqual(errors.good, []);
    assert.deepEqual(errors.bad, [
      `${config}:5: services.bad.startup.start_timeout: Must be between 0.01 and 86400 seconds`,
    ]);
    assert.deepEqual(errors.dep.length, 1);
    assert.match(errors.dep[0], /Unknown dependency "nowhere"/);
    assert.deepEqual(report.errors, [`${config}:11: oops: Unknown key "oops"`]);
    writeFileSync(config, source);
    const r = await validateServices({ config, env: ENV, home: join(dir, "home") });
    const folder = r.services.find((s) => s.name === "folder")!;
    assert.deepEqual(folder.errors, [`Binary is a directory: ${dir}`]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Validate `source` as a registry file (in memory), with the test plugins. */
const validateText = (source: string) =>
  validateRegistry({ config: "/registry/services.toml", source, env: ENV, plugins });

const bin = 'deployment = { mode = "binary", binary = { binary_path = "/bin/true" } }';

Deno.test("a schema error in a service does not hide its unknown dependencies or other keys", async () => {
  const v = await validateText(`[services.api]
dependencies = ["ghost", 7]
helth_check = {}
[services.api.deployment]
mode = "binary"
[services.api.deployment.binary]
binary_path = "/bin/true"
args = "100"
[services.web]
dependencies = ["api"]
${bin}
`);
  assert.deepEqual(v.issues.map((i) => `${i.service} ${i.line}: ${i.path}: ${i.message}`), [
    "api 2: services.api.dependencies[1]: Expected string, got number 7",
    'api 3: services.api.helth_check: Unknown key "helth_check" (did you mean "health_check"?)',
    'api 8: services.api.deployment.binary.args: Expected array, got string "100"',
    'api 2: services.api.dependencies: Unknown dependency "ghost"',
  ]);
  assert.deepEqual(v.services.map((s) => s.name), ["web"], "web needs api, which exists");
  assert.equal(v.registry, undefined);
});

Deno.test("every service on a cycle is reported, each with a cycle path through it", async () => {
  const v = await validateText(`[services.a]
dependencies = ["b"]
${bin}
[services.b]
dependencies = ["c"]
${bin}
[services.c]
dependencies = ["a"]
${bin}
[services.outside]
dependencies = ["a"]
${bin}
`);
  assert.deepEqual(v.issues.map((i) => `${i.line}: ${i.path}: ${i.message}`), [
    "2: services.a.dependencies: Dependency cycle: a -> b -> c -> a",
    "5: services.b.dependencies: Dependency cycle: a -> b -> c -> a",
    "8: services.c.dependencies: Dependency cycle: a -> b -> c -> a",
  ]);
  // v is on the cycle r -> v -> x -> r, which the search for distinct cycles does not report
  // (it reports r -> x -> r): it gets a shortest cycle of its own.
  const hidden = graphIssues([
    { name: "r", dependencies: ["x", "v"] },
    { name: "x", dependencies: ["r"] },
    { name: "v", dependencies: ["x"] },
  ]);
  assert.deepEqual(hidden.map((i) => `${i.path}: ${i.message}`), [
    "services.r.dependencies: Dependency cycle: r -> x -> r",
    "services.x.dependencies: Dependency cycle: r -> x -> r",
    "services.v.dependencies: Dependency cycle: r -> v -> x -> r",
  ]);
  // A long cycle is shown around each other member.
  const ring = Array.from({ length: 30 }, (_, i) => ({
    name: `n${i}`,
    dependencies: [`n${(i + 1) % 30}`],
  }));
  const long = graphIssues(ring);
  assert.equal(long.length, 30);
  assert.equal(
    long[0].message,
    `Dependency cycle: ${[...ring.map((n) => n.name), "n0"].join(" -> ")}`,
  );
  assert.equal(
    long[7].message,
    "Dependency cycle: n0 -> … -> n6 -> n7 -> n8 -> … -> n0 (30 services)",
  );
});

Deno.test("two conflicting services that both auto-start are a registry error", async () => {
  const auto = "startup = { auto_start = true }";
  const v = await validateText(`[services.dns]
conflicts = ["dnsmasq", "resolver"]
${auto}
${bin}
[services.resolver]
conflicts = ["dns"]
${auto}
${bin}
[services.cache]
conflicts = ["dns"]
${bin}
`);
  assert.deepEqual(v.issues.map((i) => `${i.service} ${i.line}: ${i.path}: ${i.message}`), [
    'dns 2: services.dns.conflicts: Conflicting services "dns" and "resolver" both auto-start: ' +
    "set startup.auto_start on one of them only",
  ]);
  // A table broken elsewhere still counts: its auto_start is read on its own.
  const broken = await validateText(`[services.dns]
conflicts = ["resolver"]
startup = { auto_start = true, start_timeout = 0 }
${bin}
[services.resolver]
${auto}
${bin}
`);
  assert.deepEqual(broken.issues.map((i) => i.path), [
    "services.dns.startup.start_timeout",
    "services.dns.conflicts",
  ]);
});

Deno.test("validateServices says which registry file it read and how it found it", async () => {
  const dir = mkdtempSync(join(tmpdir(), "prov-validate-"));
  try {
    const config = join(dir, "services.toml");
    writeFileSync(config, `[services.api]\n${bin}\n`);
    const env = { ...ENV, PROVISIONING_SERVICES: config };
    const report = await validateServices({ env, home: join(dir, "home"), cwd: dir });
    assert.deepEqual(report.registry, { path: config, source: "PROVISIONING_SERVICES" });
    assert.equal(report.file, config);
    assert.deepEqual([report.valid, report.issues], [1, []]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
