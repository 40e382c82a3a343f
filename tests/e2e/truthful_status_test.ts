/**
 * Status tells the truth, through the CLI, in the four cases where it used to lie: a service
 * that exits at once during start, a start cancelled with Ctrl+C, the wait between crash
 * restarts, and a service without a health check.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cliCommand } from "../_cli.ts";
import { until } from "../_until.ts";
import { isAlive } from "../../core/process/identity.ts";
import { cliStatus, supervisedSandbox } from "./_supervised.ts";
import { Sandbox } from "./_registry.ts";

Deno.test("a service that exits at once during start reads as failed with its exit code and last log lines", async () => {
  await using sb = await supervisedSandbox([{
    name: "bad",
    flags: ["--exit-after", "0", "--exit-code", "3"],
    startup: { restart_on_failure: true },
  }]);
  const r = await sb.cli(["services", "start", "bad"]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /❌ bad: Exited during startup with code 3/);
  const s = await cliStatus(sb, "bad");
  assert.equal(s.status, "failed");
  assert.match(s.message ?? "", /Exited during startup with code 3/);
  assert.doesNotMatch(s.message ?? "", /unwatched|no supervisor watched/);
  assert.equal(s.pid, undefined);
  assert.ok(s.last_log_lines?.length, `no last_log_lines in ${JSON.stringify(s)}`);
  assert.ok(s.last_log_lines!.every((l) => !l.startsWith("--- ")), "our banner lines leaked");
  const text = await sb.cli(["services", "status", "bad"]);
  assert.match(text.stdout, /Last log lines:\n {2}\S/);
});

Deno.test("Ctrl+C of a start stops what it started and status says the start was cancelled", async () => {
  await using sb = await Sandbox.create([{ name: "slow", readyAfter: 60_000, startTimeout: 60 }]);
  const cli = spawn(
    ...cliCommand(["services", "start", "slow", "--config", sb.config]),
    { env: { ...process.env, PROVISIONING_HOME: sb.home, NO_COLOR: "1" }, stdio: "pipe" },
  );
  let out = "";
  cli.stdout!.on("data", (d) => (out += d));
  cli.stderr!.on("data", (d) => (out += d));
  const closed = new Promise<string>((resolve) =>
    cli.once("exit", (code, signal) => resolve(`${code ?? signal}`))
  );
  let pid = 0;
  await until(async () => {
    const s = await cliStatus(sb, "slow");
    pid = s.pid ?? 0;
    return s.status === "starting" && pid > 0;
  }, "the service to be starting");
  process.kill(cli.pid!, "SIGINT"); // as Ctrl+C does
  assert.equal(await closed, "1", out);
  assert.match(out, /Start cancelled/);
  const s = await cliStatus(sb, "slow");
  assert.equal(s.status, "stopped", JSON.stringify(s));
  assert.match(s.message ?? "", /Start cancelled/);
  assert.doesNotMatch(s.message ?? "", /unwatched/);
  assert.equal(await isAlive(pid), false, "the cancelled start left its process running");
});

Deno.test("between crash restarts status says backoff, with the restart count and the next attempt", async () => {
  await using sb = await supervisedSandbox([{
    name: "crashy",
    startup: { restart_on_failure: true, max_restarts: 5, restart_delay: 3 },
  }]);
  const start = await sb.cli(["services", "start", "crashy"]);
  assert.equal(start.code, 0, start.stdout + start.stderr);
  // The first restart is immediate; a second crash soon after waits restart_delay.
  const first = (await cliStatus(sb, "crashy")).pid!;
  process.kill(first, "SIGKILL");
  let second = 0;
  await until(
    async () => {
      const s = await cliStatus(sb, "crashy");
      second = s.pid ?? 0;
      return s.status === "running" && second > 0 && second !== first;
    },
    "the first, immediate restart",
    15_000,
  );
  process.kill(second, "SIGKILL");
  await until(
    async () => (await cliStatus(sb, "crashy")).status === "backoff",
    "status backoff",
    10_000,
  );
  const s = await cliStatus(sb, "crashy");
  assert.equal(s.pid, undefined);
  assert.ok(
    s.next_attempt_at && Date.parse(s.next_attempt_at) > Date.now() - 1000,
    s.next_attempt_at,
  );
  assert.match(s.message ?? "", /restart 2 of 5/);
  const text = await sb.cli(["platform", "status"]);
  assert.match(text.stdout, /🟠 crashy - backoff/);
  assert.doesNotMatch(text.stdout, /⚪ crashy - stopped/);
});

Deno.test("a service without a health check is reported started, never healthy", async () => {
  await using sb = await Sandbox.create([{ name: "quiet", kind: "plain" }]);
  const r = await sb.cli(["services", "start", "quiet"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.doesNotMatch(r.stdout, /quiet is healthy/);
  assert.match(r.stdout, /Service quiet started \(no health check/);
  const s = await cliStatus(sb, "quiet");
  assert.equal(s.status, "running");
  assert.equal(s.health, "unknown");
});
