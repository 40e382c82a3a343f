/**
 * `provisioning completion bash|zsh|fish`: each script is loaded into its real shell and asked
 * for completions — a group, a command, a flag, and service names, categories and operations
 * read from a temp registry through `completion --list`. A shell that is not installed skips
 * its test with a warning (`.ci/run` installs them).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { buildProgram } from "../../cli/run.ts";
import { completionNodes } from "../../cli/commands/completion.ts";
import { cliShellCommand, runCli } from "../_cli.ts";

const REGISTRY = `
[services.alpha-web]
name = "alpha-web"
type = "platform"
category = "web"
description = "front end"
required_for = ["checkout"]
dependencies = ["alpha-db"]

[services.alpha-web.deployment]
mode = "binary"

[services.alpha-web.deployment.binary]
binary_path = "/bin/sleep"
args = ["1000"]

[services.alpha-db]
name = "alpha-db"
type = "infrastructure"
category = "data"
description = "database"
required_for = ["checkout", "reports"]

[services.alpha-db.deployment]
mode = "binary"

[services.alpha-db.deployment.binary]
binary_path = "/bin/sleep"
args = ["1000"]
`;

/** The shell's path on PATH, if installed. */
function which(name: string): string | undefined {
  return (Deno.env.get("PATH") ?? "").split(delimiter).map((d) => join(d, name)).find(existsSync);
}

/** A temp dir with the registry and a `provisioning` wrapper running this checkout's cli.ts. */
async function sandbox() {
  const dir = await mkdtemp(join(tmpdir(), "prov-completion-"));
  const registry = join(dir, "services.toml");
  await writeFile(registry, REGISTRY);
  const bin = join(dir, "bin");
  await Deno.mkdir(bin);
  const wrapper = join(bin, "provisioning");
  await writeFile(
    wrapper,
    `#!/bin/sh\nexec ${cliShellCommand([])} "$@"\n`,
    { mode: 0o755 },
  );
  return {
    dir,
    registry,
    env: {
      PATH: `${bin}${delimiter}${Deno.env.get("PATH")}`,
      PROVISIONING_HOME: join(dir, "home"),
      NO_COLOR: "1",
    },
    [Symbol.asyncDispose]: () => rm(dir, { recursive: true, force: true }),
  };
}

type Sandbox = Awaited<ReturnType<typeof sandbox>>;

/** Words typed (the last one is being completed), more environment, and the completions. */
interface Case {
  words: string[];
  env?: Record<string, string>;
  want: string[];
}

/** The cases every shell must complete. */
function cases(sb: Sandbox): Case[] {
  return [
    { words: ["provisioning", "pla"], want: ["platform"] },
    { words: ["provisioning", "services", "sta"], want: ["start", "status"] },
    { words: ["provisioning", "services", "start", "--skip-pre"], want: ["--skip-preflight"] },
    {
      words: ["provisioning", "--config", sb.registry, "services", "stop", "alpha-"],
      want: ["alpha-db", "alpha-web"],
    },
    {
      words: ["provisioning", "services", "start", "alpha-db", "alpha-"],
      env: { PROVISIONING_SERVICES: sb.registry },
      want: ["alpha-db", "alpha-web"],
    },
    {
      words: ["provisioning", "services", "list", "--config", sb.registry, "--category", ""],
      want: ["data", "web"],
    },
    {
      words: ["provisioning", "services", "list", "--config", sb.registry, "--category", "d"],
      want: ["data"],
    },
    {
      words: ["provisioning", "services", "check", "--config", sb.registry, ""],
      want: ["checkout", "reports"],
    },
    { words: ["provisioning", "help", "services", "dep"], want: ["dependencies"] },
    { words: ["provisioning", "completion", "z"], want: ["zsh"] },
  ];
}

/** The script `completion SHELL` prints, written to the sandbox. */
async function script(sb: Sandbox, shell: string): Promise<string> {
  const r = await runCli(["completion", shell]);
  assert.equal(r.code, 0, r.stderr);
  const file = join(sb.dir, `provisioning.${shell}`);
  await writeFile(file, r.stdout);
  return file;
}

async function output(cmd: string, args: string[], env: Record<string, string>, cwd: string) {
  const r = await new Deno.Command(cmd, { args, env, cwd, stdout: "piped", stderr: "piped" })
    .output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: r.code, stdout: text(r.stdout), stderr: text(r.stderr) };
}

const words = (stdout: string) =>
  stdout.split("\n").map((l) => l.split("\t")[0]).filter(Boolean).sort();

/** Ask the shell through `ask` to complete each case's last word; compare with what is wanted. */
async function check(sb: Sandbox, ask: (c: Case) => Promise<string>) {
  for (const c of cases(sb)) {
    const got = await ask(c);
    assert.deepEqual(words(got), c.want, `completing "${c.words.join(" ")}": ${got}`);
  }
}

Deno.test("`completion --list` prints the registry's words, one a line", async () => {
  await using sb = await sandbox();
  const list = async (what: string) => {
    const r = await runCli(["completion", "--list", what, "--config", sb.registry]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  assert.equal(await list("services"), "alpha-web\nalpha-db\n");
  assert.equal(await list("categories"), "web\ndata\n");
  assert.equal(await list("operations"), "checkout\nreports\n");
});

Deno.test("`completion --list` of an unreadable registry prints nothing, exit 0", async () => {
  await using sb = await sandbox();
  const bad = join(sb.dir, "bad.toml");
  await writeFile(bad, "services = [\n");
  for (const config of [bad, join(sb.dir, "missing.toml")]) {
    const r = await runCli(["completion", "--list", "services", "--config", config]);
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, "", ""]);
  }
});

Deno.test("`completion` of an unknown shell is a usage error naming bash, zsh and fish", async () => {
  const r = await runCli(["completion", "tcsh"]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, "");
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, /"tcsh".*bash, zsh, fish/);
});

Deno.test("every script names every command and flag of the built tree", async () => {
  const nodes = completionNodes(buildProgram(() => () => Promise.resolve()));
  for (const shell of ["bash", "zsh", "fish"]) {
    const r = await runCli(["completion", shell]);
    assert.equal(r.code, 0, r.stderr);
    for (const n of nodes) {
      assert.ok(r.stdout.includes(`'flags:${n.path}'`), `${shell}: flags of "${n.path}"`);
      for (const [flag] of n.flags) assert.ok(r.stdout.includes(flag), `${shell}: ${flag}`);
      for (const [name] of n.commands) assert.ok(r.stdout.includes(name), `${shell}: ${name}`);
    }
  }
});

/** Run the test for one shell, or skip it with a warning when the shell is not installed. */
function shellTest(shell: string, fn: (sb: Sandbox, bin: string) => Promise<void>) {
  const bin = which(shell);
  if (!bin) console.warn(`⚠️  ${shell} is not installed: its completion test is skipped`);
  Deno.test({
    name: `the ${shell} script completes groups, commands, flags and registry words`,
    ignore: !bin,
    fn: async () => {
      await using sb = await sandbox();
      await fn(sb, bin!);
    },
  });
}

shellTest("bash", async (sb, bash) => {
  const file = await script(sb, "bash");
  // The function `complete -p` names, called as readline would: COMP_WORDS and COMP_CWORD.
  const driver = `source "$1"; shift
spec=$(complete -p provisioning) || exit 3
fn=\${spec#*-F }; fn=\${fn%% *}
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=\${#COMP_LINE}
COMPREPLY=()
"$fn" provisioning "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\\n' "\${COMPREPLY[@]}"`;
  await check(sb, async (c) => {
    const env = { ...sb.env, ...c.env };
    const r = await output(
      bash,
      ["--norc", "--noprofile", "-c", driver, "bash", file, ...c.words],
      env,
      sb.dir,
    );
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  });
});

shellTest("zsh", async (sb, zsh) => {
  const file = await script(sb, "zsh");
  // A real completion widget in a pseudo-terminal (zpty): the line is typed, then TAB. Every
  // compadd is wrapped to note the matches it would add (matched by zsh itself, `-O`).
  const out = join(sb.dir, "zsh.out");
  const setup = join(sb.dir, "setup.zsh");
  await writeFile(
    setup,
    `PS1='' RPS1=''
autoload -Uz compinit && compinit -u -d ${join(sb.dir, ".zcompdump")}
source ${file}
compadd() {
  if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\\ * ]]; then builtin compadd "$@"; return; fi
  local -a hits
  builtin compadd -O hits "$@"
  (( $#hits )) && print -rl -- $hits >> ${out}
  builtin compadd "$@"
}
__done() { print -r -- '<done>' >> ${out} }
comppostfuncs=(__done)
`,
  );
  const driver = `zmodload zsh/zpty || exit 3
zpty z 'zsh -f -i'
zpty -w z "source ${setup}"
zpty -w -n z "$1"$'\\t'
for i in {1..400}; do grep -q '<done>' ${out} 2>/dev/null && break; sleep 0.05; done
zpty -d z
grep -v '<done>' ${out}
exit 0`;
  await check(sb, async (c) => {
    await writeFile(out, "");
    const line = c.words.join(" ");
    const r = await output(zsh, ["-f", "-c", driver, "zsh", line], { ...sb.env, ...c.env }, sb.dir);
    assert.equal(r.code, 0, r.stderr);
    const done = await Deno.readTextFile(out);
    assert.ok(done.includes("<done>"), `zsh never finished completing "${line}": ${r.stderr}`);
    return r.stdout;
  });
});

shellTest("fish", async (sb, fish) => {
  const file = await script(sb, "fish");
  const env = {
    ...sb.env,
    XDG_CONFIG_HOME: join(sb.dir, "config"),
    XDG_DATA_HOME: join(sb.dir, "data"),
  };
  await check(sb, async (c) => {
    const line = c.words.join(" ");
    const r = await output(
      fish,
      ["--no-config", "-c", `source ${file}; complete -C $LINE`],
      { ...env, ...c.env, LINE: line },
      sb.dir,
    );
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  });
});
