/**
 * Correctness at scale (issue 18): 300 `sleep` services in a seeded random DAG of 9 waves
 * (`scripts/gen_registry.ts` `sleepDag`), started through the CLI. Every edge is respected, every
 * PID is the service's own program and the one its state file names, a crash of one is restarted
 * by the supervisor while the other 299 keep their PIDs, and a stop leaves no process behind.
 * Timing is the benchmark's (`deno task bench scale`): the waits here are deadlines, generous
 * ones, for a slow shared machine.
 */
import assert from "node:assert/strict";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isAlive } from "../../core/process/identity.ts";
import { readState } from "../../core/state/store.ts";
import type { LifecycleEvent, LifecycleResult } from "../../mod.ts";
import { sleepDag, sleepRegistry } from "../../scripts/gen_registry.ts";
import { Sandbox, until } from "./_registry.ts";

const N = 300;
const PROGRAM = ["/bin/sleep", "3600"];
/** Every service carries it in its environment (with the sandbox's token as its value). */
const MARKER = "PROVISIONING_SCALE_TEST";

/** The command line of `pid` as its arguments; empty when it is gone. */
async function cmdline(pid: number): Promise<string[]> {
  const text = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  return text.split("\0").filter((a, i, all) => a !== "" || i < all.length - 1);
}

/** Live processes with the sandbox's home or its marker in their environment. */
async function carriers(sb: Sandbox): Promise<number[]> {
  const needles = [`\0PROVISIONING_HOME=${sb.home}\0`, `\0${MARKER}=${sb.token}\0`];
  const pids = (await readdir("/proc")).filter((e) => /^\d+$/.test(e)).map(Number);
  const hits = await Promise.all(pids.map(async (pid) => {
    if (pid === Deno.pid) return undefined;
    const env = `\0${await readFile(`/proc/${pid}/environ`, "latin1").catch(() => "")}`;
    return needles.some((n) => env.includes(n)) && (await isAlive(pid)) ? pid : undefined;
  }));
  return hits.filter((p): p is number => p !== undefined);
}

/** What each carrier runs, for a failure message. */
async function describe(pids: number[]): Promise<string> {
  const lines = await Promise.all(pids.map(async (p) => `${p}: ${(await cmdline(p)).join(" ")}`));
  return lines.join("\n");
}

Deno.test("300 services in a random DAG start in order, survive a crash of one, and stop clean", async (t) => {
  await using sb = await Sandbox.create([]);
  const dag = sleepDag(N, { seed: 18, waves: 9 });
  const ready = join(sb.dir, "ready"); // exists: a service is ready once it runs
  await writeFile(ready, "");
  await writeFile(
    sb.config,
    sleepRegistry(dag, {
      binary: PROGRAM[0],
      args: PROGRAM.slice(1),
      readyPath: ready,
      restartOnFailure: true,
      startTimeout: 600,
      env: { [MARKER]: sb.token },
    }),
  );
  assert.equal(new Set(dag.map((s) => s.wave)).size, 9);

  const r = await sb.cli(["platform", "start", "--json"]);
  assert.equal(r.code, 0, `platform start: ${r.stderr.slice(-3000)}`);
  const doc = JSON.parse(r.stdout) as LifecycleResult & { events: LifecycleEvent[] };
  const pids = new Map(doc.outcomes.map((o) => [o.name, o.pid]));

  await t.step("every service starts after all its dependencies are healthy", () => {
    assert.equal(doc.outcomes.length, N);
    assert.ok(doc.outcomes.every((o) => o.status === "started"), "all started");
    const at = (type: LifecycleEvent["type"], name: string) => {
      const i = doc.events.findIndex((e) => e.type === type && e.service === name);
      assert.ok(i >= 0, `a "${type}" event of ${name}`);
      return { i, ms: doc.events[i].elapsed_ms };
    };
    let edges = 0;
    for (const s of dag) {
      const starting = at("starting", s.name);
      const started = at("started", s.name);
      assert.ok(starting.i < started.i && starting.ms <= started.ms, `${s.name}: starting first`);
      for (const d of s.dependencies) {
        const healthy = at("healthy", d);
        assert.ok(
          healthy.i < starting.i && healthy.ms <= starting.ms,
          `${s.name} started (event ${starting.i}, ${starting.ms} ms) before its dependency ` +
            `${d} was healthy (event ${healthy.i}, ${healthy.ms} ms)`,
        );
        edges++;
      }
    }
    assert.ok(
      edges >= N - dag.filter((s) => s.wave === 0).length,
      "every later service has an edge",
    );
  });

  await t.step(
    "every pid is alive, runs the service's program and is its state file's",
    async () => {
      const p = await sb.open();
      assert.equal(new Set(pids.values()).size, N, "distinct pids");
      for (const s of dag) {
        const pid = pids.get(s.name);
        assert.ok(pid && (await isAlive(pid)), `${s.name}: pid ${pid} alive`);
        assert.deepEqual(await cmdline(pid), PROGRAM, `${s.name}: pid ${pid} runs its program`);
        assert.equal((await readState(p.paths, s.name))?.pid, pid, `${s.name}: state file's pid`);
      }
      // The last step's leftover search sees every one of them (else its "none" means nothing).
      const seen = new Set(await carriers(sb));
      assert.ok([...pids.values()].every((pid) => seen.has(pid!)), "every service found by env");
    },
  );

  await t.step(
    "a kill -9 of one is restarted by the supervisor; the other 299 keep their pids",
    async () => {
      const p = await sb.open();
      const victim = dag[Math.floor(N / 2)].name;
      const old = pids.get(victim)!;
      Deno.kill(old, "SIGKILL");
      let now: number | undefined;
      // Restarted means running again: its new pid is on record from the spawn ("starting"),
      // and "running" once its check has passed.
      await until(
        async () => {
          const st = await readState(p.paths, victim);
          now = st?.pid;
          return !!now && now !== old && st?.status === "running" && (await isAlive(now)) &&
            (await cmdline(now)).join(" ") === PROGRAM.join(" ");
        },
        `${victim} to run again under a new pid (killed ${old})`,
        120_000,
      );
      const s = await p.status(victim);
      assert.equal(s.status, "running", `${victim} is ${s.status}`);
      for (const other of dag) {
        if (other.name === victim) continue;
        const pid = pids.get(other.name)!;
        assert.equal(
          (await readState(p.paths, other.name))?.pid,
          pid,
          `${other.name} kept its pid`,
        );
        assert.ok(await isAlive(pid), `${other.name}: pid ${pid} still alive`);
      }
    },
  );

  await t.step("platform stop, then supervisor stop, leave no process behind", async () => {
    const stop = await sb.cli(["platform", "stop", "--json"]);
    assert.equal(stop.code, 0, `platform stop: ${stop.stderr.slice(-3000)}`);
    const supervisor = Number(
      (await readFile(join(sb.home, "run", "supervisor.pid"), "utf8").catch(() => "0")).split(
        /\s+/,
      )[0],
    );
    let left: number[] = [];
    await until(
      async () => (left = (await carriers(sb)).filter((p) => p !== supervisor)).length === 0,
      "every service process (and its log writer) to be gone after platform stop",
      60_000,
    ).catch(async (e) => {
      throw new Error(`${(e as Error).message}:\n${await describe(left)}`);
    });
    const down = await sb.cli(["supervisor", "stop"]);
    assert.equal(down.code, 0, `supervisor stop: ${down.stderr}`);
    await until(
      async () => (left = await carriers(sb)).length === 0,
      "no process with the sandbox's home or marker after supervisor stop",
      60_000,
    ).catch(async (e) => {
      throw new Error(`${(e as Error).message}:\n${await describe(left)}`);
    });
  });
});
