/**
 * Pre-flight of the remote driver: what can be known before the endpoint is asked. The token
 * file exists and is not readable by group or others; a token never goes over plain http to a
 * host that is not loopback; `ca_file` holds PEM certificates that parse; a client certificate
 * parses and its key is private and belongs to it; `insecure` is said out loud. The endpoint
 * itself is not probed here: the start waits for it.
 *
 * @module
 */
import { createPrivateKey, type X509Certificate } from "node:crypto";
import { open } from "node:fs/promises";
import type { Finding } from "../../core/types.ts";
import { plainHttpToken } from "./_client.ts";
import { isLoopback, type Target } from "./_target.ts";
import { pemCertificates } from "./_tls.ts";
import { octal, readToken, TokenError } from "./_token.ts";

const ok = (message: string): Finding => ({ ok: true, kind: "prerequisite", message });
const bad = (message: string, hint?: string): Finding => ({
  ok: false,
  kind: "prerequisite",
  message,
  ...(hint ? { hint } : {}),
});

/** Every pre-flight finding of `t`. */
export async function remotePreflight(t: Target): Promise<Finding[]> {
  const findings: Finding[] = [];
  if (t.tokenPath !== undefined) {
    if (!t.https && !isLoopback(t.host)) {
      const e = plainHttpToken(t);
      findings.push(bad(e.message, e.hint));
    }
    try {
      await readToken(t.tokenPath);
      findings.push(ok(`Token file ${t.tokenPath} is readable by its owner only`));
    } catch (e) {
      if (!(e instanceof TokenError)) throw e;
      findings.push(bad(e.message, e.hint));
    }
  }
  if (t.caFile !== undefined) findings.push(await caFinding(t.caFile));
  if (t.certFile !== undefined && t.keyFile !== undefined) {
    findings.push(...await clientFindings(t.certFile, t.keyFile));
  }
  if (t.insecure) {
    findings.push(ok(
      `⚠️  insecure = true: the certificate of ${t.where} is not verified (anyone in between can impersonate it${
        t.tokenPath ? " and read the token" : ""
      })`,
    ));
  }
  return findings;
}

/** A file's text, or the finding that says why it cannot be read. */
async function text(file: string, key: string): Promise<{ text: string; mode: number } | Finding> {
  try {
    const fh = await open(file, "r");
    try {
      const st = await fh.stat();
      if (!st.isFile()) return bad(`${key} ${file} is not a file`);
      return { text: await fh.readFile("utf8"), mode: st.mode };
    } finally {
      await fh.close();
    }
  } catch (e) {
    const code = (e as { code?: string }).code;
    return bad(
      code === "ENOENT" ? `${key} ${file} does not exist` : `Cannot read ${key} ${file}: ${code}`,
    );
  }
}

/** Certificates of a PEM file, or the finding that says what is wrong with it. */
function certificates(file: string, key: string, body: string): X509Certificate[] | Finding {
  try {
    const certs = pemCertificates(body);
    if (certs.length) return certs;
    return bad(`${key} ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  } catch (e) {
    return bad(`${key} ${file}: a certificate does not parse (${(e as Error).message})`);
  }
}

async function caFinding(file: string): Promise<Finding> {
  const read = await text(file, "ca_file");
  if ("ok" in read) return read;
  const certs = certificates(file, "ca_file", read.text);
  if ("ok" in certs) return certs;
  const now = Date.now();
  const expired = certs.filter((c) => Date.parse(c.validTo) < now);
  if (expired.length === certs.length) {
    return bad(`ca_file ${file}: every certificate in it has expired (${expired[0].validTo})`);
  }
  const names = certs.map((c) => /CN=([^\n]+)/.exec(c.subject)?.[1] ?? c.subject).join(", ");
  return ok(`ca_file ${file}: ${certs.length} certificate(s) (${names})`);
}

async function clientFindings(certFile: string, keyFile: string): Promise<Finding[]> {
  const [cert, key] = [await text(certFile, "client_cert"), await text(keyFile, "client_key")];
  const out: Finding[] = [];
  let leaf: X509Certificate | undefined;
  if ("ok" in cert) out.push(cert);
  else {
    const certs = certificates(certFile, "client_cert", cert.text);
    if ("ok" in certs) out.push(certs);
    else leaf = certs[0];
  }
  if ("ok" in key) return [...out, key];
  if (key.mode & 0o044) {
    return [
      ...out,
      bad(
        `client_key ${keyFile} is readable by ${key.mode & 0o004 ? "others" : "its group"} (mode ${
          octal(key.mode)
        })`,
        `Make it private: chmod 600 ${keyFile}`,
      ),
    ];
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key.text);
  } catch {
    return [...out, bad(`client_key ${keyFile} is not a PEM private key that parses`)];
  }
  if (leaf && !leaf.checkPrivateKey(privateKey)) {
    return [...out, bad(`client_key ${keyFile} is not the key of client_cert ${certFile}`)];
  }
  if (leaf) out.push(ok(`Client certificate ${certFile} and its key are usable`));
  return out;
}
