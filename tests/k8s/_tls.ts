/**
 * Test TLS material for the API double, made with `openssl` in a temp dir: a CA
 * (basicConstraints CA:TRUE) and a leaf certificate it signs (CA:FALSE, subjectAltName
 * IP:127.0.0.1 and DNS:localhost). A separate leaf is needed: rustls (Deno) rejects a self-signed
 * CA used as the server certificate (`CaUsedAsEndEntity`).
 */

import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface TestCerts {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  ca: string;
  cert: string;
  key: string;
  /** Removes the temp dir. */
  remove(): Promise<void>;
}

/** Makes a CA and a 127.0.0.1/localhost server certificate in a new temp dir. */
export async function makeTestCerts(): Promise<TestCerts> {
  const dir = await mkdtemp(join(tmpdir(), "k8s-double-tls-"));
  const p = (f: string) => join(dir, f);
  const openssl = (...args: string[]) => run("openssl", args, { timeout: 20_000 });
  try {
    await writeFile(
      p("leaf.ext"),
      [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        "extendedKeyUsage=serverAuth",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "authorityKeyIdentifier=keyid",
        "",
      ].join("\n"),
    );
    await openssl(
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      p("ca.key"),
      "-out",
      p("ca.crt"),
      "-days",
      "2",
      "-subj",
      "/CN=k8s-double-test-ca",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    );
    await openssl(
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      p("server.key"),
      "-out",
      p("server.csr"),
      "-subj",
      "/CN=127.0.0.1",
    );
    await openssl(
      "x509",
      "-req",
      "-in",
      p("server.csr"),
      "-CA",
      p("ca.crt"),
      "-CAkey",
      p("ca.key"),
      "-CAcreateserial",
      "-out",
      p("server.crt"),
      "-days",
      "2",
      "-extfile",
      p("leaf.ext"),
    );
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    dir,
    caFile: p("ca.crt"),
    certFile: p("server.crt"),
    keyFile: p("server.key"),
    ca: await readFile(p("ca.crt"), "utf8"),
    cert: await readFile(p("server.crt"), "utf8"),
    key: await readFile(p("server.key"), "utf8"),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
