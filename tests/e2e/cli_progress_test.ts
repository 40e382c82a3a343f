/**
 * Long waits are not silent (issue 15, item 4), through the CLI: off a terminal a line every 5 s
 * per waiting service with the time waited, its start_timeout and the last check result; on a
 * terminal (a real pty from util-linux `script`) live lines redrawn in place; `--quiet` prints
 * only failures and the summary; a stop that had to SIGKILL says so; a forced stop names the
 * dependents it leaves running without the service.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cliShellCommand, ROOT } from "../_cli.ts";
import { Sandbox } from "./_registry.ts";

const ESC = String.fromCharCode(27);
/** Up one line, to its start, clear to the end of the screen. */
const ERASE = `${ESC}[1A\r${ESC}[J`;

Deno.test("a long wait prints where it stands every 5 s off a terminal; --quiet only the failure", async () => {
  // Ready after a minute, but start_timeout is 6 s: it fails after a 6 s wait.
  await using sb = await Sandbox.create([{ name: "slow", readyAfter: 60_000, startTimeout: 6 }]);
  const r = await sb.cli(["services", "start", "slow"]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const lines = r.stdout.split("\n").filter((l) => l.startsWith("slow: waiting"));
  assert.equal(lines.length, 1, r.stdout);
  assert.match(lines[0], /^slow: waiting 5s\/6s — .*(refused|ECONNREFUSED|HTTP)/);
  assert.ok(!r.stdout.includes(ESC), "no escape sequences off a terminal");

  const q = await sb.cli(["services", "start", "slow", "--quiet"]);
  assert.equal(q.code, 1);
  assert.doesNotMatch(q.stdout, /waiting|Starting service/, q.stdout);
  assert.match(q.stdout + q.stderr, /slow/);
});

Deno.test({
  name: "on a terminal the waiting line is live: redrawn in place with the elapsed time",
  ignore: !existsScript(),
  async fn() {
    await using sb = await Sandbox.create([{ name: "slow", readyAfter: 2_500, startTimeout: 10 }]);
    const cmd = cliShellCommand(["services", "start", "slow", "--config", sb.config]);
    // `script` gives the CLI a real pseudo-terminal; its output is what a user's terminal got.
    const r = spawnSync("script", ["-qefc", cmd, "/dev/null"], {
      cwd: ROOT,
      env: { ...process.env, PROVISIONING_HOME: sb.home, COLUMNS: "100" },
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const out = r.stdout;
    assert.match(out, /slow: waiting 0s\/10s/);
    assert.match(out, /slow: waiting [12]s\/10s/, "redrawn as the seconds pass");
    assert.ok(out.includes(ERASE), "the live line is erased before it is drawn again");
    assert.match(out, /✅ Service slow is healthy/);
    // After the summary no live line is left: the last thing drawn was erased.
    const tail = out.slice(out.lastIndexOf("slow: waiting"));
    assert.ok(tail.includes(ERASE));
  },
});

Deno.test("a stop that had to SIGKILL says so; a forced stop warns who runs on without it", async () => {
  await using sb = await Sandbox.create([
    { name: "stubborn", flags: ["--ignore-sigterm"], shutdownTimeout: 1 },
    { name: "db" },
    { name: "web", deps: ["db"] },
  ]);
  assert.equal((await sb.cli(["services", "start", "stubborn", "web"])).code, 0);
  const stop = await sb.cli(["services", "stop", "stubborn"]);
  assert.equal(stop.code, 0, stop.stdout + stop.stderr);
  assert.match(
    stop.stdout,
    /✅ Stopped stubborn — stopped with SIGKILL after 1s \(SIGTERM was not enough\)/,
  );

  const forced = await sb.cli(["services", "stop", "db", "--force"]);
  assert.equal(forced.code, 0, forced.stdout + forced.stderr);
  assert.match(forced.stdout, /⚠️ {2}web runs on without db/);
  const plain = await sb.cli(["services", "stop", "web"]);
  assert.doesNotMatch(plain.stdout, /runs on without/);
});

function existsScript(): boolean {
  return spawnSync("script", ["--version"]).status === 0;
}
