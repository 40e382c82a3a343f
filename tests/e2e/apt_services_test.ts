/**
 * Real third-party services from apt (redis-server, nginx) managed in binary mode, in the
 * foreground on free ports of 127.0.0.1. Skipped when the program is not installed; CI
 * (`.ci/run`) installs both.
 */
import assert from "node:assert/strict";
import { accessSync, constants } from "node:fs";
import { writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { delimiter, join } from "node:path";
import { groupMembers, isAlive, portInUse } from "../../core/process/identity.ts";
import { startServices, stopServices } from "../../mod.ts";
import { EventLog, Sandbox } from "./_registry.ts";

/** The program's path: a usual place first, then PATH; undefined when it is not installed. */
function findProgram(name: string, usual: string[]): string | undefined {
  const dirs = (process.env.PATH ?? "").split(delimiter).filter(Boolean);
  return [...usual, ...dirs.map((d) => join(d, name))].find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const REDIS = findProgram("redis-server", ["/usr/bin/redis-server"]);
const NGINX = findProgram("nginx", ["/usr/sbin/nginx"]);

/** Send one inline Redis command and return the first reply line. */
function redisCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    let reply = "";
    socket.setEncoding("utf8");
    socket.once("connect", () => socket.write(`${command}\r\n`));
    socket.on("data", (chunk) => {
      reply += chunk;
      if (reply.includes("\r\n")) socket.end();
    });
    socket.once("error", reject);
    socket.once("close", () => resolve(reply.split("\r\n")[0]));
  });
}

Deno.test({
  name: "redis-server runs in binary mode: healthy by tcp check, answers PING, gone after stop",
  ignore: !REDIS,
  async fn() {
    await using sb = await Sandbox.create([{
      name: "redis",
      kind: "tcp",
      category: "data",
      command: (port, dir) => ({
        binary_path: REDIS!,
        args: [
          ...["--port", String(port), "--bind", "127.0.0.1"],
          ...["--save", "", "--appendonly", "no", "--dir", dir],
        ],
      }),
    }]);
    const port = sb.ports.redis;
    const p = await sb.open();
    const log = new EventLog();
    const res = await startServices(p, ["redis"], { onEvent: log.onEvent });
    assert.equal(res.ok, true, JSON.stringify(res.outcomes));
    assert.match(
      log.get("healthy", "redis").message ?? "",
      /TCP connect to 127\.0\.0\.1:\d+ succeeded/,
    );
    assert.equal(await redisCommand(port, "PING"), "+PONG");
    const status = await p.status("redis");
    assert.deepEqual([status.status, status.health], ["running", "healthy"]);
    const pid = status.pid!;

    const stop = await stopServices(p, ["redis"]);
    assert.equal(stop.ok, true, JSON.stringify(stop.outcomes));
    assert.equal(await isAlive(pid), false);
    assert.equal(await portInUse(port), false);
    assert.equal((await p.runtime("redis")).status, "stopped");
  },
});

Deno.test({
  name:
    "nginx runs in binary mode in the foreground: healthy by http check, master and workers gone after stop",
  ignore: !NGINX,
  async fn() {
    await using sb = await Sandbox.create([{
      name: "nginx",
      category: "web",
      command: (_port, dir) => ({
        binary_path: NGINX!,
        args: [
          ...["-g", `daemon off; pid ${join(dir, "nginx.pid")}; error_log stderr;`],
          ...["-c", join(dir, "nginx.conf")],
        ],
      }),
    }]);
    const port = sb.ports.nginx;
    const temp = (kind: string) => `${kind}_temp_path ${join(sb.dir, kind)};`;
    await writeFile(
      join(sb.dir, "nginx.conf"),
      [
        "worker_processes 2;",
        "events { worker_connections 64; }",
        "http {",
        "  access_log off;",
        ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((k) => `  ${temp(k)}`),
        "  server {",
        `    listen 127.0.0.1:${port};`,
        "    location = /health { return 200 'ok'; }",
        "  }",
        "}",
        "",
      ].join("\n"),
    );
    const start = await sb.cli(["services", "start", "nginx"]);
    assert.equal(start.code, 0, start.stdout + start.stderr);
    assert.match(start.stdout, /^✅ Service nginx is healthy\b/m);
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    assert.deepEqual([res.status, await res.text()], [200, "ok"]);

    const p = await sb.open();
    const status = await p.status("nginx");
    assert.deepEqual([status.status, status.health], ["running", "healthy"]);
    const master = status.pid!;
    // The master and its two workers share the group the driver created.
    assert.ok((await groupMembers(master)).length >= 3, "nginx workers not in the group");

    const stop = await sb.cli(["services", "stop", "nginx"]);
    assert.equal(stop.code, 0, stop.stdout + stop.stderr);
    assert.deepEqual(await groupMembers(master), []);
    assert.equal(await portInUse(port), false);
    const health = JSON.parse((await sb.cli(["platform", "health", "--json"])).stdout);
    assert.deepEqual(health.summary, {
      healthy: 0,
      unhealthy: 0,
      not_running: 1,
      failed: 0,
      unknown: 0,
    });
  },
});
