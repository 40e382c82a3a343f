#!/usr/bin/env node
/**
 * One small demo service that plays any role of the demo platform. Dependency-free; runs with
 * `node examples/platform/service.mjs ...` and `deno run -A examples/platform/service.mjs ...`.
 *
 *   --name N            name used in logs and answered on `/` (default "service")
 *   --port P            port on 127.0.0.1 (0 picks a free one; the log line says which)
 *   --kind K            http: GET /health is 503 until ready, then 200 {"status":"ok"}
 *                       tcp:  listens only once ready
 *                       plain: no socket (default: http with --port, plain without)
 *   --ready-after MS    delay until ready (default 300), counted from --ready-from
 *   --ready-from F      start: from when this script starts running (default)
 *                       process: from the process's own start (`performance.timeOrigin`), so
 *                       runtime boot time counts too: ready at timeOrigin + MS (benchmarks)
 *   --ready-file PATH   touched once ready, removed on exit
 *   --exit-after MS     exit with --exit-code (default 1) after MS, for failure demos
 *   --ignore-sigterm    keep running on SIGTERM (for stop-escalation tests)
 *   --fork N            spawn N grandchildren that just sleep (for process-tree tests)
 *
 * One line per event on stdout: `2026-01-01T00:00:00.000Z control-center ready`.
 * Exits 0 on SIGTERM/SIGINT.
 */
import { spawn } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer as createTcpServer } from "node:net";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values: opts } = parseArgs({
  options: {
    name: { type: "string", default: "service" },
    port: { type: "string" },
    kind: { type: "string" },
    "ready-after": { type: "string", default: "300" },
    "ready-from": { type: "string", default: "start" },
    "ready-file": { type: "string" },
    "exit-after": { type: "string" },
    "exit-code": { type: "string", default: "1" },
    "ignore-sigterm": { type: "boolean", default: false },
    fork: { type: "string", default: "0" },
    sleep: { type: "boolean", default: false }, // internal: the grandchild role
  },
});

const name = opts.name;
const kind = opts.kind ?? (opts.port === undefined ? "plain" : "http");
const log = (event) => process.stdout.write(`${new Date().toISOString()} ${name} ${event}\n`);
const fail = (message) => {
  process.stderr.write(`${name}: ${message}\n`);
  process.exit(2);
};
const int = (flag) => {
  const n = Number(opts[flag]);
  if (!Number.isInteger(n) || n < 0) fail(`--${flag} must be a whole number, got "${opts[flag]}"`);
  return n;
};

if (opts.sleep) {
  setInterval(() => {}, 1 << 30); // a grandchild: sleep until killed
} else {
  main();
}

function main() {
  if (!["http", "tcp", "plain"].includes(kind)) {
    fail(`--kind must be http, tcp or plain, got "${kind}"`);
  }
  if (kind !== "plain" && opts.port === undefined) fail(`--kind ${kind} needs --port`);
  const readyFrom = opts["ready-from"];
  if (!["start", "process"].includes(readyFrom)) {
    fail(`--ready-from must be start or process, got "${readyFrom}"`);
  }
  // performance.now() counts from performance.timeOrigin, the process's start.
  const bootMs = Math.round(performance.now());
  const readyIn = readyFrom === "process"
    ? Math.max(0, int("ready-after") - performance.now())
    : int("ready-after");
  const port = kind === "plain" ? 0 : int("port");
  let ready = false;
  let server;
  const timers = [];

  const exit = (code) => {
    for (const t of timers) clearTimeout(t);
    if (opts["ready-file"]) rmSync(opts["ready-file"], { force: true });
    server?.close();
    process.exit(code);
  };
  const listen = (srv, then) => {
    server = srv;
    srv.on("error", (err) => {
      log(`listen on 127.0.0.1:${port} failed: ${err.code ?? err.message}`);
      exit(1);
    });
    srv.listen(port, "127.0.0.1", () => {
      log(`listening on 127.0.0.1:${srv.address().port}`);
      then?.();
    });
  };
  const becomeReady = () => {
    ready = true;
    if (opts["ready-file"]) writeFileSync(opts["ready-file"], `${process.pid}\n`);
    log("ready");
  };

  for (const sig of ["SIGTERM", "SIGINT"]) {
    process.on(sig, () => {
      if (opts["ignore-sigterm"] && sig === "SIGTERM") return log("ignoring SIGTERM");
      log(`received ${sig}, exiting`);
      exit(0);
    });
  }
  const boot = readyFrom === "process" ? `, ${bootMs} ms after process start` : "";
  log(`starting (pid ${process.pid}, kind ${kind}${boot})`); // signal handlers are in place
  for (let i = 0; i < int("fork"); i++) {
    const child = spawn(
      process.execPath,
      [...runtimeArgs(), "--name", `${name}-child`, "--sleep"],
      {
        stdio: "ignore",
      },
    );
    log(`forked pid ${child.pid}`);
  }
  if (kind === "http") {
    listen(createHttpServer((req, res) => {
      const path = new URL(req.url ?? "/", "http://x").pathname;
      const reply = (status, body, type = "application/json") => {
        res.writeHead(status, { "content-type": type }).end(body);
      };
      if (path === "/health") {
        reply(ready ? 200 : 503, JSON.stringify({ status: ready ? "ok" : "starting" }));
      } else if (path === "/") reply(200, `${name}\n`, "text/plain");
      else reply(404, JSON.stringify({ error: "not found" }));
    }));
  }
  timers.push(setTimeout(() => {
    if (kind === "tcp") {
      listen(
        createTcpServer((socket) => {
          // A health check connects and resets at once: that is no reason to crash.
          socket.on("error", () => {});
          socket.end(`${name}\n`);
        }),
        becomeReady,
      );
    } else becomeReady();
  }, readyIn));
  if (opts["exit-after"] !== undefined) {
    const code = int("exit-code");
    timers.push(setTimeout(() => {
      log(`exiting with code ${code}`);
      exit(code);
    }, int("exit-after")));
  }
  setInterval(() => {}, 1 << 30); // stay alive, whatever the kind
}

/** Arguments that make `process.execPath` run this file again, under Node or Deno. */
function runtimeArgs() {
  const self = fileURLToPath(import.meta.url);
  return process.versions.deno ? ["run", "-A", self] : [self];
}
