/**
 * `services logs` / `platform logs` of several services through the real CLI (issue 15, item 5),
 * as `docker compose logs`: every service (or the named ones) behind `name | `, merged in time
 * order; `--follow` of all until SIGTERM; `--timestamps`; `--since`; `--json` as one document
 * and as JSON lines; colour only on a TTY. Demo services (`examples/platform/service.mjs`) write
 * the lines; a registry of log files written here pins down what a time means for lines that
 * carry none (the next known time, else the file's mtime) and that rotated files older than
 * `--since` are skipped.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { appendFile, mkdir, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { cliCommand, cliShellCommand, runCli } from "../_cli.ts";
import { linePrefix } from "../../cli/commands/_logs.ts";
import { startApiDouble } from "../k8s/api_double.ts";
import { Sandbox, until } from "./_registry.ts";

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
/** The time a demo service's line (`<ISO> name event`) or our `--- <ISO> ...` line starts with. */
const ownTime = (line: string) => /^(?:--- )?(\S+Z) /.exec(line)?.[1];

const out = (r: { stdout: string; stderr: string }) => `${r.stdout}\n${r.stderr}`;
const linesOf = (text: string) => text.split("\n").filter((l) => l !== "");

/** `name | rest` lines: the name (padding removed), the prefix's width and the rest. */
function split(line: string): { service: string; width: number; rest: string } {
  const m = /^(\S+)( *) \| (.*)$/.exec(line);
  assert.ok(m, `no "name | " prefix: ${JSON.stringify(line)}`);
  return { service: m[1], width: m[1].length + m[2].length, rest: m[3] };
}

/** The log file's lines. */
async function fileLines(sb: Sandbox, name: string): Promise<string[]> {
  return linesOf(await sb.log(name));
}

/** Wait until the service's log has a line ending in `event` (the demo service's own lines). */
function logged(sb: Sandbox, name: string, event: string): Promise<void> {
  return until(
    async () => (await fileLines(sb, name)).some((l) => l.endsWith(`${sb.marker(name)} ${event}`)),
    `${name} to log "${event}"`,
  );
}

/** `cli.ts ARGS --config` of the sandbox, running: its output so far, and its exit. */
function spawnCli(sb: Sandbox, args: string[]): {
  child: ChildProcess;
  stdout: () => string;
  exited: Promise<number | null>;
} {
  const child = sb.adopt(
    spawn(...cliCommand([...args, "--config", sb.config]), {
      env: { ...process.env, NO_COLOR: "1", PROVISIONING_HOME: sb.home },
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  let text = "";
  child.stdout!.on("data", (d) => (text += d));
  child.stderr!.on("data", (d) => (text += d));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return { child, stdout: () => text, exited };
}

Deno.test("logs without a name shows every service's lines behind its padded name, in time order; two names show those two", async () => {
  await using sb = await Sandbox.create([
    { name: "api" },
    { name: "database" },
    { name: "cache" },
  ]);
  const start = await sb.cli(["services", "start", "api", "database"]);
  assert.equal(start.code, 0, out(start));
  await logged(sb, "api", "ready");
  await logged(sb, "database", "ready");

  const all = await sb.cli(["services", "logs"]);
  assert.equal(all.code, 0, out(all));
  const rows = linesOf(all.stdout).map(split);
  assert.ok(rows.every((r) => r.width === "database".length), all.stdout);
  for (const name of ["api", "database"]) {
    assert.deepEqual(
      rows.filter((r) => r.service === name).map((r) => r.rest),
      (await fileLines(sb, name)).slice(-50),
      `${name}: its own lines, in its own order`,
    );
  }
  assert.deepEqual([...new Set(rows.map((r) => r.service))].sort(), ["api", "database"]);
  const times = rows.map((r) => ownTime(r.rest)!);
  assert.ok(times.every(Boolean), all.stdout);
  assert.deepEqual(times, [...times].sort(), `merged in time order:\n${all.stdout}`);

  const two = await sb.cli(["platform", "logs", "api", "cache"]);
  assert.equal(two.code, 0, out(two));
  const tworows = linesOf(two.stdout).map(split);
  assert.ok(tworows.length > 0 && tworows.every((r) => r.service === "api"), two.stdout);
  assert.ok(two.stdout.startsWith("api   | "), "padded to the longer of the two names");

  const one = await sb.cli(["services", "logs", "api", "--lines", "2"]);
  assert.deepEqual(linesOf(one.stdout), (await fileLines(sb, "api")).slice(-2), "one: as it is");

  const unknown = await sb.cli(["services", "logs", "api", "databse"]);
  assert.equal(unknown.code, 2, out(unknown));
  assert.equal(unknown.stdout, "");
  assert.match(unknown.stderr, /^❌ Unknown service "databse"\n\s+Did you mean "database"\?\n$/);
});

Deno.test("logs --timestamps puts the time each line was written before it; --json is one document of {service, time, line}", async () => {
  await using sb = await Sandbox.create([{ name: "api" }, { name: "worker" }]);
  const start = await sb.cli(["services", "start", "api", "worker"]);
  assert.equal(start.code, 0, out(start));
  await logged(sb, "api", "ready");
  await logged(sb, "worker", "ready");

  const one = await sb.cli(["services", "logs", "api", "-t"]);
  assert.equal(one.code, 0, out(one));
  for (const line of linesOf(one.stdout)) {
    const [time, ...rest] = line.split(" ");
    assert.match(time, ISO, line);
    assert.equal(time, ownTime(rest.join(" ")), `the line's own time: ${line}`);
  }
  const all = await sb.cli(["platform", "logs", "--timestamps", "--lines", "3"]);
  const rows = linesOf(all.stdout).map(split);
  assert.equal(rows.length, 6, all.stdout);
  assert.ok(rows.every((r) => ISO.test(r.rest.split(" ")[0])), all.stdout);

  const doc = JSON.parse((await sb.cli(["services", "logs", "--json", "--lines", "2"])).stdout);
  assert.deepEqual(Object.keys(doc), ["lines"]);
  assert.equal(doc.lines.length, 4);
  for (const l of doc.lines) {
    assert.deepEqual(Object.keys(l), ["service", "time", "line"]);
    assert.equal(l.time, ownTime(l.line));
  }
  const times = doc.lines.map((l: { time: string }) => l.time);
  assert.deepEqual(times, [...times].sort());
  assert.deepEqual(
    doc.lines.filter((l: { service: string }) => l.service === "worker").map((
      l: { line: string },
    ) => l.line),
    (await fileLines(sb, "worker")).slice(-2),
  );
});

Deno.test("logs --since keeps the lines written since then and leaves out the older ones", async () => {
  await using sb = await Sandbox.create([{ name: "api" }]);
  const start = await sb.cli(["services", "start", "api"]);
  assert.equal(start.code, 0, out(start));
  await logged(sb, "api", "ready");
  const before = await fileLines(sb, "api");
  const lastBefore = Date.parse(ownTime(before.at(-1)!)!);
  await until(() => Date.now() > lastBefore, "the clock to pass the last line");
  const cut = new Date().toISOString();
  const restart = await sb.cli(["services", "restart", "api"]);
  assert.equal(restart.code, 0, out(restart));
  await logged(sb, "api", "ready");
  const after = (await fileLines(sb, "api")).slice(before.length);
  assert.ok(after.length >= 3, after.join("\n"));

  const since = await sb.cli(["services", "logs", "api", "--since", cut]);
  assert.equal(since.code, 0, out(since));
  assert.deepEqual(linesOf(since.stdout), after, "exactly the lines written after the cut");
  const doc = JSON.parse((await sb.cli(["services", "logs", "--since", cut, "--json"])).stdout);
  assert.deepEqual(doc.lines.map((l: { line: string }) => l.line), after);
  assert.ok(doc.lines.every((l: { time: string }) => l.time >= cut));
  const hour = await sb.cli(["services", "logs", "api", "--since", "1h", "--lines", "100"]);
  assert.deepEqual(linesOf(hour.stdout), [...before, ...after], "a duration back from now");

  const bad = await sb.cli(["services", "logs", "--since", "yesterday-ish"]);
  assert.equal(bad.code, 2, out(bad));
  assert.match(bad.stderr, /^❌ Invalid (--)?since "yesterday-ish"/);
});

Deno.test("logs --follow of every service prints their lines as they come, as text and as JSON lines, until SIGTERM", async () => {
  await using sb = await Sandbox.create([{ name: "web" }, { name: "worker" }]);
  const web = await sb.cli(["services", "start", "web"]);
  assert.equal(web.code, 0, out(web));
  const text = spawnCli(sb, ["services", "logs", "--follow"]);
  const json = spawnCli(sb, ["platform", "logs", "--follow", "--json"]);
  const ready = (name: string) => `${sb.marker(name)} ready`;
  const shown = (name: string) => () => [text, json].every((f) => f.stdout().includes(ready(name)));
  await until(shown("web"), "web's tail in both follows");
  // Both follow now: worker's lines (it had no log yet) can only come as it writes them.
  const worker = await sb.cli(["services", "start", "worker"]);
  assert.equal(worker.code, 0, out(worker));
  await until(shown("worker"), "worker's lines in both follows as it writes them");
  // By PID: after `child.kill()` Deno's child_process reports the signal, not the exit code.
  for (const f of [text, json]) process.kill(f.child.pid!, "SIGTERM");
  assert.equal(await text.exited, 0, text.stdout());
  assert.equal(await json.exited, 0, json.stdout());

  const rows = linesOf(text.stdout()).map(split);
  for (const name of ["web", "worker"]) {
    const mine = rows.filter((r) => r.service === name).map((r) => r.rest);
    assert.ok(mine.some((l) => l.endsWith(ready(name))), text.stdout());
    assert.deepEqual(mine, await fileLines(sb, name), `${name}: every line, in order`);
  }
  assert.ok(rows.every((r) => r.width === "worker".length));
  const objects = linesOf(json.stdout()).map((l) => JSON.parse(l));
  for (const o of objects) {
    assert.deepEqual(Object.keys(o), ["service", "time", "line"]);
    assert.match(o.time, ISO);
  }
  for (const name of ["web", "worker"]) {
    assert.deepEqual(
      objects.filter((o) => o.service === name).map((o) => o.line),
      await fileLines(sb, name),
    );
  }
});

Deno.test("a kubernetes service's lines come through its driver with the cluster's times, merged with a binary service's", async () => {
  await using sb = await Sandbox.create([{ name: "api" }]);
  await using api = await startApiDouble({
    tls: true,
    token: "logs-t0ken",
    behaviours: [[{}, { logLines: ["orch up", "orch listening"] }]],
  });
  const kubeconfig = join(sb.dir, "kubeconfig");
  await api.writeKubeconfig(kubeconfig);
  await mkdir(join(sb.dir, "k8s", "orch"), { recursive: true });
  await writeFile(join(sb.dir, "k8s", "orch", "app.yaml"), ORCH_MANIFESTS);
  await appendFile(sb.config, ORCH_SERVICE);
  const env = { PROVISIONING_HOME: sb.home, KUBECONFIG: kubeconfig, HOME: sb.dir };
  const cli = (args: string[]) => runCli([...args, "--config", sb.config], { env });
  try {
    const t0 = Date.now();
    const start = await cli(["platform", "start", "api", "orch"]);
    assert.equal(start.code, 0, out(start));
    await logged(sb, "api", "ready");
    const doc = JSON.parse((await cli(["services", "logs", "--json"])).stdout);
    const orch = doc.lines.filter((l: { service: string }) => l.service === "orch");
    assert.deepEqual(orch.map((l: { line: string }) => l.line), ["orch up", "orch listening"]);
    for (const l of orch) {
      assert.match(l.time, ISO);
      assert.ok(Date.parse(l.time) >= t0 - 1000 && Date.parse(l.time) <= Date.now());
    }
    const times = doc.lines.map((l: { time: string }) => l.time);
    assert.deepEqual(times, [...times].sort(), "merged in time order across drivers");

    const latest = Math.max(...orch.map((l: { time: string }) => Date.parse(l.time)));
    await until(() => Date.now() > latest, "the clock to pass the pod's lines");
    const cut = new Date().toISOString();
    const pod = (api.pods("provisioning")[0] as { metadata: { name: string } }).metadata.name;
    api.writeLog("provisioning", pod, "orch later");
    const since = await cli(["services", "logs", "orch", "--since", cut, "-t"]);
    assert.equal(since.code, 0, out(since));
    assert.match(since.stdout, /^\d{4}-\S+Z orch later\n$/);
  } finally {
    await cli(["platform", "stop", "--force"]);
  }
});

const ORCH_SERVICE = `
[services.orch]
type = "platform"
category = "test"
description = "a kubernetes service (API test double)"
[services.orch.deployment]
mode = "kubernetes"
[services.orch.deployment.kubernetes]
namespace = "provisioning"
deployment_name = "orch"
manifests_path = "\${PROVISIONING_REGISTRY_DIR}/k8s/orch"
[services.orch.startup]
start_timeout = 30
[services.orch.shutdown]
timeout = 5
`;

const ORCH_MANIFESTS = `apiVersion: v1
kind: Namespace
metadata:
  name: provisioning
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: orch
  namespace: provisioning
spec:
  replicas: 1
  selector:
    matchLabels: {app: orch}
  template:
    metadata:
      labels: {app: orch}
    spec:
      containers:
      - name: main
        image: registry.example/orch:1.0
`;

/** A registry of a binary service whose log files this test writes, and a shell service. */
const FIXTURE = `
[services.legacy]
type = "platform"
category = "test"
description = "log files written by the test"
[services.legacy.deployment]
mode = "binary"
[services.legacy.deployment.binary]
binary_path = "/bin/true"
[services.legacy.health_check]
type = "none"

[services.ext]
type = "platform"
category = "test"
description = "its own logs command: lines without times"
[services.ext.deployment]
mode = "shell"
[services.ext.deployment.shell]
start = "true"
stop = "true"
status = "exit 1"
logs = "printf 'ext one\\\\next two\\\\n'"
[services.ext.health_check]
type = "none"
`;

const MIN = 60_000;

/** The fixture's log files: `legacy.log.1` from 2 h ago, `legacy.log` from 5 min ago. */
async function fixture(sb: Sandbox, now: number): Promise<{ banner: string }> {
  await writeFile(sb.config, FIXTURE);
  const logs = join(sb.home, "services", "logs");
  await mkdir(logs, { recursive: true, mode: 0o700 });
  const banner = `--- ${new Date(now - 30 * MIN).toISOString()} starting legacy`;
  const old = join(logs, "legacy.log.1");
  const cur = join(logs, "legacy.log");
  // A rotation by bytes cut "cut in the middle" in two.
  await writeFile(old, "old one\nold two\ncut in th", { mode: 0o600 });
  await writeFile(cur, `e middle\n${banner}\nplain a\nplain b\n`, { mode: 0o600 });
  await utimes(old, (now - 120 * MIN) / 1000, (now - 120 * MIN) / 1000);
  await utimes(cur, (now - 5 * MIN) / 1000, (now - 5 * MIN) / 1000);
  return { banner };
}

Deno.test("a line without a time of its own gets the next known time (else its file's mtime); --since skips rotated files by mtime", async () => {
  await using sb = await Sandbox.create([]);
  const now = Date.now();
  const { banner } = await fixture(sb, now);
  const iso = (ms: number) => new Date(ms).toISOString();
  const stamped = await sb.cli(["services", "logs", "legacy", "-t", "--lines", "10"]);
  assert.equal(stamped.code, 0, out(stamped));
  assert.deepEqual(linesOf(stamped.stdout), [
    `${iso(now - 120 * MIN)} old one`,
    `${iso(now - 120 * MIN)} old two`,
    `${iso(now - 30 * MIN)} cut in the middle`,
    `${iso(now - 30 * MIN)} ${banner}`,
    `${iso(now - 5 * MIN)} plain a`,
    `${iso(now - 5 * MIN)} plain b`,
  ]);
  const since = async (when: string) =>
    linesOf((await sb.cli(["services", "logs", "legacy", "--since", when])).stdout);
  assert.deepEqual(await since("1h"), ["cut in the middle", banner, "plain a", "plain b"]);
  assert.deepEqual(await since("10m"), ["plain a", "plain b"]);
  assert.deepEqual(await since("1m"), []);

  // Services without times (a shell service's own logs command) come after the merged ones.
  const all = await sb.cli(["services", "logs", "--lines", "2", "-t"]);
  assert.deepEqual(linesOf(all.stdout), [
    `legacy | ${iso(now - 5 * MIN)} plain a`,
    `legacy | ${iso(now - 5 * MIN)} plain b`,
    `ext    | ${" ".repeat(24)} ext one`,
    `ext    | ${" ".repeat(24)} ext two`,
  ]);
  const doc = JSON.parse((await sb.cli(["services", "logs", "--since", "1h", "--json"])).stdout);
  assert.deepEqual(doc.lines.map((l: { service: string }) => l.service), [
    "legacy",
    "legacy",
    "legacy",
    "legacy",
  ], "--since leaves out lines whose time is not known");
});

const hasScript = spawnSync("script", ["--version"]).status === 0;

/** Run the CLI on a pseudo-terminal (`script`), its output with `\r\n` made `\n`. */
function onTty(sb: Sandbox, args: string[], env: Record<string, string> = {}): string {
  // `env -u`: Deno's spawnSync passes on its own environment's NO_COLOR even when `env` lacks
  // it (its spawn does not), and CI runs the tests with NO_COLOR=1.
  const unset = env.NO_COLOR === undefined ? "env -u NO_COLOR " : "";
  const cmd = unset + cliShellCommand([...args, "--config", sb.config]);
  const { NO_COLOR: _, ...rest } = process.env;
  const r = spawnSync("script", ["-qec", cmd, "/dev/null"], {
    env: { ...rest, PROVISIONING_HOME: sb.home, ...env },
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  return r.stdout.replaceAll("\r\n", "\n");
}

/** Run the CLI with its output in a pipe and NO_COLOR unset. */
function notTty(sb: Sandbox, args: string[]) {
  return runCli([...args, "--config", sb.config], {
    env: { PROVISIONING_HOME: sb.home, NO_COLOR: "" },
  });
}

Deno.test({
  name: "the name prefix is coloured per service on a TTY only, never with NO_COLOR or --no-color",
  ignore: !hasScript,
  fn: async () => {
    await using sb = await Sandbox.create([]);
    await fixture(sb, Date.now());
    const tty = linesOf(onTty(sb, ["services", "logs", "--lines", "1"]));
    assert.deepEqual(tty, [
      "\x1b[36mlegacy |\x1b[0m plain b",
      "\x1b[33mext    |\x1b[0m ext two",
    ]);
    for (
      const plain of [
        onTty(sb, ["services", "logs", "--lines", "1"], { NO_COLOR: "1" }),
        onTty(sb, ["services", "logs", "--lines", "1", "--no-color"]),
        onTty(sb, ["services", "logs", "--lines", "1", "--json"]),
        (await notTty(sb, ["services", "logs", "--lines", "1"])).stdout,
      ]
    ) assert.ok(!plain.includes("\x1b["), JSON.stringify(plain));
  },
});

Deno.test("linePrefix pads to the longest name and colours by place only when asked", () => {
  const prefix = linePrefix(["a", "bbb"], true);
  assert.equal(prefix("a"), "\x1b[36ma   |\x1b[0m ");
  assert.equal(prefix("bbb"), "\x1b[33mbbb |\x1b[0m ");
  assert.equal(linePrefix(["a", "bbb"], false)("a"), "a   | ");
});
