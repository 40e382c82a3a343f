/**
 * The docker driver against a real engine (`DOCKER_HOST`; ignored with a reason without one),
 * plus the pure parts (DOCKER_HOST parsing, log frames, ports, restart policy) that always run.
 */
import assert from "node:assert/strict";
import { connect, createServer, type Socket } from "node:net";
import { runCli } from "../_cli.ts";
import { readState } from "../../core/state/store.ts";
import type { Service } from "../../core/types.ts";
import {
  type LifecycleEvent,
  Platform,
  restartServices,
  startServices,
  stopServices,
} from "../../mod.ts";
import { DockerEngine, engineEndpoint } from "../../drivers/docker/_api.ts";
import { FrameDecoder, LineSplitter } from "../../drivers/docker/_logs.ts";
import {
  HOME_LABEL,
  portBindings,
  restartPolicy,
  SERVICE_LABEL,
} from "../../drivers/docker/_spec.ts";
import {
  dockerTest,
  dockerToml,
  engine,
  freePort,
  HEALTH_IMAGE,
  httpStatus,
  IMAGE,
  removeContainer,
  waitFor,
  withSandbox,
} from "./_docker.ts";

// ---- pure parts ------------------------------------------------------------------------------

Deno.test("engineEndpoint() reads unix and tcp DOCKER_HOST values and defaults to the socket", () => {
  assert.deepEqual(engineEndpoint({}), {
    url: "unix:///var/run/docker.sock",
    socketPath: "/var/run/docker.sock",
  });
  assert.equal(
    engineEndpoint({ DOCKER_HOST: "unix:///tmp/d/docker.sock" }).socketPath,
    "/tmp/d/docker.sock",
  );
  const tcp = engineEndpoint({ DOCKER_HOST: "tcp://10.0.0.5:2376" });
  assert.equal(tcp.host, "10.0.0.5");
  assert.equal(tcp.port, 2376);
  assert.equal(engineEndpoint({ DOCKER_HOST: "tcp://[::1]" }).host, "::1");
  assert.match(
    engineEndpoint({ DOCKER_HOST: "ssh://me@host" }).problem ?? "",
    /unsupported DOCKER_HOST/,
  );
  assert.match(
    engineEndpoint({ DOCKER_HOST: "tcp://h:2376", DOCKER_TLS_VERIFY: "1" }).problem ?? "",
    /TLS/,
  );
});

Deno.test("log frames are de-multiplexed per stream, across chunk borders", () => {
  const frame = (stream: number, text: string) => {
    const payload = Buffer.from(text);
    const header = Buffer.alloc(8);
    header[0] = stream;
    header.writeUInt32BE(payload.length, 4);
    return Buffer.concat([header, payload]);
  };
  const all = Buffer.concat([frame(1, "out one\nout t"), frame(2, "err one\n"), frame(1, "wo\n")]);
  const frames = new FrameDecoder();
  const split = new Map([[1, new LineSplitter()], [2, new LineSplitter()]]);
  const lines: string[] = [];
  for (let i = 0; i < all.length; i += 5) { // 5-byte chunks split headers and payloads
    for (const [s, p] of frames.push(all.subarray(i, i + 5))) lines.push(...split.get(s)!.push(p));
  }
  assert.deepEqual(lines, ["out one", "err one", "out two"]);
});

Deno.test("port mappings become ExposedPorts and PortBindings", () => {
  const { exposed, bindings } = portBindings(["127.0.0.1:8080:80", "5353:53/udp", "9000"]);
  assert.deepEqual(Object.keys(exposed).sort(), ["53/udp", "80/tcp", "9000/tcp"]);
  assert.deepEqual(bindings["80/tcp"], [{ HostIp: "127.0.0.1", HostPort: "8080" }]);
  assert.deepEqual(bindings["53/udp"], [{ HostIp: "", HostPort: "5353" }]);
  assert.deepEqual(bindings["9000/tcp"], [{ HostIp: "", HostPort: "" }]);
});

Deno.test('restart_on_failure with restart_policy "no" maps to on-failure with max_restarts', () => {
  const svc = (restart_on_failure: boolean) =>
    ({ startup: { restart_on_failure, max_restarts: 4 } }) as unknown as Service;
  assert.deepEqual(restartPolicy(svc(true), "no"), { Name: "on-failure", MaximumRetryCount: 4 });
  assert.deepEqual(restartPolicy(svc(false), "no"), { Name: "no", MaximumRetryCount: 0 });
  assert.deepEqual(restartPolicy(svc(true), "always"), { Name: "always", MaximumRetryCount: 0 });
  assert.deepEqual(restartPolicy(svc(false), "on-failure"), {
    Name: "on-failure",
    MaximumRetryCount: 0,
  });
});

// ---- engine down: needs no engine at all ----------------------------------------------------

Deno.test("with no engine at DOCKER_HOST, start fails pre-flight (exit 3) with the spec's message", async () => {
  const dir = await Deno.makeTempDir({ prefix: "prov-nodocker-" });
  try {
    await Deno.writeTextFile(`${dir}/services.toml`, dockerToml("web", { port: 1 }));
    const env = {
      DOCKER_HOST: `unix://${dir}/nothing.sock`,
      PROVISIONING_HOME: `${dir}/home`,
      PROVISIONING_NO_SUPERVISOR: "1",
    };
    const start = await runCli(["services", "start", "web", "--config", `${dir}/services.toml`], {
      env,
    });
    assert.equal(start.code, 3, start.stdout + start.stderr);
    assert.match(start.stdout + start.stderr, /Docker is not installed or not running/);
    const validate = await runCli(["services", "validate", "--config", `${dir}/services.toml`], {
      env,
    });
    assert.equal(validate.code, 3);
    assert.match(validate.stdout, /❌ web:\n\s+- Docker is not installed or not running/);
    const status = await runCli([
      "services",
      "status",
      "web",
      "--json",
      "--config",
      `${dir}/services.toml`,
    ], {
      env,
    });
    assert.equal(JSON.parse(status.stdout).status, "stopped");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- against the engine ------------------------------------------------------------------------

dockerTest(
  "a docker service starts, reports, logs, restarts and stops through the library",
  async () => {
    const port = await freePort();
    await withSandbox(async (sb) => {
      const p = await Platform.open({ config: sb.config, home: sb.home, env: sb.env });
      const events: LifecycleEvent[] = [];
      const started = await startServices(p, ["web"], { onEvent: (e) => events.push(e) });
      assert.ok(started.ok, JSON.stringify(started.outcomes));
      assert.ok(events.some((e) => e.type === "healthy" && e.service === "web"));
      assert.equal(await httpStatus(`http://127.0.0.1:${port}/health`), 200);

      const st = await p.status("web");
      assert.equal(st.status, "running");
      assert.equal(st.health, "healthy");
      assert.ok(st.pid && st.pid > 0);
      const state = await readState(p.paths, "web");
      assert.equal(state?.mode, "docker");
      const id = state?.handle?.container_id as string;
      assert.equal(state?.handle?.container_name, "provisioning-web");
      const c = await engine.inspectContainer(id);
      assert.equal(c?.Config.Labels?.[SERVICE_LABEL], "web");
      assert.equal(c?.Config.Labels?.[HOME_LABEL], sb.home);

      // httpd -v logs each request on stderr: the logs come de-multiplexed, line by line
      const lines = await waitFor("a request in the logs", async () => {
        const got: string[] = [];
        for await (const l of p.logs("web", { lines: 20 })) got.push(l);
        return got.some((l) => /response:200/.test(l)) && got;
      });
      assert.ok(lines.every((l) => !l.includes("\n")));

      const restarted = await restartServices(p, ["web"]);
      assert.ok(restarted.ok, JSON.stringify(restarted.outcomes));
      const again = await readState(p.paths, "web");
      assert.equal(again?.handle?.container_id, id, "an unchanged registry reuses the container");
      assert.notEqual(again?.started_at, state?.started_at);

      const stopped = await stopServices(p, ["web"]);
      assert.ok(stopped.ok);
      const after = await p.status("web");
      assert.equal(after.status, "stopped");
      assert.equal(after.exit_code, 0, "the trap made the SIGTERM stop a clean exit");
      assert.ok(await engine.inspectContainer(id), "stop keeps the container");
      assert.equal(await httpStatus(`http://127.0.0.1:${port}/health`), 0);
    }, { toml: dockerToml("web", { port }) });
  },
);

dockerTest("--force kills the container instead of waiting for the stop signal", async () => {
  const port = await freePort();
  // busybox httpd as PID 1 ignores SIGTERM: a graceful stop would take the whole 60s
  const command = ["/bin/busybox", "httpd", "-f", "-p", `127.0.0.1:${port}`, "-h", "/www"];
  await withSandbox(async (sb) => {
    const p = await Platform.open({ config: sb.config, home: sb.home, env: sb.env });
    assert.ok((await startServices(p, ["web"])).ok);
    const stopped = await stopServices(p, ["web"], { force: true });
    assert.ok(stopped.ok);
    const st = await p.status("web");
    assert.equal(st.status, "stopped");
    assert.equal(st.exit_code, 137);
  }, { toml: dockerToml("web", { port, command, shutdownTimeout: 60 }) });
});

dockerTest("logs --follow yields new lines until the signal aborts", async () => {
  const port = await freePort();
  await withSandbox(async (sb) => {
    const p = await Platform.open({ config: sb.config, home: sb.home, env: sb.env });
    assert.ok((await startServices(p, ["web"])).ok);
    const ac = new AbortController();
    const seen: string[] = [];
    const reader = (async () => {
      for await (const l of p.logs("web", { lines: 0, follow: true, signal: ac.signal })) {
        seen.push(l);
        if (l.includes("/followed")) ac.abort();
      }
    })();
    await waitFor("the followed request", async () => {
      await httpStatus(`http://127.0.0.1:${port}/followed`);
      return seen.some((l) => l.includes("/followed"));
    });
    await reader; // ends once aborted
    assert.ok(ac.signal.aborted);
  }, { toml: dockerToml("web", { port }) });
});

dockerTest("a changed registry recreates our stopped container", async () => {
  const port = await freePort();
  await withSandbox(async (sb) => {
    let p = await Platform.open({ config: sb.config, home: sb.home, env: sb.env });
    assert.ok((await startServices(p, ["web"])).ok);
    const first = (await readState(p.paths, "web"))?.handle?.container_id as string;
    assert.ok((await stopServices(p, ["web"])).ok);

    sb.write(dockerToml("web", { port, env: { GREETING: "changed" } }));
    p = await Platform.open({ config: sb.config, home: sb.home, env: sb.env });
    assert.ok((await startServices(p, ["web"])).ok);
    const second = (await readState(p.paths, "web"))?.handle?.container_id as string;
    assert.notEqual(second, first);
    assert.equal(await engine.inspectContainer(first), undefined, "the old container is removed");
    const c = await engine.json<{ Config: { Env: string[] } }>("GET", `/containers/${second}/json`);
    assert.ok(c?.Config.Env.includes("GREETING=changed"));
  }, { toml: dockerToml("web", { port }) });
});

dockerTest("a container of the same name that is not ours is never touched", async () => {
  const port = await freePort();
  const name = `provisioning-foreign-${crypto.randomUUID().slice(0, 8)}`;
  const foreign = await engine.must<{ Id: string }>("POST", "/containers/create", {
    query: { name },
    body: {
      Image: IMAGE,
      Cmd: ["/bin/busybox", "sleep", "600"],
      HostConfig: { NetworkMode: "none" },
    },
  });
  try {
    await engine.json("POST", `/containers/${foreign.Id}/start`);
    await withSandbox(async (sb) => {
      const p = await Platform.open({ config: sb.config, home: sb.home, env: sb.env });
      const r = await startServices(p, ["web"]);
      assert.equal(r.ok, false);
      assert.equal(r.exit_code, 3);
      assert.match(
        r.outcomes[0].message ?? "",
        new RegExp(`Container name "${name}" is taken by container`),
      );
      assert.match(r.outcomes[0].message ?? "", /not managed by provisioning/);

      const st = await p.status("web");
      assert.equal(st.status, "stopped");
      assert.match(st.message ?? "", /not ours/);
      const driver = await p.plugins.driver("docker");
      await driver.stop(p.service("web"), p.context(), { force: true });
      await assert.rejects(async () => {
        for await (const _ of p.logs("web")) { /* nothing */ }
      }, /is not ours/);

      const cli = await runCli(["services", "start", "web", "--config", sb.config], {
        env: sb.env,
      });
      assert.equal(cli.code, 3, cli.stdout + cli.stderr);
      assert.match(cli.stdout + cli.stderr, new RegExp(`"${name}" is taken`));
      const validate = await runCli(["services", "validate", "--config", sb.config], {
        env: sb.env,
      });
      assert.equal(validate.code, 3);
      assert.match(validate.stdout, new RegExp(`❌ web:\n\\s+- Container name "${name}" is taken`));
      const readiness = await runCli(["services", "readiness", "--config", sb.config], {
        env: sb.env,
      });
      assert.match(
        readiness.stdout,
        /🔴 web - utility - docker\n\s+Issues: 1\n\s+- Container name/,
      );

      const c = await engine.inspectContainer(foreign.Id);
      assert.equal(c?.State.Running, true, "the foreign container still runs");
    }, { toml: dockerToml("web", { port, containerName: name }) });
  } finally {
    await removeContainer(foreign.Id);
  }
});

dockerTest("an image that is not present fails pre-flight with a docker pull hint", async () => {
  const port = await freePort();
  const image = "provisioning-test/not-here:1";
  await withSandbox(async (sb) => {
    const validate = await runCli(["services", "validate", "--config", sb.config], { env: sb.env });
    assert.equal(validate.code, 3);
    assert.match(validate.stdout, /Image "provisioning-test\/not-here:1" is not present locally/);
    const start = await runCli(["services", "start", "web", "--config", sb.config], {
      env: sb.env,
    });
    assert.equal(start.code, 3);
    assert.match(start.stdout + start.stderr, /docker pull provisioning-test\/not-here:1/);
  }, { toml: dockerToml("web", { port, image }) });
});

dockerTest("a crashed container is seen by status with its exit code", async () => {
  const port = await freePort();
  await withSandbox(async (sb) => {
    const p = await Platform.open({ config: sb.config, home: sb.home, env: sb.env });
    assert.ok((await startServices(p, ["web"])).ok);
    const id = (await readState(p.paths, "web"))?.handle?.container_id as string;
    await engine.json("POST", `/containers/${id}/kill`); // the main process dies (SIGKILL)
    await waitFor(
      "the container to exit",
      async () => !(await engine.inspectContainer(id))?.State.Running,
    );

    const st = await p.status("web");
    assert.equal(st.status, "failed");
    assert.equal(st.exit_code, 137);
    const cli = await runCli(["services", "status", "web", "--json", "--config", sb.config], {
      env: sb.env,
    });
    const json = JSON.parse(cli.stdout);
    assert.equal(json.status, "failed");
    assert.equal(json.exit_code, 137);
    // a new start brings it back
    assert.ok((await startServices(p, ["web"])).ok);
    assert.equal((await p.status("web")).status, "running");
  }, { toml: dockerToml("web", { port }) });
});

dockerTest(
  "restart_on_failure lets the engine restart a crashing container max_restarts times",
  async () => {
    const port = await freePort();
    const command = ["/bin/busybox", "sh", "-c", "exit 3"];
    await withSandbox(async (sb) => {
      const p = await Platform.open({ config: sb.config, home: sb.home, env: sb.env });
      const driver = await p.plugins.driver("docker");
      await driver.start(p.service("web"), p.context()).catch(() => {}); // may see it exit at once
      const c = await engine.inspectContainer("provisioning-web");
      assert.deepEqual(c?.HostConfig?.RestartPolicy, { Name: "on-failure", MaximumRetryCount: 2 });
      const st = await waitFor("the engine to give up", async () => {
        const s = await p.status("web");
        return s.status === "failed" && s.restarts === 2 && s;
      });
      assert.equal(st.exit_code, 3);
    }, {
      toml: dockerToml("web", {
        port,
        command,
        restartOnFailure: true,
        maxRestarts: 2,
        check: "none",
      }),
    });
  },
);

dockerTest("the engine's own health check shows in the status message", async () => {
  const port = await freePort();
  await withSandbox(async (sb) => {
    const p = await Platform.open({ config: sb.config, home: sb.home, env: sb.env });
    assert.ok((await startServices(p, ["web"])).ok);
    const st = await waitFor("engine health", async () => {
      const s = await p.status("web");
      return /engine health: healthy/.test(s.message ?? "") && s;
    });
    assert.equal(st.status, "running");
  }, { toml: dockerToml("web", { port, image: HEALTH_IMAGE }) });
});

dockerTest("the CLI starts, shows, logs and stops a docker service", async () => {
  const port = await freePort();
  await withSandbox(async (sb) => {
    const run = (...args: string[]) => runCli([...args, "--config", sb.config], { env: sb.env });
    const start = await run("services", "start", "web");
    assert.equal(start.code, 0, start.stdout + start.stderr);
    assert.match(start.stdout, /✅ Docker running: engine/);
    assert.match(start.stdout, /✅ Image found: provisioning-test\/busybox:latest/);
    const status = await run("services", "status", "web");
    assert.match(status.stdout, /Status: running/);
    assert.match(status.stdout, /Deployment: docker/);
    assert.match(status.stdout, /Health: healthy/);
    await httpStatus(`http://127.0.0.1:${port}/from-cli`);
    const logs = await waitFor("the request in the CLI logs", async () => {
      const r = await run("services", "logs", "web", "--lines", "5");
      return r.stdout.includes("/from-cli") ? r : undefined;
    });
    assert.equal(logs.code, 0);
    const stop = await run("services", "stop", "web");
    assert.equal(stop.code, 0, stop.stdout + stop.stderr);
    const after = JSON.parse((await run("services", "status", "web", "--json")).stdout);
    assert.equal(after.status, "stopped");
  }, { toml: dockerToml("web", { port }) });
});

dockerTest("DOCKER_HOST=tcp://host:port reaches the engine too", async () => {
  // A TCP front for the engine's unix socket: each connection is piped through as is.
  const socketPath = engineEndpoint({ DOCKER_HOST: process.env.DOCKER_HOST }).socketPath;
  if (!socketPath) return; // the engine is on TCP already: the other tests cover it
  const sockets = new Set<Socket>();
  const proxy = createServer((client) => {
    const upstream = connect(socketPath);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  try {
    const { port } = proxy.address() as { port: number };
    const tcp = new DockerEngine({ DOCKER_HOST: `tcp://127.0.0.1:${port}` });
    const finding = await tcp.engineFinding();
    assert.ok(finding.ok, finding.message);
    assert.match(finding.message, new RegExp(`at tcp://127\\.0\\.0\\.1:${port}$`));
    assert.ok(await tcp.inspectImage(IMAGE));
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => proxy.close(resolve));
  }
});
