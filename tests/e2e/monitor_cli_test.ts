/**
 * `services monitor` through the CLI (issue 15, item 12): without a name it watches only the
 * services running when it starts, reports each round in a stable order, and with `--changes`
 * prints a service only when its health changes, marked `healthy → unhealthy`.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { cliCommand, ROOT } from "../_cli.ts";
import { until } from "./_registry.ts";
import { readyFile, supervisedSandbox } from "./_supervised.ts";

Deno.test("monitor --changes: only running services, one line per change, marked previous → now", async () => {
  await using sb = await supervisedSandbox([
    { name: "db", readyFile: true },
    { name: "web" },
  ]);
  const none = await sb.cli(["services", "monitor"]);
  assert.equal(none.code, 0, none.stderr);
  assert.match(none.stdout, /No running services to monitor/);
  const started = await sb.cli(["services", "start", "db"]);
  assert.equal(started.code, 0, started.stdout + started.stderr);

  const child = sb.adopt(spawn(
    ...cliCommand([
      "services",
      "monitor",
      "--interval",
      "1",
      "--changes",
      "--json",
      "--config",
      sb.config,
    ]),
    {
      cwd: ROOT,
      env: { ...process.env, PROVISIONING_HOME: sb.home },
      stdio: ["ignore", "pipe", "pipe"],
    },
  ));
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
  const lines = () =>
    out.split("\n").filter(Boolean).map((l) =>
      JSON.parse(l) as { name: string; state: string; previous?: string }
    );

  await until(() => lines().length >= 1, "the first report");
  assert.deepEqual(lines()[0].name, "db");
  assert.equal(lines()[0].state, "healthy");
  assert.equal(lines()[0].previous, undefined);

  rmSync(readyFile(sb, "db")); // db turns unhealthy
  await until(
    () => lines().some((l) => l.state === "unhealthy"),
    "the change to unhealthy",
    15_000,
  );
  writeFileSync(readyFile(sb, "db"), "ok"); // and healthy again
  await until(() => lines().length >= 3, "the change back to healthy", 15_000);
  process.kill(child.pid!, "SIGINT");
  assert.equal(await exited, 0);

  const seen = lines();
  assert.ok(seen.every((l) => l.name === "db"), "web does not run: it is not monitored");
  assert.deepEqual(
    seen.map((l) => `${l.previous ?? "-"}→${l.state}`),
    ["-→healthy", "healthy→unhealthy", "unhealthy→healthy"],
    "no line repeats an unchanged state",
  );
});
