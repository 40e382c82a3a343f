/**
 * Global options work anywhere on the line (issue 15, item 3), as `docker compose -f` does:
 * `--config`, `--json`, `--quiet` before the group, between group and command, or after it;
 * `--no-color` anywhere; `supervisor stop` and `plugins list` take them like every command.
 */
import assert from "node:assert/strict";
import { hoistGlobalOptions } from "../../cli/run.ts";
import { runCli } from "../_cli.ts";
import { Sandbox } from "./_registry.ts";

Deno.test("hoistGlobalOptions moves --config/--json/--quiet behind the command, never past --", () => {
  const env: Record<string, string | undefined> = {};
  assert.deepEqual(
    hoistGlobalOptions(["--config", "f.toml", "--json", "services", "validate"], env),
    ["services", "validate", "--config", "f.toml", "--json"],
  );
  assert.deepEqual(
    hoistGlobalOptions(["services", "--config=f.toml", "logs", "web", "-q", "--", "--json"], env),
    ["services", "logs", "web", "--config=f.toml", "-q", "--", "--json"],
  );
  assert.equal(env.NO_COLOR, undefined);
  assert.deepEqual(hoistGlobalOptions(["--no-color", "platform", "status"], env), [
    "platform",
    "status",
  ]);
  assert.equal(env.NO_COLOR, "1");
});

Deno.test("--config and --json before the group, between group and command, or after", async () => {
  await using sb = await Sandbox.create([{ name: "db" }, { name: "web", deps: ["db"] }]);
  const env = { PROVISIONING_HOME: sb.home };
  const after = await runCli(["services", "validate", "--config", sb.config], { env });
  assert.equal(after.code, 0, after.stderr);
  for (
    const args of [
      ["--config", sb.config, "services", "validate"],
      ["services", "--config", sb.config, "validate"],
      [`--config=${sb.config}`, "services", "validate"],
    ]
  ) {
    const r = await runCli(args, { env });
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stdout, after.stdout, args.join(" "));
  }
  const json = await runCli(["--json", "services", "--config", sb.config, "list"], { env });
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual(JSON.parse(json.stdout).map((s: { name: string }) => s.name), ["db", "web"]);
  const sup = await runCli(["supervisor", "stop", "--config", sb.config, "--json"], { env });
  assert.equal(sup.code, 0, sup.stderr);
  assert.deepEqual(JSON.parse(sup.stdout), { stopped: false });
  const plugins = await runCli(["--json", "plugins", "list", "--config", sb.config], { env });
  assert.equal(plugins.code, 0, plugins.stderr);
  assert.ok(Array.isArray(JSON.parse(plugins.stdout)));
  const colour = await runCli(["platform", "--no-color", "status", "--config", sb.config], { env });
  assert.equal(colour.code, 0, colour.stderr);
  assert.ok(!colour.stdout.includes("\u001b["), "no colour codes");
});

Deno.test("--quiet prints only failures and the summary of a start", async () => {
  await using sb = await Sandbox.create([{ name: "db" }, { name: "web", deps: ["db"] }]);
  const loud = await sb.cli(["services", "start", "web"]);
  assert.equal(loud.code, 0, loud.stderr);
  assert.match(loud.stdout, /Starting dependency: db/);
  await sb.cli(["platform", "stop"]);
  const quiet = await runCli(["-q", "--config", sb.config, "services", "start", "web"], {
    env: { PROVISIONING_HOME: sb.home },
  });
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.doesNotMatch(quiet.stdout, /Starting|Waiting|healthy\.\.\./);
  assert.ok(quiet.stdout.trim().length > 0, "the summary is still printed");
});
