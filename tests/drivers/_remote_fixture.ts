/**
 * A real nginx (Debian's nginx-light) serving https on a test host (tests/_hosts.ts: 127.0.0.2
 * unless told, or host B of a pair of network namespaces) with certificates made here with
 * openssl — a CA and a leaf for the host's IP and DNS:remote.test, an expired leaf, a client
 * certificate, a second CA nobody trusts — for the remote driver's tests
 * (tests/drivers/remote_test.ts, tests/e2e/remote_test.ts).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loopbackHost, type TestHost } from "../_hosts.ts";
import { findProgram } from "../_plugin_helpers.ts";
import { until } from "../_until.ts";

export const NGINX = findProgram("nginx", ["/usr/sbin/nginx"]);
export const OPENSSL = findProgram("openssl", ["/usr/bin/openssl"]);
/** Why the nginx tests are ignored, or undefined when they can run. */
export const MISSING = !NGINX ? "nginx is not installed" : !OPENSSL ? "openssl is missing" : "";
if (MISSING) console.warn(`remote driver tests skipped: ${MISSING}`);

/** The address the driver tests' servers listen on (all of 127.0.0.0/8 is loopback). */
export const HOST = "127.0.0.2";
/** {@linkcode HOST} as a test host. */
export const LOCAL = loopbackHost("b", HOST);
/** The two tokens nginx accepts, and the label its access log writes for each. */
export const TOKENS = { a: "tok-A-5f2c9e", b: "tok-B-81d07a" } as const;

function run(cmd: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, encoding: "utf8" }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${cmd} ${args.join(" ")}: ${stderr || error.message}`));
      else resolve(stdout);
    });
  });
}

/** Certificates made for one test run, all files in `dir`. */
export interface Pki {
  dir: string;
  /** The CA that signed the leaves (trust it through ca_file). */
  ca: string;
  /** Another CA, which signed nothing the servers use. */
  otherCa: string;
  leaf: { cert: string; key: string };
  /** Signed by `ca`, valid 2020-01-01 to 2020-01-02. */
  expired: { cert: string; key: string };
  /** A client certificate signed by `ca`, for mutual TLS. */
  client: { cert: string; key: string };
}

/** A CA, a leaf for IP:`address` and DNS:remote.test, an expired leaf, a client cert, another CA. */
export async function makePki(dir: string, address = HOST): Promise<Pki> {
  await mkdir(join(dir, "db"), { recursive: true });
  const o = (...args: string[]) => run(OPENSSL!, args, dir);
  const ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes".split(" ");
  const words = (line: string) => line.trim().split(/\s+/);
  const LEAF = `subjectAltName=IP:${address},DNS:remote.test\nbasicConstraints=CA:FALSE\n` +
    "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n";
  for (const name of ["ca", "other-ca"]) {
    await o(
      ...words(`req -x509 ${ec.join(" ")} -keyout ${name}.key -out ${name}.pem -days 2`),
      ...["-subj", `/CN=${name} test`],
      ...["-addext", "basicConstraints=critical,CA:TRUE"],
      ...["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
    );
  }
  await writeFile(
    join(dir, "ext.cnf"),
    `[leaf]\n${LEAF}[client]\nbasicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n` +
      "keyUsage=digitalSignature\n",
  );
  await writeFile(join(dir, "db", "index.txt"), "");
  await writeFile(join(dir, "db", "serial"), "01\n");
  await writeFile(
    join(dir, "ca.cnf"),
    "[ca]\ndefault_ca=test\n[test]\ndir=./db\ndatabase=$dir/index.txt\nnew_certs_dir=$dir\n" +
      "serial=$dir/serial\ndefault_md=sha256\npolicy=any\nunique_subject=no\n" +
      `[any]\ncommonName=supplied\n[leaf]\n${LEAF}`,
  );
  for (const [name, cn] of [["leaf", "remote.test"], ["client", "client"]]) {
    await o(
      ...words(`req ${ec.join(" ")} -keyout ${name}.key -out ${name}.csr`),
      "-subj",
      `/CN=${cn}`,
    );
    await o(
      ...words(`x509 -req -in ${name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2`),
      ...words(`-out ${name}.pem -extfile ext.cnf -extensions ${name}`),
    );
  }
  // OpenSSL 3.0's x509 has no -not_before/-not_after; `openssl ca` takes explicit dates.
  await o(
    ...words("ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in leaf.csr -out expired.pem"),
    ...words("-startdate 20200101000000Z -enddate 20200102000000Z -extensions leaf -notext"),
  );
  const f = (n: string) => join(dir, n);
  return {
    dir,
    ca: f("ca.pem"),
    otherCa: f("other-ca.pem"),
    leaf: { cert: f("leaf.pem"), key: f("leaf.key") },
    expired: { cert: f("expired.pem"), key: f("leaf.key") },
    client: { cert: f("client.pem"), key: f("client.key") },
  };
}

/** A free TCP port on {@linkcode HOST}. */
export function freePort(host = HOST): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The ports of an {@linkcode Nginx}: one server each. */
export interface NginxPorts {
  /** The good leaf; `/` wants one of {@linkcode TOKENS}, `/open` wants none, `/broken` is 503. */
  main: number;
  /** The expired leaf. */
  expired: number;
  /** Mutual TLS: `/` answers 200 with a client certificate of the CA, 403 without. */
  mtls: number;
}

/**
 * nginx in the foreground (`daemon off`, `master_process off`: one process, its PID the one we
 * spawned), prefix, config, pid and logs in its own dir. The access log writes which token
 * reached it as a label (`a`, `b`, `none`), never the token.
 */
export class Nginx implements AsyncDisposable {
  #child?: ChildProcess;
  private constructor(
    readonly dir: string,
    readonly ports: NginxPorts,
    readonly pki: Pki,
    readonly host: TestHost,
  ) {}

  /** Write the config (ports chosen now) for `host`; `start()` runs it there. */
  static async create(dir: string, pki: Pki, host = LOCAL): Promise<Nginx> {
    await mkdir(join(dir, "tmp"), { recursive: true });
    const port = () => host.freePort();
    const ports = { main: await port(), expired: await port(), mtls: await port() };
    const ng = new Nginx(dir, ports, pki, host);
    const HOST = host.address;
    const t = (p: string) => join(dir, "tmp", p);
    const ssl = (c: { cert: string; key: string }) =>
      `ssl_certificate ${c.cert};\n    ssl_certificate_key ${c.key};`;
    await writeFile(
      ng.config,
      `worker_processes 1;
master_process off;
daemon off;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")} info;
events { worker_connections 64; }
http {
  map $http_authorization $who {
    "Bearer ${TOKENS.a}" a;
    "Bearer ${TOKENS.b}" b;
    default none;
  }
  log_format who '$server_port $uri $status who=$who';
  access_log ${join(dir, "access.log")} who;
  client_body_temp_path ${t("body")};
  proxy_temp_path ${t("proxy")};
  fastcgi_temp_path ${t("fastcgi")};
  uwsgi_temp_path ${t("uwsgi")};
  scgi_temp_path ${t("scgi")};
  server {
    listen ${HOST}:${ports.main} ssl;
    ${ssl(pki.leaf)}
    location / {
      if ($who = none) { return 401; }
      return 200 "ok\\n";
    }
    location /open { return 200 "open\\n"; }
    location /broken { return 503; }
  }
  server {
    listen ${HOST}:${ports.expired} ssl;
    ${ssl(pki.expired)}
    location / { return 200 "ok\\n"; }
  }
  server {
    listen ${HOST}:${ports.mtls} ssl;
    ${ssl(pki.leaf)}
    ssl_client_certificate ${pki.ca};
    ssl_verify_client optional;
    location / {
      if ($ssl_client_verify != SUCCESS) { return 403; }
      return 200 "mtls\\n";
    }
  }
}
`,
    );
    return ng;
  }

  get config(): string {
    return join(this.dir, "nginx.conf");
  }

  /** Its PID while it runs. */
  get pid(): number | undefined {
    const c = this.#child;
    return c && c.exitCode === null && c.signalCode === null ? c.pid : undefined;
  }

  /** Start it; resolves once its ports accept connections. */
  async start(): Promise<void> {
    const args = ["-p", this.dir, "-e", join(this.dir, "error.log"), "-c", this.config];
    const child = spawn(...this.host.argv(NGINX!, args), {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    this.#child = child;
    await until(
      () => {
        if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
        return this.host.listening(this.ports.main) && this.host.listening(this.ports.mtls);
      },
      "nginx listening",
      10_000,
    );
  }

  /** Kill it by PID (SIGKILL: it is one process) and wait until it is gone. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    process.kill(child.pid!, "SIGKILL");
    await exited;
  }

  /** Which token (`a`, `b`, `none`) each request to `uri` brought, oldest first. */
  async who(uri = "/"): Promise<string[]> {
    const log = await readFile(join(this.dir, "access.log"), "utf8").catch(() => "");
    return log.split("\n").filter((l) => l.split(" ")[1] === uri).map((l) =>
      /who=(\w+)/.exec(l)?.[1] ?? "?"
    );
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
  }
}

/**
 * A temp dir with certificates and an nginx on `host` (not started); removes everything on
 * dispose.
 */
export async function nginxFixture(prefix = "prov-remote-", host = LOCAL): Promise<
  { dir: string; pki: Pki; nginx: Nginx } & AsyncDisposable
> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  try {
    const pki = await makePki(join(dir, "pki"), host.address);
    const nginx = await Nginx.create(join(dir, "nginx"), pki, host);
    return {
      dir,
      pki,
      nginx,
      async [Symbol.asyncDispose]() {
        await nginx.kill();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/** Write `token` to `file` with `mode` (0600 unless told). */
export async function writeToken(file: string, token: string, mode = 0o600): Promise<void> {
  await writeFile(file, `${token}\n`, { mode });
  await chmod(file, mode);
}

/** A TOML value: strings quoted, tables inline. */
export function tomlValue(v: unknown): string {
  if (v && typeof v === "object" && !Array.isArray(v)) {
    return `{ ${
      Object.entries(v).map(([k, x]) => `${JSON.stringify(k)} = ${tomlValue(x)}`).join(", ")
    } }`;
  }
  return JSON.stringify(v);
}

/**
 * `[services.NAME]` of mode remote with the given remote table, `start_timeout` (default 5) and
 * extra TOML (a health check ...).
 */
export function remoteToml(
  name: string,
  remote: Record<string, unknown>,
  opts: { extra?: string; startTimeout?: number; deps?: string[] } = {},
): string {
  const lines = Object.entries(remote).map(([k, v]) => `${k} = ${tomlValue(v)}`);
  return `[services.${name}]\ndependencies = ${tomlValue(opts.deps ?? [])}\n` +
    `[services.${name}.deployment]\nmode = "remote"\n` +
    `[services.${name}.deployment.remote]\n${lines.join("\n")}\n` +
    `[services.${name}.startup]\nstart_timeout = ${opts.startTimeout ?? 5}\n${opts.extra ?? ""}\n`;
}

/**
 * A TCP listener on `host`'s `port` that counts the connections it gets and resets them:
 * something is polling the port. It is a child process on that host; `close()` kills it (by PID)
 * and so frees the port for the real server.
 */
export async function gate(port: number, host = LOCAL) {
  const script = `const s = (await import("node:net")).createServer((c) => { c.destroy(); ` +
    `console.log("hit"); }); s.listen(${port}, "${host.address}", () => console.log("ready"));`;
  const child = spawn(...host.argv(Deno.execPath(), ["eval", script]), {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  const exited = new Promise((r) => child.once("exit", r));
  await until(
    () => {
      if (child.exitCode !== null) throw new Error(`the gate exited: ${out}`);
      return out.startsWith("ready");
    },
    "the gate listening",
    10_000,
  );
  return {
    get hits() {
      return out.split("\n").filter((l) => l === "hit").length;
    },
    close: async () => {
      process.kill(child.pid!, "SIGKILL");
      await exited;
    },
  };
}
