/**
 * `platform reload` through the CLI against real demo services: the edited registry is applied
 * to what runs — a changed deployment restarts that service alone, a removed one is stopped
 * (nothing of it left), an added auto-start one starts, a new health check is taken by the
 * supervisor without a restart, `restart_with_dependencies` restarts a dependent with its
 * dependency — while an invalid registry and `--dry-run` change nothing.
 */
import assert from "node:assert/strict";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parse, stringify } from "smol-toml";
import { statePaths } from "../../core/state/files.ts";
import { readState } from "../../core/state/store.ts";
import type { LifecycleEvent, Outcome, ReloadPlan } from "../../mod.ts";
import { pidsWithArg, type Sandbox, until } from "./_registry.ts";
import { cliStatus, spawnLines, supervisedSandbox, supervisorLines } from "./_supervised.ts";

type Table = Record<string, Record<string, unknown>>;

/** Rewrite the sandbox's registry: `fn` edits its `[services]` tables. */
async function edit(sb: Sandbox, fn: (services: Record<string, Table>) => void): Promise<void> {
  const doc = parse(await readFile(sb.config, "utf8")) as { services: Record<string, Table> };
  fn(doc.services);
  await writeFile(sb.config, stringify(doc));
}

/** The `[deployment.binary]` table of a service. */
const binary = (t: Table) => t.deployment.binary as { args: string[]; env_file?: string };

/** What `platform reload --json` prints. */
interface ReloadDoc {
  diff: ReloadPlan["diff"];
  plan: ReloadPlan;
  ok?: boolean;
  outcomes?: Outcome[];
  events?: LifecycleEvent[];
}

/** `platform reload --json [more]`: its exit code and document. */
async function reload(sb: Sandbox, ...more: string[]): Promise<{ code: number; doc: ReloadDoc }> {
  const r = await sb.cli(["platform", "reload", "--json", ...more]);
  assert.ok(r.stdout.trim(), `platform reload printed nothing (exit ${r.code}): ${r.stderr}`);
  return { code: r.code, doc: JSON.parse(r.stdout) };
}

async function startPlatform(sb: Sandbox, ...names: string[]): Promise<void> {
  const r = await sb.cli(["platform", "start", ...names]);
  assert.equal(r.code, 0, `platform start: ${r.stdout}${r.stderr}`);
}

/** The PIDs of running services, by name. */
async function pids(sb: Sandbox, ...names: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const name of names) {
    const s = await cliStatus(sb, name);
    assert.equal(s.status, "running", `${name} is ${s.status}: ${s.message ?? ""}`);
    out[name] = s.pid!;
  }
  return out;
}

/** A service's state record in the sandbox's home. */
const stateOf = (sb: Sandbox, name: string) => readState(statePaths(sb.home), name);

Deno.test("reload restarts only the service whose args changed; the others keep their pids", async () => {
  await using sb = await supervisedSandbox([
    { name: "db", autoStart: true },
    { name: "web", deps: ["db"], autoStart: true },
    { name: "cache", autoStart: true },
  ]);
  await startPlatform(sb);
  const before = await pids(sb, "db", "web", "cache");
  const hash = (await stateOf(sb, "db"))?.config_hash;
  assert.match(hash ?? "", /^[0-9a-f]{12}$/, "a start records the hash of its configuration");

  await edit(sb, (s) => binary(s.db).args.push("--ready-from", "start"));
  const { code, doc } = await reload(sb);
  assert.equal(code, 0, JSON.stringify(doc));
  assert.deepEqual(doc.diff.changed, [
    { name: "db", keys: ["deployment.binary.args"], deployment: true },
  ]);
  assert.deepEqual(doc.diff.added, []);
  assert.deepEqual(doc.diff.removed, []);
  assert.deepEqual(doc.diff.unchanged.sort(), ["cache", "web"]);
  assert.deepEqual(doc.plan.restart, ["db"], "its dependent does not ask to restart with it");
  assert.deepEqual(doc.outcomes?.map((o) => [o.name, o.status]), [["db", "started"]]);

  const after = await pids(sb, "db", "web", "cache");
  assert.notEqual(after.db, before.db, "db runs its new command");
  assert.equal(after.web, before.web, "web kept its process");
  assert.equal(after.cache, before.cache, "cache kept its process");
  assert.ok((await pidsWithArg(sb.marker("db"))).includes(after.db));
  const st = await stateOf(sb, "db");
  assert.notEqual(st?.config_hash, hash, "the new start records the new configuration");

  const again = await reload(sb);
  assert.equal(again.code, 0);
  assert.deepEqual(again.doc.diff.changed, [], "a second reload finds nothing to do");
  assert.deepEqual(await pids(sb, "db", "web", "cache"), after);
});

Deno.test("reload starts an added auto-start service and stops a removed one, leaving nothing of it", async () => {
  await using sb = await supervisedSandbox([
    { name: "api", autoStart: true },
    { name: "old", autoStart: true, flags: ["--fork", "1"] },
    // Unwatched (no check, no restart policy): only its state record is left to stop it by.
    { name: "bare", kind: "plain", autoStart: true },
    { name: "new", autoStart: true },
  ]);
  let added: Table | undefined;
  await edit(sb, (s) => {
    added = s.new;
    delete s.new;
  });
  await startPlatform(sb);
  const before = await pids(sb, "api", "old", "bare");
  const oldProcesses = [
    ...await pidsWithArg(sb.marker("old")),
    ...await pidsWithArg(`${sb.marker("old")}-child`), // what it forked
  ];
  assert.equal(oldProcesses.length, 2, "old runs, with its forked child");
  await assert.rejects(stat(join(sb.home, "run", "watch", "bare.json")), "bare is not watched");

  await edit(sb, (s) => {
    delete s.old;
    delete s.bare;
    s.new = added!;
  });
  const { code, doc } = await reload(sb);
  assert.equal(code, 0, JSON.stringify(doc));
  assert.deepEqual(doc.diff.added, ["new"]);
  assert.deepEqual(doc.diff.removed, ["bare", "old"]);
  assert.deepEqual(doc.diff.changed, []);
  assert.deepEqual(doc.diff.unchanged, ["api"]);
  const outcome = Object.fromEntries(doc.outcomes!.map((o) => [o.name, o.status]));
  assert.deepEqual(outcome, { old: "stopped", bare: "stopped", new: "started" });

  assert.deepEqual(await pidsWithArg(sb.marker("old")), [], "no process of old is left");
  assert.deepEqual(await pidsWithArg(`${sb.marker("old")}-child`), []);
  assert.ok(oldProcesses.every((pid) => !existsPid(pid)), "not even its forked child");
  assert.deepEqual(await pidsWithArg(sb.marker("bare")), [], "nor of bare");
  assert.ok(!existsPid(before.bare));
  for (const name of ["old", "bare"]) {
    const st = await stateOf(sb, name);
    assert.equal(st?.status, "stopped", name);
    assert.equal(st?.message, "Removed from the registry", name);
    assert.equal(st?.pid, undefined, name);
  }
  const watch = join(sb.home, "run", "watch", "old.json");
  await assert.rejects(stat(watch), "the supervisor no longer watches it");
  assert.equal((await pids(sb, "api")).api, before.api, "api kept its process");
  await pids(sb, "new");

  const again = await reload(sb);
  assert.deepEqual(again.doc.diff.removed, [], "a stopped record is not removed twice");
});

/** Whether a process with `pid` exists (a zombie counts as gone). */
function existsPid(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/\) [ZX] /.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

Deno.test("reload of a registry that does not validate changes nothing (exit 2, validate's lines)", async () => {
  await using sb = await supervisedSandbox([{ name: "api", autoStart: true }]);
  await startPlatform(sb);
  const before = await pids(sb, "api");
  const stateBefore = await stateOf(sb, "api");
  const valid = await readFile(sb.config, "utf8");

  await edit(sb, (s) => {
    binary(s.api).args.push("--ready-from", "start"); // would restart it, were it valid
    s.api.health_check.interval = -1;
    s.api.startup.restart_with_dependencie = true;
  });
  const r = await sb.cli(["platform", "reload"]);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  const v = await sb.cli(["services", "validate", "--json"]);
  const report = JSON.parse(v.stdout) as { errors: string[]; services: { errors: string[] }[] };
  const lines = [...report.errors, ...report.services.flatMap((s) => s.errors)];
  assert.equal(lines.length, 2, v.stdout);
  for (const line of lines) assert.ok(r.stderr.includes(`❌ ${line}`), `${line}\n${r.stderr}`);

  const stateAfter = await stateOf(sb, "api");
  assert.deepEqual(stateAfter, stateBefore, "its record is as it was");
  assert.ok((await pidsWithArg(sb.marker("api"))).includes(before.api), "its process runs on");
  await writeFile(sb.config, valid);
  assert.deepEqual(await pids(sb, "api"), before);
});

Deno.test("a changed health check is taken by the supervisor without a restart", async () => {
  await using sb = await supervisedSandbox([
    { name: "api", autoStart: true, startup: { restart_on_failure: false } },
  ]);
  await startPlatform(sb);
  const before = await pids(sb, "api");
  const spawns = (await spawnLines(sb, "api")).length;

  // The new check asks for a status the service never answers: it turns unhealthy.
  await edit(sb, (s) => {
    (s.api.health_check.http as Record<string, unknown>).expected_status = 299;
  });
  const { code, doc } = await reload(sb);
  assert.equal(code, 0, JSON.stringify(doc));
  assert.deepEqual(doc.diff.changed, [
    { name: "api", keys: ["health_check.http.expected_status"], deployment: false },
  ]);
  assert.deepEqual(doc.plan.update, ["api"]);
  assert.deepEqual(doc.plan.restart, []);
  assert.deepEqual(doc.outcomes?.map((o) => [o.name, o.status, o.pid]), [
    ["api", "already_running", before.api],
  ]);

  await until(
    async () => (await stateOf(sb, "api"))?.message?.startsWith("Unhealthy:") ?? false,
    'the supervisor to flag api "Unhealthy:" with its new check',
    15_000,
  );
  assert.deepEqual(await pids(sb, "api"), before, "its process was not touched");
  assert.equal((await spawnLines(sb, "api")).length, spawns, "it was not spawned again");
  assert.ok(
    (await supervisorLines(sb, "api")).some((l) => l.text.startsWith("new settings")),
    "the supervisor says it took new settings",
  );
  const again = await reload(sb);
  assert.deepEqual(again.doc.diff.changed, [], "the record holds the applied configuration");
});

Deno.test("reload --dry-run prints the diff and the plan and changes nothing", async () => {
  await using sb = await supervisedSandbox([
    { name: "api", autoStart: true },
    { name: "gone", autoStart: true },
    { name: "bare", kind: "plain", autoStart: true },
  ]);
  await startPlatform(sb);
  const before = await pids(sb, "api", "gone", "bare");
  await edit(sb, (s) => {
    binary(s.api).args.push("--ready-from", "start");
    binary(s.bare).args.push("--ready-from", "start");
    delete s.gone;
  });
  const { code, doc } = await reload(sb, "--dry-run");
  assert.equal(code, 0, JSON.stringify(doc));
  assert.deepEqual(doc.diff.changed, [
    { name: "api", keys: ["deployment.binary.args"], deployment: true },
    // Unwatched: no old definition to tell the keys, only that its deployment changed.
    { name: "bare", keys: ["deployment"], deployment: true },
  ]);
  assert.deepEqual(doc.diff.removed, ["gone"]);
  assert.deepEqual(doc.plan.restart, ["api", "bare"]);
  assert.deepEqual(doc.plan.stop, ["gone"]);
  assert.equal(doc.outcomes, undefined, "nothing was done");

  const text = await sb.cli(["platform", "reload", "--dry-run"]);
  assert.equal(text.code, 0);
  assert.match(text.stdout, /~ api\s+deployment\.binary\.args → would restart/);
  assert.match(text.stdout, /- gone\s+would stop/);
  assert.match(text.stdout, /Dry run: nothing was changed/);

  assert.deepEqual(await pids(sb, "api", "bare"), { api: before.api, bare: before.bare });
  assert.equal((await stateOf(sb, "gone"))?.status, "running");
  assert.ok((await pidsWithArg(sb.marker("gone"))).includes(before.gone));
});

Deno.test("restart_with_dependencies restarts a dependent with its changed dependency; others keep their pid", async () => {
  await using sb = await supervisedSandbox([
    { name: "db", autoStart: true },
    { name: "web", deps: ["db"], autoStart: true, startup: { restart_with_dependencies: true } },
    { name: "api", deps: ["db"], autoStart: true },
  ]);
  await startPlatform(sb);
  const before = await pids(sb, "db", "web", "api");

  await edit(sb, (s) => binary(s.db).args.push("--ready-from", "start"));
  const { code, doc } = await reload(sb);
  assert.equal(code, 0, JSON.stringify(doc));
  assert.deepEqual(doc.diff.changed.map((c) => c.name), ["db"]);
  assert.deepEqual(doc.plan.restart, ["db", "web"]);
  const events = doc.events!;
  const at = (type: string, name: string) =>
    events.findIndex((e) => e.type === type && e.service === name);
  assert.ok(at("stopped", "web") < at("stopping", "db"), "web stops before db");
  assert.ok(at("healthy", "db") < at("starting", "web"), "web starts once db is healthy");

  const after = await pids(sb, "db", "web", "api");
  assert.notEqual(after.db, before.db);
  assert.notEqual(after.web, before.web, "web restarted with db");
  assert.equal(after.api, before.api, "api, without the flag, kept its process");
});

Deno.test("reload restarts a service whose env_file changed, naming the file", async () => {
  await using sb = await supervisedSandbox([{ name: "api", autoStart: true }]);
  const envFile = join(sb.dir, "api.env");
  await writeFile(envFile, "# settings\nGREETING=hello\n");
  await edit(sb, (s) => (binary(s.api).env_file = envFile));
  await startPlatform(sb);
  const before = await pids(sb, "api");

  await writeFile(envFile, "# settings, reworded\nGREETING=hello\n");
  const same = await reload(sb);
  assert.deepEqual(same.doc.diff.changed, [], "a comment is not a change");

  await writeFile(envFile, "GREETING=bonjour\n");
  const { code, doc } = await reload(sb);
  assert.equal(code, 0, JSON.stringify(doc));
  assert.deepEqual(doc.diff.changed, [
    { name: "api", keys: ["deployment.binary.env_file"], deployment: true },
  ]);
  assert.notEqual((await pids(sb, "api")).api, before.api);
});
