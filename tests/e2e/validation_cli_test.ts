/**
 * What validation refuses, through the real CLI: files that are not registries, flags out of
 * their range, plugin code nobody asked for — each one line and exit 2, before anything runs —
 * and a service named like the supervisor's own lock, which starts like any other.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type CliResult, runCli, tempHome } from "../_cli.ts";

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
