/**
 * Why a TLS verification failed, in one line: the certificate expired (or is not valid yet), it
 * names another host, or no trusted CA signed it (self-signed, or a CA outside `ca_file` / the
 * system roots).
 *
 * Node says which with its error codes (`CERT_HAS_EXPIRED`, `ERR_TLS_CERT_ALTNAME_INVALID`,
 * `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `SELF_SIGNED_CERT_IN_CHAIN` ...); Deno's rustls-backed
 * `node:tls` reports most of them as `UNABLE_TO_VERIFY_LEAF_SIGNATURE`. So the explanation does
 * not trust the code alone: it fetches the server's certificate on a second, unverified
 * handshake (no request is sent on it: nothing, and no token, goes to the server) and looks at
 * it (`node:crypto` X509Certificate): its dates, its names, its issuer against `ca_file`.
 *
 * @module
 */
import { X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { connect, type ConnectionOptions } from "node:tls";
import type { Target } from "./_target.ts";

/** Node's codes of a certificate that failed verification, and what each means. */
const CODES: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "not signed by a trusted CA",
  UNABLE_TO_GET_ISSUER_CERT: "not signed by a trusted CA",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "not signed by a trusted CA",
  SELF_SIGNED_CERT_IN_CHAIN: "its chain ends in a self-signed CA that is not trusted",
  DEPTH_ZERO_SELF_SIGNED_CERT: "self-signed (not signed by a trusted CA)",
  CERT_HAS_EXPIRED: "expired",
  CERT_NOT_YET_VALID: "not valid yet",
  ERR_TLS_CERT_ALTNAME_INVALID: "issued for another name",
  CERT_SIGNATURE_FAILURE: "its signature does not verify",
  CERT_UNTRUSTED: "not trusted",
  CERT_REJECTED: "rejected",
  CERT_REVOKED: "revoked",
  INVALID_CA: "signed by a certificate that is not a CA",
  CERT_CHAIN_TOO_LONG: "its chain is too long",
  UNABLE_TO_DECRYPT_CERT_SIGNATURE: "its signature cannot be read",
  ERR_TLS_CERT_SIGNATURE_ALGORITHM_UNSUPPORTED: "signed with an unsupported algorithm",
};

/** Whether `e` is a certificate verification failure (as opposed to a lost connection). */
export function isTlsFailure(e: Error & { code?: string }): boolean {
  return (e.code !== undefined && e.code in CODES) ||
    /certificate|UnknownIssuer|NotValidForName|Expired/i.test(e.message);
}

/** The PEM certificates of a file's text, parsed; throws on a block that does not parse. */
export function pemCertificates(text: string): X509Certificate[] {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  return (blocks ?? []).map((b) => new X509Certificate(b));
}

/**
 * One line on why the certificate of `t` failed verification with `e`; `tls` holds the options
 * of the failed request (its CA and server name).
 */
export async function explainTls(
  t: Target,
  e: Error & { code?: string },
  tls: ConnectionOptions,
): Promise<string> {
  const code = e.code && e.code in CODES ? e.code : undefined;
  const leaf = await peerCertificate(t, tls).catch(() => undefined);
  const trust = t.caFile ? `ca_file ${t.caFile}` : "the system roots";
  if (!leaf) {
    return `TLS: the certificate is ${code ? CODES[code] : "not trusted"} (${code ?? e.message})`;
  }
  const now = Date.now();
  if (now > Date.parse(leaf.validTo)) {
    return `TLS: the certificate expired on ${iso(leaf.validTo)} (CERT_HAS_EXPIRED)`;
  }
  if (now < Date.parse(leaf.validFrom)) {
    return `TLS: the certificate is not valid before ${iso(leaf.validFrom)} (CERT_NOT_YET_VALID)`;
  }
  const name = t.serverName ?? t.host;
  const matches = isIP(name) ? leaf.checkIP(name) : leaf.checkHost(name);
  if (matches === undefined || code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    const names = leaf.subjectAltName ?? `CN ${cn(leaf.subject)}`;
    return `TLS: the certificate is for ${names}, not ${name}${
      t.serverName ? " (tls_server_name)" : ""
    } (ERR_TLS_CERT_ALTNAME_INVALID)`;
  }
  const selfSigned = leaf.subject === leaf.issuer && leaf.checkIssued(leaf);
  if (selfSigned) {
    return `TLS: the certificate is self-signed, and not in ${trust} (DEPTH_ZERO_SELF_SIGNED_CERT)`;
  }
  const cas = typeof tls.ca === "string" ? safely(() => pemCertificates(tls.ca as string)) : [];
  if (cas?.some((ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey))) {
    return `TLS: the certificate is signed by a CA of ${trust} but does not verify (${
      code ?? e.message
    }): is that CA certificate a CA (basicConstraints CA:TRUE), is the leaf for serverAuth?`;
  }
  return `TLS: the certificate (issued by "${
    cn(leaf.issuer)
  }") is not signed by a CA of ${trust} (${
    code && code !== "CERT_HAS_EXPIRED" ? code : "UNABLE_TO_VERIFY_LEAF_SIGNATURE"
  })`;
}

/** The server's leaf certificate, from a handshake that verifies nothing and sends nothing. */
function peerCertificate(t: Target, tls: ConnectionOptions): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: t.host,
      port: t.port,
      servername: tls.servername,
      rejectUnauthorized: false,
    }, () => {
      try {
        const raw = socket.getPeerCertificate(true)?.raw;
        if (!raw) throw new Error("no certificate");
        resolve(new X509Certificate(raw));
      } catch (err) {
        reject(err);
      } finally {
        socket.destroy();
      }
    });
    socket.setTimeout(Math.min(t.timeoutMs, 5_000), () => socket.destroy(new Error("timeout")));
    socket.on("error", reject);
  });
}

function safely<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

/** `CN=test CA` → `test CA` (the whole subject when it has no CN). */
function cn(subject: string): string {
  return /(?:^|\n)CN=([^\n]+)/.exec(subject)?.[1] ?? subject.replaceAll("\n", ", ");
}

/** `Jan  2 00:00:00 2020 GMT` → `2020-01-02T00:00:00Z`. */
function iso(date: string): string {
  const ms = Date.parse(date);
  return Number.isNaN(ms) ? date : new Date(ms).toISOString().replace(".000Z", "Z");
}
