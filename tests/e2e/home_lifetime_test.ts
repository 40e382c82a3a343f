/**
 * A supervisor serves one home for as long as the home is its own: deleted and made anew under
 * it, the old supervisor restarts nothing more and exits, and `supervisor stop` reaches the new
 * one; and `supervisor status` while a supervisor exits answers "not running", never an error.
 */
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { runCli } from "../_cli.ts";
import { until } from "../_until.ts";
import { isAlive } from "../../core/process/identity.ts";
import { cliStatus, supervisedSandbox, supervisorPid } from "./_supervised.ts";
import { pidsWithArg } from "./_registry.ts";

Deno.test("a supervisor whose home was deleted and made anew restarts nothing and exits", async () => {
  // No port and no check: nothing stops a second incarnation from starting beside the first.
  await using sb = await supervisedSandbox([{
    name: "api",
    kind: "plain",
    startup: { restart_on_failure: true, max_restarts: 5 },
  }]);
  const first = await sb.cli(["services", "start", "api"]);
  assert.equal(first.code, 0, first.stdout + first.stderr);
  const oldSupervisor = (await supervisorPid(sb))!;
  const oldService = (await cliStatus(sb, "api")).pid!;

  await rm(sb.home, { recursive: true, force: true });
  // The service still runs: the new start finds it by its marker and a new supervisor adopts it.
  const again = await sb.cli(["services", "start", "api"]);
  assert.equal(again.code, 0, again.stdout + again.stderr);
  const newSupervisor = (await supervisorPid(sb))!;
  assert.ok(newSupervisor, "no supervisor watches the service in the new home");
  assert.notEqual(newSupervisor, oldSupervisor);

  // It crashes: the old supervisor must see that the home is no longer its own and exit
  // instead of restarting it; the new one restarts it — one process, not two.
  process.kill(oldService, "SIGKILL");
  await until(() => isAlive(oldSupervisor).then((a) => !a), "the old supervisor to exit", 10_000);
  let now: number[] = [];
  try {
    await until(
      async () => {
        now = await pidsWithArg(sb.marker("api"));
        return now.length === 1 && now[0] !== oldService;
      },
      "the new supervisor to restart the service",
      10_000,
    );
  } catch (e) {
    const log = await Deno.readTextFile(`${sb.home}/run/supervisor.log`).catch(() => "");
    throw new Error(`${(e as Error).message}; pids ${now}\n${log}\n${await sb.log("api")}`);
  }
  assert.equal(await isAlive(newSupervisor), true, "the new supervisor went away");
  assert.equal((await cliStatus(sb, "api")).pid, now[0]);

  const stop = await runCli(["supervisor", "stop"], { env: { PROVISIONING_HOME: sb.home } });
  assert.equal(stop.code, 0, stop.stderr);
  await until(() => isAlive(newSupervisor).then((a) => !a), "the new supervisor to stop", 10_000);
  const status = await runCli(["supervisor", "status"], { env: { PROVISIONING_HOME: sb.home } });
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /not running/);
});
