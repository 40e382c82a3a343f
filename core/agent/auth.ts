/**
 * Who may talk to the agent: the bearer token (a 0600 file, refused when group or others can
 * read it, as ssh refuses a key), compared in constant time; the dashboard's session cookies;
 * the Host allow-list against DNS rebinding; the Origin check against CSRF.
 *
 * @module
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { closeSync, constants, fstatSync, mkdirSync, openSync, readSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { ExitCode, ProvisioningError } from "../errors.ts";
import type { StatePaths } from "../types.ts";

/** The token file of a home when `--token-file` is not given. */
export function defaultTokenFile(paths: StatePaths): string {
  return join(paths.home, "agent", "token");
}

const TOKEN_MAX = 4096;

/**
 * The token in `file`; created (32 random bytes, base64url, mode 0600) when missing and
 * `create`. A file that group or others may read or write, that is not a regular file of ours,
 * or that holds no token is refused (exit 3) with one line.
 */
export function loadToken(file: string, opts: { create?: boolean } = {}): string {
  const { O_RDONLY, O_NOFOLLOW, O_WRONLY, O_CREAT, O_EXCL } = constants;
  let fd: number;
  try {
    fd = openSync(file, O_RDONLY | O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ELOOP") refuse(file, "it is a symbolic link", `rm ${file}`);
    if (code !== "ENOENT" || !opts.create) {
      throw new ProvisioningError(`Cannot read the agent token ${file}: ${code ?? error}`, {
        exitCode: ExitCode.preflight,
        hints: ["Create one: provisioning agent token"],
      });
    }
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const token = randomBytes(32).toString("base64url");
    const out = openSync(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    try {
      writeSync(out, `${token}\n`);
    } finally {
      closeSync(out);
    }
    return token;
  }
  try {
    const st = fstatSync(fd);
    const uid = process.getuid?.();
    if (!st.isFile()) refuse(file, "it is not a regular file", `rm ${file}`);
    if (uid !== undefined && st.uid !== uid) {
      refuse(file, `it is owned by uid ${st.uid}`, `rm ${file}`);
    }
    if (st.mode & 0o077) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, "0");
      refuse(file, `group or others may read it (mode ${mode})`, `chmod 600 ${file}`);
    }
    const buf = Buffer.alloc(TOKEN_MAX + 1);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const token = buf.subarray(0, n).toString("utf8").trim();
    if (n > TOKEN_MAX || !/^[\x21-\x7e]{16,}$/.test(token)) {
      refuse(file, "it holds no token (16 to 4096 printable characters)", `rm ${file}`);
    }
    return token;
  } finally {
    closeSync(fd);
  }
}

function refuse(file: string, why: string, fix: string): never {
  throw new ProvisioningError(`Refusing the agent token ${file}: ${why}`, {
    exitCode: ExitCode.preflight,
    hints: [`Fix it: ${fix}`],
  });
}

/** Whether `given` is `token`, in time that does not depend on where they differ. */
export function tokenMatches(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(token).digest();
  return timingSafeEqual(a, b);
}

/** The bearer token of an `Authorization` header, if it has one. */
export function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer +(\S+) *$/i.exec(header ?? "");
  return m?.[1];
}

/** The name of the dashboard's session cookie. */
export const SESSION_COOKIE = "provisioning_session";

/**
 * Dashboard sessions: random ids handed out for a valid token, kept in memory (a restart of the
 * agent signs everyone out), at most `max` at once (the oldest goes), each for `ttlMs`.
 */
export class Sessions {
  #ids = new Map<string, number>();
  constructor(readonly ttlMs = 12 * 3600_000, readonly max = 1_000) {}

  create(): string {
    const id = randomBytes(32).toString("base64url");
    if (this.#ids.size >= this.max) this.#ids.delete(this.#ids.keys().next().value!);
    this.#ids.set(id, Date.now() + this.ttlMs);
    return id;
  }

  valid(id: string | undefined): boolean {
    if (!id) return false;
    // 256 random bits: a hash lookup's timing tells nothing usable about another id.
    const until = this.#ids.get(id);
    if (until === undefined) return false;
    if (until < Date.now()) {
      this.#ids.delete(id);
      return false;
    }
    return true;
  }

  /** The `Set-Cookie` header value for `id` (`secure` over TLS). */
  cookie(id: string, secure: boolean): string {
    return `${SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${
      Math.floor(this.ttlMs / 1000)
    }${secure ? "; Secure" : ""}`;
  }
}

/** The value of cookie `name` in a `Cookie` header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return v.join("=");
  }
  return undefined;
}

/**
 * The Host names a request may carry (DNS rebinding: a page of evil.example resolving to
 * 127.0.0.1 sends `Host: evil.example`): the listen address, `localhost`, and `names`, each
 * with the listen port.
 */
export function allowedHosts(listenHost: string, port: number, names: string[] = []): Set<string> {
  const hosts = new Set<string>();
  const bare = listenHost.replace(/^\[|\]$/g, "");
  const all = [bare, "localhost", ...names];
  if (bare === "0.0.0.0" || bare === "::") all.push("127.0.0.1", "::1");
  for (const h of all) {
    const shown = h.includes(":") ? `[${h}]` : h;
    hosts.add(`${shown}:${port}`.toLowerCase());
    if (port === 80 || port === 443) hosts.add(shown.toLowerCase());
  }
  return hosts;
}
