import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import command from "../../checks/command.ts";
import { PluginRegistry } from "../../core/plugins/registry.ts";
import { validateRegistry } from "../../core/registry/load.ts";
import { checkContext, pidGone, waitFor } from "./_helpers.ts";

const run = (cfg: Record<string, unknown>, timeoutMs = 10_000, env = {}) =>
  command.run(command.config.parse(cfg), checkContext(timeoutMs, { env }));

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "command-check-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

Deno.test("command check is healthy when the command exits 0", async () => {
  const result = await run({ command: "/bin/sh -c 'exit 0'" });
  assert.equal(result.healthy, true);
  assert.equal(result.message, "Command exited with code 0");
});

Deno.test("command check reports an exit code mismatch with the last output line", async () => {
  const result = await run({ command: "echo first; echo 'database not ready' 1>&2; exit 3" });
  assert.equal(result.healthy, false);
  assert.equal(result.message, "Command exited with code 3 (expected 0): database not ready");
});

Deno.test("command check accepts the configured expected_exit_code", async () => {
  const result = await run({ command: "/bin/sh -c 'exit 7'", expected_exit_code: 7 });
  assert.equal(result.healthy, true, result.message);
});

Deno.test("command check passes the context environment to the command", async () => {
  const cfg = { command: `/bin/sh -c 'test "$PROBE_TOKEN" = s3cret'` };
  assert.equal((await run(cfg, 10_000, { PROBE_TOKEN: "s3cret" })).healthy, true);
  assert.equal((await run(cfg, 10_000, { PROBE_TOKEN: "wrong" })).healthy, false);
});

Deno.test("command check runs in working_dir", async () => {
  await withTempDir(async (dir) => {
    await writeFile(join(dir, "marker"), "");
    const result = await run({ command: "/bin/sh -c 'test -f marker'", working_dir: dir });
    assert.equal(result.healthy, true, result.message);
  });
});

Deno.test("command check reports a missing working_dir without running", async () => {
  const result = await run({ command: "true", working_dir: "/nonexistent/dir" });
  assert.equal(result.healthy, false);
  assert.equal(
    result.message,
    'Cannot run check command: working directory "/nonexistent/dir" does not exist',
  );
});

Deno.test("command check reports a command that does not exist", async () => {
  const result = await run({ command: "no-such-command-xyz --flag" });
  assert.equal(result.healthy, false);
  assert.match(result.message, /code 127/);
  assert.match(result.message, /no-such-command-xyz/);
});

Deno.test("command check kills the whole process tree at the timeout", async () => {
  await withTempDir(async (dir) => {
    const pids = join(dir, "pids");
    // sh starts a grandchild, records both pids, then waits: dax's own kill reaches only sh.
    const script = `/bin/sleep 100 & echo $! > ${pids}; echo $$ >> ${pids}; wait`;
    const started = performance.now();
    const result = await run({ command: `/bin/sh -c '${script}'` }, 500);
    assert.equal(result.healthy, false);
    assert.equal(result.message, "Timed out after 500 ms");
    assert.ok(performance.now() - started < 5_000, "returned long after the timeout");
    const recorded = (await readFile(pids, "utf8")).trim().split("\n").map(Number);
    assert.equal(recorded.length, 2, "both pids were recorded");
    for (const pid of recorded) {
      assert.ok(pid > 0 && pid !== process.pid);
      await waitFor(() => pidGone(pid), `pid ${pid} to be gone`, 5_000);
    }
  });
});

Deno.test("command config applies defaults and rejects empty commands and unknown keys", () => {
  assert.deepEqual(command.config.parse({ command: "true" }), {
    command: "true",
    expected_exit_code: 0,
  });
  for (
    const input of [{}, { command: "  " }, { command: "true", exit_code: 0 }, {
      command: "true",
      expected_exit_code: -1,
    }]
  ) {
    assert.equal(command.config.safeParse(input).success, false, JSON.stringify(input));
  }
});

/** The `command` of `[services.probe.health_check.command]` after the registry expanded it. */
async function loadedCommand(command: string, env: Record<string, string>): Promise<string> {
  const plugins = PluginRegistry.discover({ cwd: "/nonexistent", home: "/nonexistent", env: {} });
  const source = `[services.probe.deployment]\nmode = "binary"\n` +
    `[services.probe.deployment.binary]\nbinary_path = "/bin/true"\n` +
    `[services.probe.health_check]\ntype = "command"\n` +
    `[services.probe.health_check.command]\ncommand = ${JSON.stringify(command)}\n`;
  const v = await validateRegistry({ source, env, plugins });
  assert.deepEqual(v.issues, []);
  const hc = v.registry!.services[0].health_check as { command?: { command: string } };
  return hc.command!.command;
}

Deno.test("command check: ${VAR} values are quoted where they land, so they cannot inject commands", async () => {
  await withTempDir(async (dir) => {
    const pwned = join(dir, "pwned");
    const evil = `x'"; touch ${pwned}; echo '$(touch ${pwned})\`touch ${pwned}\` \\`;
    const out = join(dir, "out");
    // The same value, unquoted, in '…', in "…", inside $(…), next to literal text.
    for (
      const [template, expected] of [
        ["printf %s ${EVIL} > OUT", evil],
        ["printf %s '${EVIL}' > OUT", evil],
        ['printf %s "${EVIL}" > OUT', evil],
        ['printf %s "pre ${EVIL} post" > OUT', `pre ${evil} post`],
        ["printf %s 'pre ${EVIL} post' > OUT", `pre ${evil} post`],
        ["printf %s pre${EVIL}post > OUT", `pre${evil}post`],
        ['printf %s "$(printf %s ${EVIL})" > OUT', evil],
        ["printf %s ${EMPTY:-} > OUT", ""],
        ["printf %s ${NOPE:-a b;c} > OUT", "a b;c"],
      ]
    ) {
      const cmd = await loadedCommand(template.replace("OUT", out), { EVIL: evil, EMPTY: "" });
      const result = await run({ command: cmd });
      assert.equal(result.healthy, true, `${template}: ${result.message}`);
      assert.equal(await readFile(out, "utf8"), expected, template);
      assert.ok(!existsSync(pwned), `${template} ran the injected command: ${cmd}`);
    }
  });
});

Deno.test("command check: $VAR without braces, $$ and the shell's own syntax are left to the shell", async () => {
  const cmd = await loadedCommand(
    '/usr/bin/test "$PROBE" = ok && /usr/bin/test $$PROBE = ok',
    { PROBE: "no" },
  );
  assert.equal(cmd, '/usr/bin/test "$PROBE" = ok && /usr/bin/test $PROBE = ok');
  assert.equal((await run({ command: cmd }, 10_000, { PROBE: "ok" })).healthy, true);
});
