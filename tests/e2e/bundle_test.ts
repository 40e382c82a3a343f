/**
 * The program outside its source tree: the Node bundle (`dist/cli.cjs`) and the standalone
 * binary (`dist/provisioning`), each run from an empty temp directory with a fresh HOME and
 * PROVISIONING_HOME and no registry of its own. They read the bundled registry embedded at
 * build time (and say so), validate with the schema, print their version and commit, load a
 * user plugin from disk (a `.ts` one in the binary), run their supervisor on their own runtime
 * and serve the dashboard. Then the npm package: `npm pack`, `npm install -g` in a temp prefix.
 *
 * Built once per run of this file (`ensureBuilt`: dist/ is reused when newer than the sources).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { readlink } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureBuilt } from "../../scripts/build.ts";
import { BINARY, BUNDLE, CLI, ROOT } from "../_cli.ts";
import { until } from "../_until.ts";
import { freePort } from "./_registry.ts";

await ensureBuilt("binary"); // the bundle first, then the binary compiled from it

const VERSION = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version as string;
const BUNDLED = "<bundled>/config/services.toml";

type Build = "node" | "binary";
const BUILDS: Build[] = ["node", "binary"];

/** How to run a build with `args`. */
function command(build: Build, args: string[]): [string, string[]] {
  return build === "node" ? ["node", [BUNDLE, ...args]] : [BINARY, args];
}

/** An empty working directory and a fresh HOME, no PROVISIONING_* from the test's environment. */
function outside(): { cwd: string; home: string; env: Record<string, string>; dispose(): void } {
  const dir = mkdtempSync(join(tmpdir(), "prov-build-"));
  const cwd = join(dir, "work");
  const home = join(dir, "home");
  mkdirSync(cwd);
  mkdirSync(home);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("PROVISIONING_")) env[k] = v;
  }
  Object.assign(env, { HOME: home, PROVISIONING_HOME: join(home, ".provisioning"), NO_COLOR: "1" });
  return { cwd, home, env, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `build args` in `at` to its end. */
function run(build: Build, args: string[], at: ReturnType<typeof outside>): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(...command(build, args), { cwd: at.cwd, env: at.env });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** GET `path` on 127.0.0.1:`port`: status, content type, body. */
function get(port: number, path: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          type: String(res.headers["content-type"]),
          body,
        }));
    });
    req.once("error", reject);
    req.end();
  });
}

for (const build of BUILDS) {
  Deno.test(`${build}: services list and validate use the embedded bundled registry and say so`, async () => {
    const at = outside();
    try {
      // Neither reads a `.env` (or bunfig.toml) where it runs: it would redirect the registry.
      writeFileSync(join(at.cwd, ".env"), "PROVISIONING_SERVICES=/nonexistent/services.toml\n");
      const list = await run(build, ["services", "list", "--json"], at);
      assert.equal(list.code, 0, list.stderr);
      const names = JSON.parse(list.stdout).map((s: { name: string }) => s.name);
      assert.equal(names.length, 7);
      assert.ok(names.includes("orchestrator"), names.join(" "));
      assert.match(
        list.stderr,
        new RegExp(`^Using the bundled registry ${BUNDLED}: found no`, "m"),
      );
      assert.doesNotMatch(list.stderr, /Cannot read registry/);

      // The schema (registry and plugin tables) holds; only prerequisites are missing here.
      const valid = await run(build, ["services", "validate", "--json"], at);
      const doc = JSON.parse(valid.stdout);
      assert.equal(doc.file, BUNDLED);
      assert.equal(doc.registry.source, "bundled");
      assert.deepEqual(doc.issues, []);
      assert.equal(doc.total, 7);
      assert.equal(
        valid.code,
        3,
        "missing binaries are prerequisites (exit 3), not registry errors",
      );

      const bad = join(at.cwd, "bad.toml");
      writeFileSync(
        bad,
        `[services.web.deployment]\nmode = "binary"\nbinary = { binary_pth = "/bin/true" }\n`,
      );
      const invalid = await run(build, ["services", "validate", "--config", bad], at);
      assert.equal(invalid.code, 2, invalid.stdout + invalid.stderr);
      assert.match(invalid.stdout + invalid.stderr, /binary_pth/);
      assert.match(invalid.stdout + invalid.stderr, /binary_path/, "a did-you-mean hint");
    } finally {
      at.dispose();
    }
  });

  Deno.test(`${build}: --version names the version and the commit it was built from`, async () => {
    const at = outside();
    try {
      const r = await run(build, ["--version"], at);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout.trim(),
        new RegExp(`^provisioning ${VERSION} \\([0-9a-f]{7}(-dirty)?\\)$`),
      );
    } finally {
      at.dispose();
    }
  });

  Deno.test(`${build}: a user driver plugin loads from disk (${build === "binary" ? ".ts" : ".mjs"})`, async () => {
    const at = outside();
    try {
      // Factory form: zod comes from the API. The binary (Bun) imports TypeScript; Node 20 cannot.
      const typed = build === "binary";
      const dir = join(at.env.PROVISIONING_HOME, "plugins", "drivers");
      mkdirSync(dir, { recursive: true });
      writeFileSync(
        join(dir, typed ? "marker.ts" : "marker.mjs"),
        `import { existsSync, rmSync, writeFileSync } from "node:fs";
${typed ? "type Api = { z: any; defineDriver: any; driverConfig: any };\n" : ""}
export default ({ z, defineDriver, driverConfig }${typed ? ": Api" : ""}) => {
  const driver = defineDriver({
    mode: "marker",
    config: z.strictObject({ path: z.string().min(1) }),
    preflight: async () => [],
    async start(svc${
          typed ? ": unknown" : ""
        }) { writeFileSync(driverConfig(driver, svc).path, "up"); return {}; },
    async stop(svc${
          typed ? ": unknown" : ""
        }) { rmSync(driverConfig(driver, svc).path, { force: true }); },
    async status(svc${typed ? ": unknown" : ""}) {
      return { status: existsSync(driverConfig(driver, svc).path) ? "running" : "stopped" };
    },
    async *logs() {},
  });
  return driver;
};
`,
      );
      const up = join(at.home, "flag.up");
      const config = join(at.cwd, "services.toml");
      writeFileSync(
        config,
        `[services.flag.deployment]\nmode = "marker"\nmarker = { path = "${up}" }\n`,
      );
      const start = await run(build, ["services", "start", "flag", "--config", config], at);
      assert.equal(start.code, 0, start.stdout + start.stderr);
      const status = await run(
        build,
        ["services", "status", "flag", "--json", "--config", config],
        at,
      );
      assert.equal(JSON.parse(status.stdout).status, "running");
      const plugins = await run(build, ["plugins", "list", "--json", "--config", config], at);
      const marker = JSON.parse(plugins.stdout).find((p: { name: string }) => p.name === "marker");
      assert.equal(marker.file, join(dir, typed ? "marker.ts" : "marker.mjs"));
      const stop = await run(build, ["services", "stop", "flag", "--config", config], at);
      assert.equal(stop.code, 0, stop.stdout + stop.stderr);
    } finally {
      at.dispose();
    }
  });

  Deno.test(`${build}: the supervisor it starts runs on the same runtime, and restarts a crash`, async () => {
    const at = outside();
    const config = join(at.cwd, "services.toml");
    const port = await freePort();
    writeFileSync(
      config,
      `[services.web]
startup = { restart_on_failure = true, start_timeout = 10 }
[services.web.deployment]
mode = "binary"
binary = { binary_path = "node", args = [${
        JSON.stringify(join(ROOT, "examples/platform/service.mjs"))
      }, "--kind", "http", "--port", "${port}"] }
[services.web.health_check]
type = "http"
http = { endpoint = "http://127.0.0.1:${port}/health" }
`,
    );
    const cli = (...args: string[]) => run(build, [...args, "--config", config], at);
    try {
      const start = await cli("services", "start", "web");
      assert.equal(start.code, 0, start.stdout + start.stderr);
      const file = join(at.env.PROVISIONING_HOME, "run", "supervisor.pid");
      const pid = Number(readFileSync(file, "utf8").split(" ")[0]);
      const exe = await readlink(`/proc/${pid}/exe`);
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
      if (build === "binary") {
        assert.equal(exe, BINARY);
        assert.deepEqual(argv.slice(1), ["supervisor", "run"]);
      } else {
        assert.match(exe, /\/node$/);
        assert.deepEqual(argv.slice(-3), [BUNDLE, "supervisor", "run"]);
      }
      const before = JSON.parse((await cli("services", "status", "web", "--json")).stdout);
      assert.equal(before.health, "healthy", JSON.stringify(before));
      process.kill(before.pid, "SIGKILL");
      await until(async () => {
        const s = JSON.parse((await cli("services", "status", "web", "--json")).stdout);
        return s.status === "running" && s.health === "healthy" && s.pid !== before.pid;
      }, "the supervisor to restart web");
    } finally {
      await cli("platform", "stop", "--force");
      await run(build, ["supervisor", "stop"], at);
      at.dispose();
    }
  });

  Deno.test(`${build}: agent serves the dashboard page and its script`, async () => {
    const at = outside();
    const port = await freePort();
    const agent = spawn(...command(build, ["agent", "--listen", `127.0.0.1:${port}`]), {
      cwd: at.cwd,
      env: at.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    agent.stdout.on("data", (d) => (out += d));
    agent.stderr.on("data", (d) => (out += d));
    const exited = new Promise((resolve) => agent.once("exit", resolve));
    try {
      await until(() => Promise.resolve(/Dashboard: /.test(out)), `the agent to start: ${out}`);
      const page = await get(port, "/");
      assert.equal(page.status, 200);
      assert.match(page.type, /^text\/html/);
      assert.match(page.body, /<title>provisioning agent<\/title>/);
      const script = await get(port, "/app.js");
      assert.equal(script.status, 200);
      assert.match(script.type, /javascript/);
    } finally {
      process.kill(agent.pid!, "SIGTERM");
      await exited;
      at.dispose();
    }
  });
}

Deno.test("a run from the source tree says so", () => {
  const r = spawnSync(Deno.execPath(), ["run", "-A", "--quiet", CLI, "--version"], {
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout.trim(),
    new RegExp(`^provisioning ${VERSION} \\(([0-9a-f]{7}, )?source\\)$`),
  );
});

Deno.test("node bundle: its command tree runs from a code cache of this user's, made once, remade when V8 rejects it, never in a folder others may write", async () => {
  const at = outside();
  try {
    delete at.env.XDG_CACHE_HOME;
    const dir = join(at.home, ".cache", "provisioning");
    const caches = () => {
      try {
        return readdirSync(dir).filter((f) => f.endsWith(".cache"));
      } catch {
        return [];
      }
    };
    const first = await run("node", ["--help"], at);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(caches().length, 1, "made on the first run");
    const file = join(dir, caches()[0]);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const made = readFileSync(file);
    const again = await run("node", ["--help"], at);
    assert.deepEqual([again.code, again.stdout], [0, first.stdout], "the same help from the cache");
    assert.deepEqual(readFileSync(file), made, "a cache V8 takes is kept as it is");
    // A command that needs the library: the entry imports it for the tree.
    const list = await run("node", ["services", "list", "--json"], at);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(JSON.parse(list.stdout).length, 7, "the bundled registry's services");
    // Garbage of the same size: V8 rejects it, the help is the same, the cache is made anew.
    writeFileSync(file, Buffer.alloc(made.length, 7));
    const rejected = await run("node", ["--help"], at);
    assert.deepEqual([rejected.code, rejected.stdout], [0, first.stdout], rejected.stderr);
    assert.notDeepEqual(readFileSync(file), Buffer.alloc(made.length, 7), "remade");
    // A folder others may write is not used: nothing read from it, nothing written to it.
    rmSync(file);
    chmodSync(dir, 0o777);
    const open = await run("node", ["--help"], at);
    assert.deepEqual([open.code, open.stdout], [0, first.stdout], open.stderr);
    assert.deepEqual(caches(), [], "no cache in a folder others may write");
  } finally {
    at.dispose();
  }
});

Deno.test("npm pack builds the bundle; npm install -g of the package gives a working provisioning", async () => {
  const at = outside();
  const dir = join(at.home, "pack");
  const prefix = join(at.home, "prefix");
  try {
    const npm = (args: string[], cwd = ROOT) =>
      new Promise<Ran>((resolve, reject) => {
        // npm with the real HOME (its cache); the installed program with the fresh one.
        const env = { ...process.env, npm_config_update_notifier: "false" };
        const child = spawn("npm", args, { cwd, env });
        let stdout = "", stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        child.once("error", reject);
        child.once("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
      });
    mkdirSync(dir);
    const pack = await npm(["pack", "--json", "--pack-destination", dir]);
    assert.equal(pack.code, 0, pack.stderr);
    const [info] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf("[")));
    const files = info.files.map((f: { path: string }) => f.path) as string[];
    assert.ok(files.includes("dist/cli.cjs"), files.join(" "));
    assert.ok(files.some((f) => f.startsWith("dist/chunks/")), "the lazily loaded chunks");
    assert.ok(!files.includes("dist/provisioning"), "not the binary");
    assert.ok(files.every((f) => /^(dist\/|README\.md$|package\.json$)/.test(f)), files.join(" "));
    const manifest = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    assert.equal(manifest.dependencies, undefined, "the bundle needs no installed dependency");

    const tgz = join(dir, readdirSync(dir).find((f) => f.endsWith(".tgz"))!);
    const install = await npm(
      ["install", "-g", "--prefix", prefix, "--no-audit", "--no-fund", tgz],
      at.cwd,
    );
    assert.equal(install.code, 0, install.stderr);
    const bin = join(prefix, "bin", "provisioning");
    const ran = (args: string[]) =>
      new Promise<Ran>((resolve, reject) => {
        const child = spawn(bin, args, { cwd: at.cwd, env: at.env });
        let stdout = "", stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        child.once("error", reject);
        child.once("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
      });
    const version = await ran(["--version"]);
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout, new RegExp(`^provisioning ${VERSION} \\([0-9a-f]{7}`));
    const list = await ran(["services", "list", "--json"]);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(JSON.parse(list.stdout).length, 7);
    assert.match(list.stderr, new RegExp(`Using the bundled registry ${BUNDLED}`));
  } finally {
    at.dispose();
  }
});
