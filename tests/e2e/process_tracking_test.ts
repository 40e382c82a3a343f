/**
 * Every process of a binary service is accounted for (issue 11, items 3 and 9), with real
 * processes: the worker of a master killed with kill -9, a daemon its start command forked, the
 * rest of a service whose leader is gone, a running service whose state file is corrupt.
 *
 * Each scenario runs twice: with a cgroup per service (where this machine lets us create one;
 * root on a cgroup2 mount) and with the environment marker alone (`PROVISIONING_CGROUPS=off`),
 * so both ways of tracking are covered wherever the suite runs.
 */
import assert from "node:assert/strict";
import { readFileSync, rmdirSync } from "node:fs";
import { readdir, readFile, rm, rmdir, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import binaryDriver, { type BinaryHandle, waitExit } from "../../drivers/binary.ts";
import {
  cgroupPlace,
  homeId,
  markerPrefix,
  SERVICE_ID_VARIABLE,
} from "../../drivers/binary/_track.ts";
import { cgroup2Mount, createCgroup, killCgroup } from "../../core/process/cgroup.ts";
import { isAlive, portInUse } from "../../core/process/identity.ts";
import { tagged } from "../../core/process/tree.ts";
import { launch } from "../../core/lifecycle/launch.ts";
import { reconcile } from "../../core/lifecycle/reconcile.ts";
import { statePaths } from "../../core/state/files.ts";
import { readState } from "../../core/state/store.ts";
import { type Platform, startServices, stopServices } from "../../mod.ts";
import { Sandbox, type ServiceSpec, until } from "./_registry.ts";
import { supervisedSandbox } from "./_supervised.ts";

/** Whether this machine lets us create a cgroup (and so whether the cgroup runs can happen). */
function cgroupsWork(): boolean {
  const mount = cgroup2Mount();
  if (!mount) return false;
  const probe = join(mount.path, "provisioning", `probe-${process.pid}`);
  const ok = createCgroup(probe);
  if (ok) rmdirSync(probe);
  return ok;
}

const CGROUPS = cgroupsWork();

type Mode = "cgroup" | "marker";
const MODES: Mode[] = ["cgroup", "marker"];

/** One test per tracking mode; the cgroup one is skipped where no cgroup can be created. */
function bothModes(name: string, fn: (mode: Mode) => Promise<void>): void {
  for (const mode of MODES) {
    Deno.test({
      name: `${name} [${mode}]`,
      ignore: mode === "cgroup" && !CGROUPS,
      fn: () => fn(mode),
    });
  }
}

/** A master that forks one worker holding the TCP port, as nginx, gunicorn or php-fpm do. */
const MASTER = `
import { spawn } from "node:child_process";
const [port, tag] = process.argv.slice(2);
const worker = spawn(process.execPath, [new URL("worker.mjs", import.meta.url).pathname, port, tag], {
  stdio: "inherit",
});
console.log(\`master \${process.pid}: worker \${worker.pid}\`);
worker.on("exit", (code) => process.exit(code ?? 1));
setInterval(() => {}, 1 << 30);
`;

/** The worker: answers every connection with its own pid. */
const WORKER = `
import { createServer } from "node:net";
const server = createServer((socket) => {
  socket.on("error", () => {}); // a health check that resets the connection
  socket.end(\`\${process.pid}\\n\`);
});
server.on("error", (e) => {
  console.error(\`worker \${process.pid}: \${e.code}\`);
  process.exit(3);
});
server.listen(Number(process.argv[2]), "127.0.0.1", () => console.log(\`worker \${process.pid}: listening\`));
`;

/**
 * A start command that forks a daemon into its own session and exits 0 (what a classic
 * daemon does); with an argument, the daemon writes its pid there first.
 */
const DAEMON = `#!/bin/sh
setsid sh -c 'if [ -n "$1" ]; then echo $$ > "$1"; fi; exec sleep 300' daemon "\${1:-}" &
exit 0
`;

const master = (port: number, dir: string) => ({
  binary_path: "node",
  args: [join(dir, "master.mjs"), String(port), dir],
});

/** A sandbox for `specs` with the programs above in its folder, tracking in `mode`. */
async function sandbox(
  mode: Mode,
  specs: ServiceSpec[],
  opts: { supervised?: Record<string, unknown> } = {},
): Promise<Sandbox> {
  const sb = opts.supervised
    ? await supervisedSandbox(specs.map((s) => ({ ...s, startup: opts.supervised })))
    : await Sandbox.create(specs);
  await writeFile(join(sb.dir, "master.mjs"), MASTER);
  await writeFile(join(sb.dir, "worker.mjs"), WORKER);
  await writeFile(join(sb.dir, "daemon.sh"), DAEMON, { mode: 0o755 });
  if (mode === "marker") sb.env.PROVISIONING_CGROUPS = "off";
  else delete sb.env.PROVISIONING_CGROUPS;
  if (!opts.supervised) sb.env.PROVISIONING_NO_SUPERVISOR = "1";
  return sb;
}

/** Removes the cgroups the sandbox's services left (a test that failed half-way). */
async function dropCgroups(sb: Sandbox): Promise<void> {
  const place = cgroupPlace(statePaths(sb.home), {}, "x");
  if (!place) return;
  const dir = join(place.base, homeId(sb.home));
  const groups = await readdir(dir).catch(() => [] as string[]);
  for (const g of groups.filter((g) => g.endsWith(".service"))) {
    killCgroup(join(dir, g));
    await until(
      () => readFileSync(join(dir, g, "cgroup.events"), "utf8").includes("populated 0"),
      `cgroup ${g} to empty`,
    ).catch(() => {});
    await rmdir(join(dir, g)).catch(() => {});
  }
  await rmdir(dir).catch(() => {});
}

/** Runs `fn` on the sandbox, then stops everything and removes the sandbox and its cgroups. */
async function using(sb: Sandbox, fn: (sb: Sandbox) => Promise<void>): Promise<void> {
  try {
    await fn(sb);
  } finally {
    await sb[Symbol.asyncDispose]();
    await dropCgroups(sb);
  }
}

/** The live processes carrying the marker of service `name` of the sandbox's home. */
function marked(sb: Sandbox, name: string): number[] {
  return tagged(markerPrefix(statePaths(sb.home), name), {
    variable: SERVICE_ID_VARIABLE,
    prefix: true,
  }).map((p) => p.pid);
}

/** The pid the worker on `port` answers with, or undefined when nothing answers. */
function served(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let data = "";
    socket.setTimeout(2_000, () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.on("data", (d) => (data += d));
    socket.on("end", () => resolve(Number(data.trim()) || undefined));
    socket.on("error", () => resolve(undefined));
  });
}

/** The cgroup v2 path of `pid` (`0::/...`). */
const cgroupLine = (pid: number) =>
  readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n").find((l) => l.startsWith("0::")) ?? "";

/** That the service ran in the way `mode` says: in its cgroup, or with the marker alone. */
async function assertMode(p: Platform, name: string, pid: number, mode: Mode): Promise<void> {
  const handle = (await readState(p.paths, name))?.handle ?? {};
  if (mode === "cgroup") {
    assert.match(String(handle.cgroup), new RegExp(`/${homeId(p.paths.home)}/${name}\\.service$`));
    assert.ok(cgroupLine(pid).endsWith(`/${name}.service`), cgroupLine(pid));
  } else {
    assert.equal(handle.cgroup, undefined);
    assert.ok(!cgroupLine(pid).includes("/provisioning/"), cgroupLine(pid));
  }
}

/** Start the master/worker service `web`; returns the master's and the worker's pids. */
async function startWeb(p: Platform, sb: Sandbox): Promise<{ master: number; worker: number }> {
  const r = await startServices(p, ["web"]);
  assert.equal(r.ok, true, JSON.stringify(r.outcomes));
  const master = (await readState(p.paths, "web"))!.pid!;
  const worker = (await served(sb.ports.web))!;
  assert.ok(
    worker && worker !== master,
    `worker ${worker}, master ${master}; log:\n${await sb.log("web")}`,
  );
  return { master, worker };
}

async function killNine(pid: number): Promise<void> {
  process.kill(pid, "SIGKILL");
  await until(async () => !(await isAlive(pid)), `pid ${pid} to die`);
}

bothModes(
  "kill -9 of a master: status names its worker, and the driver's stop kills it",
  async (mode) => {
    const sb = await sandbox(mode, [{ name: "web", command: master, check: "tcp" }]);
    await using(sb, async () => {
      const p = await sb.open();
      const { master, worker } = await startWeb(p, sb);
      await assertMode(p, "web", worker, mode);
      await killNine(master);
      assert.equal(await served(sb.ports.web), worker, "the orphaned worker still holds the port");

      const rt = await p.runtime("web");
      assert.deepEqual([rt.status, rt.stale, rt.leftovers], ["failed", true, [worker]]);
      assert.match(rt.message ?? "", new RegExp(`pid ${worker} of this service still runs$`));

      const r = await binaryDriver.stop(p.service("web"), p.context());
      assert.notEqual(r?.killed, true, "SIGTERM was enough");
      assert.equal(await isAlive(worker), false);
      assert.equal(await portInUse(sb.ports.web), false);
      assert.deepEqual(marked(sb, "web"), []);
      const after = await p.runtime("web");
      assert.equal(after.leftovers, undefined);
    });
  },
);

bothModes(
  "kill -9 of a master: the next start ends its old worker before it spawns",
  async (mode) => {
    const sb = await sandbox(mode, [{ name: "web", command: master, check: "tcp" }]);
    await using(sb, async () => {
      const p = await sb.open();
      const first = await startWeb(p, sb);
      await killNine(first.master);

      // The start's own steps (the lifecycle's pre-flight would refuse the port the old worker
      // holds): reconcile the stale record, then the driver's start.
      const svc = p.service("web");
      const rt = await reconcile(p, svc, binaryDriver, await p.runtime("web"));
      assert.deepEqual([rt.status, rt.leftovers], ["failed", [first.worker]]);
      const handle = await launch(p.store, binaryDriver, svc, p.context()) as BinaryHandle;
      assert.equal(await isAlive(first.worker), false, "the old worker is gone");
      await until(async () => {
        const now = await served(sb.ports.web);
        return now !== undefined && now !== first.worker;
      }, "a worker of the new start on the port");
      const second = { master: handle.pid, worker: (await served(sb.ports.web))! };
      assert.notEqual(second.worker, first.worker, "a worker of the new start holds the port");
      assert.deepEqual(marked(sb, "web").sort(), [second.master, second.worker].sort());
      assert.match(
        await sb.log("web"),
        new RegExp(`web: ended what an earlier start left running \\(pid ${first.worker}\\)`),
      );
    });
  },
);

bothModes(
  "a stop of a service whose leader is gone kills the rest, setsid'd ones too",
  async (mode) => {
    const sb = await sandbox(mode, [{
      name: "forks",
      command: () => ({
        binary_path: "/bin/sh",
        args: ["-c", "sleep 300 & setsid sleep 300 & echo forked; wait"],
      }),
      check: "none",
    }]);
    await using(sb, async () => {
      const p = await sb.open();
      const svc = p.service("forks");
      const handle = await launch(p.store, binaryDriver, svc, p.context()) as BinaryHandle;
      await until(() => marked(sb, "forks").length === 3, "the leader and its two children");
      const children = marked(sb, "forks").filter((pid) => pid !== handle.pid);
      await assertMode(p, "forks", children[0], mode);
      process.kill(handle.pid, "SIGKILL");
      assert.deepEqual(await waitExit(handle), { code: null, signal: "SIGKILL" });

      const rt = await binaryDriver.status(svc, p.context());
      assert.deepEqual([rt.status, rt.leftovers?.sort()], ["failed", children.sort()]);
      await binaryDriver.stop(svc, p.context());
      for (const pid of children) assert.equal(await isAlive(pid), false, `pid ${pid}`);
      assert.deepEqual(marked(sb, "forks"), []);
    });
  },
);

bothModes(
  "a start command that forks into the background and exits 0 is an error, and leaves nothing",
  async (mode) => {
    // A check that never passes: the start command's exit always comes first (with no check at
    // all, the lifecycle calls a service started the moment it is alive).
    const sb = await sandbox(mode, [{
      name: "daemon",
      command: (_port, dir) => ({ binary_path: join(dir, "daemon.sh"), args: [] }),
      check: "tcp",
    }]);
    await using(sb, async () => {
      const p = await sb.open();
      const svc = p.service("daemon");
      // The driver's own account: the start throws, or (when the command was still there as start
      // returned) status explains its exit once it is seen.
      let handle: BinaryHandle | undefined;
      try {
        handle = await launch(p.store, binaryDriver, svc, p.context()) as BinaryHandle;
      } catch (e) {
        assert.match(
          (e as Error).message,
          /^daemon forked into the background \(pid \d+\) and exited/,
        );
      }
      if (handle) {
        assert.deepEqual(await waitExit(handle), { code: 0, signal: null });
        const rt = await binaryDriver.status(svc, p.context());
        assert.equal(rt.status, "failed");
        assert.equal(rt.leftovers?.length, 1);
        assert.equal(
          rt.message,
          `daemon forked into the background (pid ${
            rt.leftovers![0]
          }) and exited: set pid_file, or run it in the foreground`,
        );
        await binaryDriver.stop(svc, p.context());
      }
      await until(() => marked(sb, "daemon").length === 0, "nothing of it left");

      // Through the lifecycle: a failed start, and no daemon behind it.
      const r = await startServices(p, ["daemon"]);
      assert.equal(r.ok, false);
      assert.equal(r.outcomes[0].status, "failed");
      assert.deepEqual(marked(sb, "daemon"), []);
      assert.equal((await readState(p.paths, "daemon"))?.status, "failed");
    });
  },
);

bothModes(
  "pid_file: a daemon that forks is started, watched by the pid it writes, and stopped",
  async (mode) => {
    const sb = await sandbox(mode, [{
      name: "daemon",
      command: (_port, dir) => ({
        binary_path: join(dir, "daemon.sh"),
        args: [join(dir, "d.pid")],
      }),
      check: "none",
    }]);
    await using(sb, async () => {
      await setBinary(sb, "daemon", { pid_file: "d.pid", working_dir: sb.dir });
      const p = await sb.open();
      const r = await startServices(p, ["daemon"]);
      assert.equal(r.ok, true, JSON.stringify(r.outcomes));
      const pid = Number((await readFile(join(sb.dir, "d.pid"), "utf8")).trim());
      assert.equal(r.outcomes[0].pid, pid);
      const state = await readState(p.paths, "daemon");
      assert.deepEqual([state?.status, state?.pid], ["running", pid]);
      assert.equal(state?.handle?.pid_file, join(sb.dir, "d.pid"));
      await assertMode(p, "daemon", pid, mode);
      const rt = await p.runtime("daemon");
      assert.deepEqual([rt.status, rt.pid, rt.leftovers], ["running", pid, undefined]);
      assert.match(
        await sb.log("daemon"),
        new RegExp(`forked into the background, main pid ${pid}`),
      );

      const stop = await stopServices(p, ["daemon"]);
      assert.equal(stop.ok, true);
      assert.equal(await isAlive(pid), false);
      assert.deepEqual(marked(sb, "daemon"), []);
    });
  },
);

bothModes(
  "pid_file: a start command that fails, or a pid file that never comes, fails the start",
  async (mode) => {
    const sb = await sandbox(mode, [
      {
        name: "bad",
        command: () => ({ binary_path: "/bin/sh", args: ["-c", "setsid sleep 300 & exit 3"] }),
        check: "none",
      },
      {
        name: "silent",
        command: () => ({ binary_path: "/bin/sh", args: ["-c", "setsid sleep 300 & exit 0"] }),
        check: "none",
        startTimeout: 0.5,
      },
    ]);
    await using(sb, async () => {
      await setBinary(sb, "bad", { pid_file: join(sb.dir, "bad.pid") });
      await setBinary(sb, "silent", { pid_file: join(sb.dir, "silent.pid") });
      const p = await sb.open();
      const r = await startServices(p, ["bad", "silent"]);
      const by = new Map(r.outcomes.map((o) => [o.name, o]));
      assert.equal(
        by.get("bad")?.message,
        'Cannot start "bad": its start command exited with code 3',
      );
      assert.equal(
        by.get("silent")?.message,
        `Cannot start "silent": pid_file ${join(sb.dir, "silent.pid")} did not name a process ` +
          "within start_timeout (0.5s)",
      );
      assert.deepEqual([...marked(sb, "bad"), ...marked(sb, "silent")], []);
    });
  },
);

bothModes(
  "a corrupt state file of a running service: status finds it, start starts no duplicate, stop ends it",
  async (mode) => {
    const sb = await sandbox(mode, [{ name: "web", command: master, check: "tcp" }]);
    await using(sb, async () => {
      const p = await sb.open();
      const { master, worker } = await startWeb(p, sb);
      await writeFile(join(p.paths.state, "web.json"), "{ not json");

      const rt = await p.runtime("web");
      assert.deepEqual(
        [rt.status, rt.pid, rt.message],
        ["running", master, `Found pid ${master} of this service without a record`],
      );
      const again = await startServices(p, ["web"]);
      assert.equal(again.ok, true);
      assert.equal(again.outcomes[0].status, "already_running");
      assert.deepEqual(marked(sb, "web").sort(), [master, worker].sort(), "no duplicate");
      assert.equal(await served(sb.ports.web), worker, "the original still serves");

      // And with no record at all (state and PID file gone), a stop still ends all of it.
      await rm(join(p.paths.state, "web.json"));
      await rm(join(p.paths.pids, "web.pid"));
      assert.equal((await p.runtime("web")).status, "running");
      const stop = await stopServices(p, ["web"]);
      assert.equal(stop.ok, true, JSON.stringify(stop.outcomes));
      assert.equal(stop.outcomes[0].status, "stopped");
      assert.equal(await isAlive(master), false);
      assert.equal(await isAlive(worker), false);
      assert.deepEqual(marked(sb, "web"), []);
    });
  },
);

bothModes(
  "the supervisor's restart after kill -9 of a master ends the old worker first",
  async (mode) => {
    const sb = await sandbox(mode, [{ name: "web", command: master, check: "tcp" }], {
      supervised: { restart_on_failure: true, max_restarts: 3 },
    });
    await using(sb, async () => {
      const p = await sb.open();
      const first = await startWeb(p, sb);
      await killNine(first.master);
      await until(
        async () => {
          const st = await readState(p.paths, "web");
          return st?.status === "running" && st.restarts === 1 && st.pid !== first.master;
        },
        "the supervisor's restart",
        20_000,
      );
      assert.equal(await isAlive(first.worker), false, "the old worker is gone");
      const now = await served(sb.ports.web);
      assert.ok(now && now !== first.worker, `the port is served by a new worker (${now})`);
      assert.ok(marked(sb, "web").includes(now));
    });
  },
);

Deno.test({
  name:
    "a process that clears its environment and leaves the session is still ended through the cgroup",
  ignore: !CGROUPS,
  fn: async () => {
    const sb = await sandbox("cgroup", [{
      name: "hidden",
      command: () => ({
        binary_path: "/bin/sh",
        args: ["-c", "env -i setsid /bin/sleep 301 & exec sleep 300"],
      }),
      check: "none",
    }]);
    await using(sb, async () => {
      const p = await sb.open();
      const svc = p.service("hidden");
      const handle = await launch(p.store, binaryDriver, svc, p.context()) as BinaryHandle;
      const dir = String((await readState(p.paths, "hidden"))?.handle?.cgroup);
      const procs = () => readFileSync(join(dir, "cgroup.procs"), "utf8").trim().split("\n");
      const cmdline = (pid: number) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, "utf8");
        } catch {
          return "";
        }
      };
      const hiddenChild = () => procs().map(Number).find((pid) => pid !== handle.pid);
      // Counted in the cgroup from its fork, the child clears its environment only with its exec
      // of `env -i`: look at its marker once it runs `sleep 301`, past `env` and `setsid`.
      await until(
        () => procs().length === 2 && cmdline(hiddenChild() ?? 0) === "/bin/sleep\0" + "301\0",
        "the leader and the hidden child, running sleep 301",
      );
      const hidden = hiddenChild()!;
      assert.deepEqual(marked(sb, "hidden"), [handle.pid], "the hidden child carries no marker");
      await binaryDriver.stop(svc, p.context());
      assert.equal(await isAlive(hidden), false);
      assert.equal(await isAlive(handle.pid), false);
    });
  },
});

/** Merge `extra` into `[services.<name>.deployment.binary]` of the sandbox's registry. */
async function setBinary(sb: Sandbox, name: string, extra: Record<string, unknown>) {
  const { parse, stringify } = await import("smol-toml");
  const doc = parse(await readFile(sb.config, "utf8")) as {
    services: Record<string, { deployment: { binary: Record<string, unknown> } }>;
  };
  Object.assign(doc.services[name].deployment.binary, extra);
  await writeFile(sb.config, stringify(doc));
}
