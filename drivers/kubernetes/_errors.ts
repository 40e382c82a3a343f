/**
 * The kubernetes driver's errors, each a message a person can act on (and, for the first two, a
 * hint): a kubeconfig that is missing or broken, a manifest that does not parse or does not hold
 * what it must, and a request that failed — no connection (refused, a name that does not
 * resolve, TLS verification, a timeout) or an answer (the API's `Status` message; for 401, whose
 * credentials were rejected). Request messages go through the caller's `redact`, so no credential
 * of the kubeconfig reaches output, logs or errors. The driver turns them into findings or
 * `ProvisioningError`s.
 *
 * @module
 */

/** A kubeconfig problem: the message says what and where, the hint what to do. */
export class KubeconfigError extends Error {
  override name = "KubeconfigError";
  constructor(message: string, readonly hint: string) {
    super(message);
  }
}

/** A manifest problem (the start or pre-flight turns it into a one-line refusal). */
export class ManifestError extends Error {
  override name = "ManifestError";
  constructor(message: string, readonly hint: string) {
    super(message);
  }
}

/** How a request failed: no connection (`refused`, `dns`, `tls`, `timeout`, `network`) or an answer (`http`). */
export type FailureKind = "refused" | "dns" | "tls" | "timeout" | "network" | "http";

/** A failed request: `status` and `reason` come from the API's `Status` object. */
export class KubeError extends Error {
  override name = "KubeError";
  constructor(
    message: string,
    readonly kind: FailureKind,
    readonly status?: number,
    readonly reason?: string,
  ) {
    super(message);
  }
  /** The API could not be reached at all (as opposed to an answer we did not like). */
  get unreachable(): boolean {
    return this.kind !== "http";
  }
}

/** A failed connection as a {@linkcode KubeError}; `where` names the API and context. */
export function networkError(
  e: Error & { code?: string },
  o: { where: string; redact: (text: string) => string },
): KubeError {
  const { where, redact } = o;
  if (e instanceof KubeError) return e;
  const code = e.code ?? "";
  const text = redact(`${e.message}`);
  if (code === "ECONNREFUSED" || /refused/i.test(text)) {
    return new KubeError(`Cannot reach ${where}: connection refused`, "refused");
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || /getaddrinfo|dns/i.test(text)) {
    return new KubeError(`Cannot reach ${where}: the host name does not resolve`, "dns");
  }
  if (/cert|tls|ssl|UnknownIssuer|self.signed|handshake/i.test(`${code} ${text}`)) {
    return new KubeError(`Cannot trust ${where}: TLS verification failed: ${text}`, "tls");
  }
  if (code === "ETIMEDOUT" || /timed? ?out/i.test(text)) {
    return new KubeError(`Cannot reach ${where}: connection timed out`, "timeout");
  }
  return new KubeError(`Lost ${where}: ${code || text}`, "network");
}

/** A non-2xx answer as a {@linkcode KubeError}: the `Status` object's message and reason. */
export function httpError(
  status: number,
  text: string,
  o: { where: string; user: string; redact: (text: string) => string },
): KubeError {
  let reason: string | undefined, message = text.trim().slice(0, 500);
  try {
    const s = JSON.parse(text) as { kind?: string; reason?: string; message?: string };
    if (s.kind === "Status") [reason, message] = [s.reason, s.message ?? ""];
  } catch { /* not a Status object */ }
  if (status === 401) {
    message = `${o.where} rejected the credentials of user "${o.user}" (401 Unauthorized)`;
  }
  return new KubeError(o.redact(message || `HTTP ${status}`), "http", status, reason);
}
