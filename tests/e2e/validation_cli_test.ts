/**
 * What validation refuses, through the real CLI: files that are not registries, flags out of
 * their range, plugin code nobody asked for — each one line and exit 2, before anything runs —
 * every problem of a broken registry in one run, which registry was read and why, and a service
 * named like the supervisor's own lock, which starts like any other.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BUNDLED_REGISTRY_SHOWN, type CliResult, ROOT, runCli, tempHome } from "../_cli.ts";

/** `cli.ts args`, killed after `ms` (default 30 s). */
const cli = (
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string; ms?: number } = {},
) => runCli(args, { env: opts.env, cwd: opts.cwd, timeoutMs: opts.ms ?? 30_000 });

/** The one line a refused command prints (stderr, without the ❌). */
const oneLine = (r: CliResult) => {
  const lines = (r.stderr + r.stdout).trim().split("\n");
  assert.equal(lines.length, 1, r.stderr + r.stdout);
  return lines[0].replace(/^❌ /, "");
};

Deno.test("--config /dev/zero and a FIFO are refused at once with one line", async () => {
  using t = tempHome();
  const fifo = join(t.home, "services.toml");
  execFileSync("mkfifo", [fifo]);
  for (const [config, what] of [["/dev/zero", "a character device"], [fifo, "a FIFO"]]) {
    for (const command of [["services", "list"], ["services", "validate"]]) {
      const r = await cli([...command, "--config", config], {
        env: { PROVISIONING_HOME: t.home },
        ms: 20_000,
      });
      assert.equal(r.timedOut, false, `${command.join(" ")} --config ${config} hung`);
      assert.equal(r.code, 2, r.stderr + r.stdout);
      assert.match(
        r.stderr + r.stdout,
        new RegExp(`Cannot read registry: not a regular file \\(${what}\\)`),
      );
    }
  }
});

Deno.test("numeric flags out of their range are a usage error of one line", async () => {
  using t = tempHome();
  const env = { PROVISIONING_HOME: t.home };
  const cases: [string[], string][] = [
    [
      ["services", "monitor", "--interval", "3000000"],
      'Invalid --interval "3000000": must be a whole number between 1 and 86400 seconds',
    ],
    [
      ["services", "monitor", "--interval", "0"],
      'Invalid --interval "0": must be a whole number between 1 and 86400 seconds',
    ],
    [
      ["services", "logs", "orchestrator", "--lines", "1000000000"],
      'Invalid --lines "1000000000": must be a whole number between 1 and 100000 lines',
    ],
    [
      ["platform", "logs", "orchestrator", "--lines", "-5"],
      'Invalid --lines "-5": must be a whole number between 1 and 100000 lines',
    ],
  ];
  for (const [args, message] of cases) {
    const r = await cli(args, { env, ms: 20_000 });
    assert.equal(r.timedOut, false, `${args.join(" ")} did not stop`);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
    assert.equal(oneLine(r), message);
  }
});

Deno.test("services validate reports a name over 200 characters with file and line", async () => {
  using t = tempHome();
  const config = join(t.home, "services.toml");
  const name = "n".repeat(201);
  writeFileSync(
    config,
    `[services.ok]\ndeployment = { mode = "binary", binary = { binary_path = "/bin/true" } }\n\n` +
      `[services.${name}]\ndeployment = { mode = "binary", binary = { binary_path = "/bin/true" } }\n`,
  );
  const r = await cli(["services", "validate", "--json", "--config", config], {
    env: { PROVISIONING_HOME: t.home },
  });
  assert.equal(r.code, 2, r.stderr);
  const report = JSON.parse(r.stdout);
  const long = report.services.find((s: { name: string }) => s.name === name);
  assert.deepEqual(long.errors, [
    `${config}:4: services.${name}: Invalid service name "${name}": at most 200 characters (it has 201)`,
  ]);
});

Deno.test("read-only commands never import a plugin file the registry did not ask for", async () => {
  using t = tempHome();
  const project = join(t.home, "project");
  const marker = join(t.home, "imported");
  mkdirSync(join(project, "plugins", "drivers"), { recursive: true });
  mkdirSync(join(project, "plugins", "checks"), { recursive: true });
  // Each file, if imported at all, leaves a mark: an override of a used built-in, of an unused
  // one, and a new mode nobody uses.
  const planted = (name: string) =>
    `import { appendFileSync } from "node:fs";\nappendFileSync(${
      JSON.stringify(marker)
    }, "${name}\\n");\nexport default {};\n`;
  writeFileSync(join(project, "plugins/drivers/binary.override.ts"), planted("binary"));
  writeFileSync(join(project, "plugins/drivers/docker.override.ts"), planted("docker"));
  writeFileSync(join(project, "plugins/drivers/evil.ts"), planted("evil"));
  writeFileSync(join(project, "plugins/checks/tcp.override.ts"), planted("tcp"));
  const config = join(project, "services.toml");
  writeFileSync(
    config,
    `[services.api.deployment]\nmode = "binary"\n[services.api.deployment.binary]\n` +
      `binary_path = "/bin/true"\n`,
  );
  const env = { PROVISIONING_HOME: join(t.home, "home") };
  for (
    const args of [
      ["services", "list", "--json", "--config", config],
      ["services", "status", "--config", config],
      ["services", "validate", "--config", config],
      ["services", "dependencies", "api", "--config", config],
      ["plugins", "list"],
    ]
  ) {
    const r = await cli(args, { env: { ...env, PROVISIONING_SERVICES: config }, cwd: project });
    assert.ok(!existsSync(marker), `${args.join(" ")} imported a planted plugin file`);
    if (args[1] === "list" && args[0] === "services") {
      const api = JSON.parse(r.stdout)[0];
      assert.equal(api.status, "failed", r.stdout); // it names the override, see below
    }
    if (args[1] === "validate") {
      assert.equal(r.code, 2);
      assert.match(
        r.stdout,
        /Not using driver plugin ".*binary\.override\.ts": it would override "binary" of "drivers\/binary\.ts", and the registry does not allow it/,
      );
    }
  }
});

Deno.test("a service named supervisor starts and stops (its lock is not the supervisor's)", async () => {
  using t = tempHome();
  const config = join(t.home, "services.toml");
  writeFileSync(
    config,
    // Supervised, so the start also takes the supervisor's own lock while holding the service's.
    `[services.supervisor]\nstartup = { restart_on_failure = true }\n` +
      `[services.supervisor.deployment]\nmode = "binary"\n` +
      `[services.supervisor.deployment.binary]\nbinary_path = "/bin/sleep"\nargs = ["30"]\n`,
  );
  const env = { PROVISIONING_HOME: join(t.home, "home") };
  try {
    const start = await cli(["services", "start", "supervisor", "--config", config], {
      env,
      ms: 30_000,
    });
    assert.equal(start.timedOut, false, "services start supervisor hung");
    assert.equal(start.code, 0, start.stdout + start.stderr);
    const status = await cli(["services", "status", "supervisor", "--json", "--config", config], {
      env,
    });
    assert.equal(JSON.parse(status.stdout).status, "running", status.stdout);
    const stop = await cli(["services", "stop", "supervisor", "--config", config], {
      env,
      ms: 30_000,
    });
    assert.equal(stop.code, 0, stop.stdout + stop.stderr);
  } finally {
    await cli(["services", "stop", "supervisor", "--force", "--config", config], { env });
    await cli(["supervisor", "stop"], { env });
  }
});

/** A variable no environment sets. */
const UNSET = "PROVISIONING_TEST_NEVER_SET_15";

/** One file holding a problem of every step, one service each (the typed service has two). */
const BROKEN = `[services.vars]
deployment = { mode = "binary", binary = { binary_path = "\${${UNSET}}/bin/app" } }

[services.modes]
deployment = { mode = "teleport" }

[services.typed]
dependencies = ["ghost"]
[services.typed.deployment]
mode = "binary"
[services.typed.deployment.binary]
binary_path = "/bin/true"
args = "100"

[services.keys]
helth_check = { type = "none" }
deployment = { mode = "binary", binary = { binary_path = "/bin/true" } }

[services.ring-a]
dependencies = ["ring-b"]
deployment = { mode = "binary", binary = { binary_path = "/bin/true" } }

[services.ring-b]
dependencies = ["ring-c"]
deployment = { mode = "binary", binary = { binary_path = "/bin/true" } }

[services.ring-c]
dependencies = ["ring-a"]
deployment = { mode = "binary", binary = { binary_path = "/bin/true" } }

[services.dns-one]
conflicts = ["dns-two"]
startup = { auto_start = true }
deployment = { mode = "binary", binary = { binary_path = "/bin/true" } }

[services.dns-two]
startup = { auto_start = true }
deployment = { mode = "binary", binary = { binary_path = "/bin/true" } }
`;

/** What validate says of BROKEN: service → its lines (`line: path: message`, file aside). */
const BROKEN_PROBLEMS: Record<string, string[]> = {
  vars: [
    `2: services.vars.deployment.binary.binary_path: Undefined variable "${UNSET}" (set it, or write \${${UNSET}:-default})`,
  ],
  modes: [
    '5: services.modes.deployment.mode: Unknown deployment mode "teleport": available: binary, docker, docker-compose, kubernetes, remote, shell',
  ],
  typed: [
    '13: services.typed.deployment.binary.args: Expected array, got string "100"',
    '8: services.typed.dependencies: Unknown dependency "ghost"',
  ],
  keys: ['16: services.keys.helth_check: Unknown key "helth_check" (did you mean "health_check"?)'],
  "ring-a": [
    "20: services.ring-a.dependencies: Dependency cycle: ring-a -> ring-b -> ring-c -> ring-a",
  ],
  "ring-b": [
    "24: services.ring-b.dependencies: Dependency cycle: ring-a -> ring-b -> ring-c -> ring-a",
  ],
  "ring-c": [
    "28: services.ring-c.dependencies: Dependency cycle: ring-a -> ring-b -> ring-c -> ring-a",
  ],
  "dns-one": [
    '32: services.dns-one.conflicts: Conflicting services "dns-one" and "dns-two" both auto-start: set startup.auto_start on one of them only',
  ],
};

Deno.test("services validate reports every problem of every step in one run", async () => {
  using t = tempHome();
  const config = join(t.home, "services.toml");
  writeFileSync(config, BROKEN);
  const env = { PROVISIONING_HOME: join(t.home, "home") };
  const r = await cli(["services", "validate", "--config", config], { env });
  assert.equal(r.code, 2, r.stdout + r.stderr);
  const expected = [
    `Registry: ${config} (--config)`,
    "Total services: 9",
    "Valid: 1",
    "Invalid: 8",
    "",
    "Invalid services:",
    ...Object.entries(BROKEN_PROBLEMS).flatMap(([name, lines]) => [
      `❌ ${name}:`,
      ...lines.map((l) => `  - ${config}:${l}`),
    ]),
  ];
  assert.deepEqual(r.stdout.trimEnd().split("\n"), expected);
  assert.equal(r.stderr, "");

  // The same file through --json: every issue, per service and as data, and the file read.
  const j = await cli(["services", "validate", "--json", "--config", config], { env });
  assert.equal(j.code, 2, j.stderr);
  const report = JSON.parse(j.stdout);
  assert.deepEqual(report.registry, { path: config, source: "--config" });
  assert.deepEqual(
    Object.fromEntries(
      report.services.filter((s: { valid: boolean }) => !s.valid).map((
        s: { name: string; errors: string[] },
      ) => [s.name, s.errors]),
    ),
    Object.fromEntries(
      Object.entries(BROKEN_PROBLEMS).map(([n, lines]) => [n, lines.map((l) => `${config}:${l}`)]),
    ),
  );
  assert.deepEqual(
    report.services.filter((s: { valid: boolean }) => s.valid).map((s: { name: string }) => s.name),
    ["dns-two"],
  );
  const issues = report.issues.map((i: { line: number; path: string; message: string }) =>
    `${i.line}: ${i.path}: ${i.message}`
  );
  assert.deepEqual(issues.sort(), Object.values(BROKEN_PROBLEMS).flat().sort());
  assert.deepEqual(report.errors, []);
});

Deno.test("services start refuses a broken registry with the same lines validate prints", async () => {
  using t = tempHome();
  const config = join(t.home, "services.toml");
  writeFileSync(config, BROKEN);
  const r = await cli(["services", "start", "dns-two", "--config", config], {
    env: { PROVISIONING_HOME: join(t.home, "home") },
  });
  assert.equal(r.code, 2, r.stdout + r.stderr);
  const lines = r.stderr.trimEnd().split("\n").map((l) => l.replace(/^❌ /, ""));
  assert.deepEqual(
    lines.sort(),
    Object.values(BROKEN_PROBLEMS).flat().map((l) => `${config}:${l}`).sort(),
  );
});

const VALID = `[services.api]
deployment = { mode = "binary", binary = { binary_path = "/bin/true" } }
`;

Deno.test("services validate says which registry it read and how it found it", async () => {
  using t = tempHome();
  const home = join(t.home, "home");
  const cwd = join(t.home, "cwd");
  const given = join(t.home, "given.toml");
  const project = join(cwd, "provisioning", "config", "services.toml");
  const inHome = join(home, "config", "services.toml");
  for (const file of [given, project, inHome]) {
    mkdirSync(join(file, ".."), { recursive: true });
    writeFileSync(file, VALID);
  }
  const env = { PROVISIONING_HOME: home, PROVISIONING_SERVICES: "" };
  const text = await cli(["services", "validate", "--config", given], { env, cwd });
  assert.equal(text.code, 0, text.stdout + text.stderr);
  assert.equal(text.stdout.split("\n")[0], `Registry: ${given} (--config)`);
  assert.match(text.stdout, /^Total services: 1\nValid: 1\nInvalid: 0$/m);
  const cases: [Record<string, string>, string, string][] = [
    [{ PROVISIONING_SERVICES: given }, given, "PROVISIONING_SERVICES"],
    [{}, project, "project"],
  ];
  for (const [more, path, source] of cases) {
    const r = await cli(["services", "validate", "--json"], { env: { ...env, ...more }, cwd });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).registry, { path, source });
    assert.equal(r.stderr, "", "no notice unless the bundled registry is used");
  }
  const r = await cli(["services", "validate"], { env, cwd: t.home }); // no ./provisioning here
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.stdout.split("\n")[0], `Registry: ${inHome} (home)`);
});

Deno.test("a command that falls back on the bundled registry says so once, on stderr", async () => {
  using t = tempHome();
  const home = join(t.home, "home");
  const env = { PROVISIONING_HOME: home, PROVISIONING_SERVICES: "" };
  const bundled = BUNDLED_REGISTRY_SHOWN; // a build's is embedded: `<bundled>/config/services.toml`
  const notice =
    `Using the bundled registry ${bundled}: found no --config, PROVISIONING_SERVICES, ` +
    `${join(t.home, "provisioning", "config", "services.toml")} or ` +
    `${join(home, "config", "services.toml")}`;
  const deps = await cli(["services", "dependencies", "--json"], { env, cwd: t.home });
  assert.equal(deps.code, 0, deps.stdout + deps.stderr);
  assert.equal(deps.stderr, `${notice}\n`);
  assert.ok(JSON.parse(deps.stdout).order.includes("orchestrator"), "stdout is the JSON alone");
  const v = await cli(["services", "validate", "--json"], { env, cwd: t.home });
  assert.equal(v.stderr, `${notice}\n`);
  assert.deepEqual(JSON.parse(v.stdout).registry, { path: bundled, source: "bundled" });
  const text = await cli(["services", "validate"], { env, cwd: t.home });
  assert.equal(text.stdout.split("\n")[0], `Registry: ${bundled} (bundled)`);
  assert.equal(text.stderr, `${notice}\n`);
  const file = join(ROOT, "config", "services.toml");
  const given = await cli(["services", "dependencies", "--config", file], { env, cwd: t.home });
  assert.equal(given.code, 0, given.stdout + given.stderr);
  assert.equal(given.stderr, "", "--config of the same file is no fallback");
});
