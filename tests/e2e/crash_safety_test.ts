/**
 * Crash safety: `platform start` killed with SIGKILL at random points must never leave a corrupt
 * state file, a stale temp file, or a service running twice, and a normal start afterwards must
 * converge. The kill points come from a seeded PRNG; the seed is printed, and
 * `CRASH_SEED=<seed>` replays a run.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { cliCommand, ROOT } from "../_cli.ts";
import { isAlive } from "../../core/process/identity.ts";
import { stopServices } from "../../mod.ts";
import { pidsWithArg, type Sandbox, until } from "./_registry.ts";
import { cliSupervisorStatus, supervisedSandbox, supervisorPid } from "./_supervised.ts";

const KILLS = 50;
const MAX_DELAY_MS = 800;
const NAMES = ["a", "b", "c", "d"];

/** mulberry32: a small seeded PRNG with values in [0, 1). */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function startCli(sb: Sandbox): ChildProcess {
  return spawn(
    ...cliCommand(["platform", "start", "--config", sb.config]),
    {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: "1", PROVISIONING_HOME: sb.home },
      stdio: "ignore",
    },
  );
}

/** What is wrong with the state directory right now (empty when nothing). */
async function stateProblems(sb: Sandbox): Promise<string[]> {
  const dir = join(sb.home, "services", "state");
  const problems: string[] = [];
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    const file = join(dir, f);
    if (f.endsWith(".tmp")) {
      const age = await stat(file).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > 1_000) problems.push(`${f}: temp file left behind (${Math.round(age)} ms old)`);
      continue;
    }
    if (f.endsWith(".corrupt")) {
      problems.push(`${f}: a reader found a corrupt state file`);
      continue;
    }
    const text = await readFile(file, "utf8").catch(() => undefined);
    if (text === undefined) continue; // replaced between readdir and read
    try {
      JSON.parse(text);
    } catch (e) {
      problems.push(`${f}: not valid JSON (${(e as Error).message}): ${JSON.stringify(text)}`);
    }
  }
  return problems;
}

/** Services with more than one live process (by their unique `--name` argument). */
async function duplicates(sb: Sandbox): Promise<string[]> {
  const counts = await Promise.all(
    NAMES.map(async (n) => [n, await pidsWithArg(sb.marker(n))] as const),
  );
  return counts.filter(([, pids]) => pids.length > 1).map(([n, pids]) => `${n}: ${pids}`);
}

Deno.test("`platform start` killed with SIGKILL at random points never corrupts state or runs a service twice, and a normal start converges", async () => {
  const seed = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
  console.log(`crash safety seed: ${seed} (replay with CRASH_SEED=${seed})`);
  const random = prng(seed);
  await using sb = await supervisedSandbox([
    { name: "a", readyAfter: 50 },
    { name: "b", readyAfter: 100, deps: ["a"] },
    { name: "c", readyAfter: 150, deps: ["a"] },
    { name: "d", readyAfter: 80, deps: ["b", "c"] },
  ].map((s) => ({ ...s, autoStart: true, startup: { restart_on_failure: true } })));

  const p = await sb.open();
  const running: number[] = []; // services with a live process at each kill
  for (let i = 0; i < KILLS; i++) {
    const delay = Math.round(random() * MAX_DELAY_MS);
    // Half the time start from scratch; otherwise the start must finish what the last one left.
    if (random() < 0.5) {
      const stopped = await stopServices(p, [], { force: true });
      assert.equal(
        stopped.ok,
        true,
        `reset before kill ${i + 1}: ${JSON.stringify(stopped.outcomes)}`,
      );
      for (const n of NAMES) {
        assert.deepEqual(await pidsWithArg(sb.marker(n)), [], `${n} after reset`);
      }
    }
    const cli = startCli(sb);
    const exited = new Promise((resolve) => cli.once("exit", resolve));
    await new Promise((resolve) => setTimeout(resolve, delay)); // the random kill point
    cli.kill("SIGKILL");
    await exited;
    const where = `kill ${i + 1}/${KILLS} at ${delay} ms (seed ${seed})`;
    assert.deepEqual(await stateProblems(sb), [], `state after ${where}`);
    assert.deepEqual(await duplicates(sb), [], `services running twice after ${where}`);
    running.push((await Promise.all(NAMES.map((n) => pidsWithArg(sb.marker(n))))).flat().length);
  }
  const tally = (f: (n: number) => boolean) => running.filter(f).length;
  console.log(
    `kills with 0 / 1-3 / 4 services up: ${tally((n) => n === 0)} / ${
      tally((n) => n > 0 && n < 4)
    } / ${tally((n) => n === 4)}`,
  );

  const r = await sb.cli(["platform", "start", "--json"]);
  assert.equal(
    r.code,
    0,
    `the final start did not converge (seed ${seed}): ${r.stdout}${r.stderr}`,
  );
  const status = JSON.parse((await sb.cli(["platform", "status", "--json"])).stdout) as {
    services: { name: string; status: string; health: string; pid?: number }[];
  };
  for (const s of status.services) {
    assert.deepEqual([s.name, s.status, s.health], [s.name, "running", "healthy"]);
    assert.deepEqual(await pidsWithArg(sb.marker(s.name)), [s.pid], `processes of ${s.name}`);
  }
  assert.deepEqual(await stateProblems(sb), []);

  const sup = await supervisorPid(sb);
  const stop = await sb.cli(["platform", "stop"]);
  assert.equal(stop.code, 0, stop.stdout + stop.stderr);
  for (const n of NAMES) assert.deepEqual(await pidsWithArg(sb.marker(n)), [], `${n} after stop`);
  await until(
    async () => (await cliSupervisorStatus(sb)).running === false,
    "the supervisor to exit once nothing is watched",
    15_000,
  );
  if (sup) await until(async () => !(await isAlive(sup)), "the supervisor process to be gone");
});
