/**
 * Help that teaches: every command and group has examples in `cli/help.ts`, each example is a
 * command line the CLI accepts, and `help GROUP COMMAND` shows that command's help.
 */
import assert from "node:assert/strict";
import type { Command } from "commander";
import { buildProgram } from "../../cli/run.ts";
import type { Run } from "../../cli/commands/_common.ts";
import { allCommands, commandPath, EXAMPLES, expandHelp } from "../../cli/help.ts";
import { hoistGlobalOptions } from "../../cli/run.ts";
import { loadLib } from "../../cli/commands/_lib.ts";
import { runCli } from "../_cli.ts";

/** The tree with actions that only note which command parsed; its output captured. */
// Parsing runs option parsers (`--since`) that use the library, as the entry loads it first.
await loadLib();

function tree(argv?: string[]): { program: Command; reached: string[]; output: string[] } {
  const reached: string[] = [];
  const output: string[] = [];
  const run: Run = () => (...args) => {
    reached.push(commandPath(args.at(-1) as Command));
    return Promise.resolve();
  };
  const program = buildProgram(run, argv);
  for (const cmd of allCommands(program)) {
    cmd.configureOutput({ writeOut: (s) => output.push(s), writeErr: (s) => output.push(s) });
  }
  return { program, reached, output };
}

Deno.test("every command and group has examples in cli/help.ts, and none is stale", () => {
  const paths = allCommands(tree().program).map(commandPath);
  const missing = paths.filter((p) => !EXAMPLES[p]?.length);
  assert.deepEqual(missing, [], `add examples to EXAMPLES in cli/help.ts for: ${missing}`);
  const stale = Object.keys(EXAMPLES).filter((k) => !paths.includes(k));
  assert.deepEqual(stale, [], `EXAMPLES names commands that do not exist: ${stale}`);
});

Deno.test("every example is a command line the CLI parses, reaching its own command", async () => {
  for (const [path, examples] of Object.entries(EXAMPLES)) {
    for (const [line] of examples) {
      const words = line.split(/\s+/);
      const end = words.findIndex((w) => [">", ">>", "|", "&&"].includes(w));
      const argv = words.slice(1, end === -1 ? undefined : end);
      assert.equal(words[0], "provisioning", line);
      // Built as the entry builds it for this argv (a command that runs: its own group only).
      const args = hoistGlobalOptions(argv, {});
      const { program, reached, output } = tree(args);
      let helped = false;
      try {
        await program.parseAsync(await expandHelp(program, args), {
          from: "user",
        });
      } catch (e) {
        helped = (e as { code?: string }).code === "commander.helpDisplayed";
        if (!helped) assert.fail(`"${line}" does not parse: ${e}\n${output.join("")}`);
      }
      if (helped) continue;
      assert.equal(reached.length, 1, `"${line}" ran no command`);
      assert.ok(
        path === "" || reached[0] === path || reached[0].startsWith(`${path} `),
        `"${line}" (an example of "${path}") runs "${reached[0]}"`,
      );
    }
  }
});

Deno.test("a command that runs gets its own group only; help, completion and typos the whole tree", () => {
  const names = (argv?: string[]) => tree(argv).program.commands.map((c) => c.name());
  const all = names();
  assert.ok(all.length > 5, all.join(" "));
  assert.deepEqual(names(["platform", "status", "--json"]), ["platform"]);
  assert.deepEqual(names(["why", "api"]), ["why"]);
  for (
    const argv of [
      ["platform", "status", "--help"],
      ["help", "platform"],
      [],
      ["completion", "bash"],
      ["platfrom", "status"],
      ["--config", "x.toml", "platform", "status"],
    ]
  ) assert.deepEqual(names(argv), all, argv.join(" "));
});

Deno.test("every command's help ends with its Examples section", () => {
  const { program, output } = tree();
  for (const cmd of allCommands(program)) {
    output.length = 0;
    cmd.outputHelp();
    const text = output.join("");
    const path = commandPath(cmd);
    const first = EXAMPLES[path][0][0];
    assert.match(text, /\nOptions:\n[\s\S]*\nExamples:\n/, `help of "${path}"`);
    assert.ok(text.includes(`\n  ${first}`), `help of "${path}" shows "${first}"`);
  }
});

Deno.test("`help services start` shows that command's help and examples, exit 0", async () => {
  const r = await runCli(["help", "services", "start"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Usage: provisioning services start \[options\] <names\.\.\.>/);
  assert.match(r.stdout, /--skip-preflight/);
  assert.match(r.stdout, /\nExamples:\n {2}provisioning services start /);
});

Deno.test("`help` alone shows the top-level help; `services help start` works too", async () => {
  const top = await runCli(["help"]);
  assert.equal(top.code, 0, top.stderr);
  assert.match(top.stdout, /^Usage: provisioning \[options\] \[command\]/);
  assert.match(top.stdout, /help \[command\.\.\.\]/);
  assert.match(top.stdout, /\nExamples:\n/);
  const nested = await runCli(["services", "help", "start"]);
  assert.equal(nested.code, 0, nested.stderr);
  assert.match(nested.stdout, /^Usage: provisioning services start /);
});

Deno.test("`help` of an unknown command is a usage error naming the commands there", async () => {
  const r = await runCli(["help", "services", "strat"]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, "");
  assert.match(
    r.stderr,
    /^❌ Unknown command "services strat"\n {3}Commands of "services": list, /,
  );
});
