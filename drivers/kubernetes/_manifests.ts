/**
 * The manifests of a kubernetes service, read as `kubectl apply -f DIR` reads them: the folder's
 * `.yaml`, `.yml` and `.json` files (not its subfolders) in name order, or one file; multi-
 * document YAML; `kind: List` flattened. Every document must parse and name its `apiVersion`,
 * `kind` and `metadata.name`; one must be the Deployment `deployment_name`; none may name a
 * namespace other than the service's.
 *
 * YAML is parsed with js-yaml — the client's own YAML parser (a dependency of
 * `@kubernetes/client-node`), imported directly because the client's `loadAllYaml` passes every
 * document through its typed serializer, which drops the fields it does not know: a typo such as
 * `spec.replica: 3` would vanish before the server's strict validation could reject it.
 *
 * @module
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { basename, extname, join, resolve } from "node:path";
import { ManifestError } from "./_errors.ts";
import type { KubeObject } from "./_objects.ts";

/** One document of a manifest file. */
export interface Manifest {
  object: KubeObject;
  /** `app.yaml#2` (file name and document number), for messages. */
  source: string;
}

const EXTENSIONS = new Set([".yaml", ".yml", ".json"]);

/** The manifest files of `path` (a folder or a file), resolved against `cwd`. */
export async function manifestFiles(path: string, cwd: string): Promise<string[]> {
  const where = resolve(cwd, path);
  const info = await stat(where).catch(() => undefined);
  if (!info) {
    throw new ManifestError(
      `Manifests not found: ${where}`,
      "Fix manifests_path (a relative path starts at the current directory; ${PROVISIONING_REGISTRY_DIR}/… at the registry's folder)",
    );
  }
  if (info.isFile()) return [where];
  const names = (await readdir(where)).filter((n) => EXTENSIONS.has(extname(n).toLowerCase()))
    .sort();
  if (names.length === 0) {
    throw new ManifestError(
      `No manifests in ${where} (no .yaml, .yml or .json file)`,
      "Put the service's Deployment manifest there, or fix manifests_path",
    );
  }
  return names.map((n) => join(where, n));
}

/** Every document of the manifests at `path`; throws {@linkcode ManifestError} naming the file. */
export async function readManifests(path: string, cwd: string): Promise<Manifest[]> {
  const yaml = await import("js-yaml");
  const out: Manifest[] = [];
  for (const file of await manifestFiles(path, cwd)) {
    const text = await readFile(file, "utf8");
    let docs: unknown[];
    try {
      docs = extname(file).toLowerCase() === ".json" ? [JSON.parse(text)] : yaml.loadAll(text);
    } catch (error) {
      const e = error as { reason?: string; mark?: { line?: number }; message?: string };
      const line = e.mark?.line !== undefined ? `:${e.mark.line + 1}` : "";
      throw new ManifestError(
        `Cannot parse manifest ${file}${line}: ${e.reason ?? e.message}`,
        "Fix the file (kubectl apply --dry-run=client -f reports the same)",
      );
    }
    let n = 0;
    for (const doc of docs.flatMap(flattenList)) {
      n++;
      if (doc === null || doc === undefined) continue; // an empty document between `---`
      out.push({
        object: checked(doc, `${basename(file)}#${n}`, file),
        source: `${basename(file)}#${n}`,
      });
    }
  }
  return out;
}

function flattenList(doc: unknown): unknown[] {
  const o = doc as { kind?: unknown; items?: unknown } | null;
  if (o && typeof o === "object" && typeof o.kind === "string" && /List$/.test(o.kind)) {
    return Array.isArray(o.items) ? o.items : [];
  }
  return [doc];
}

function checked(doc: unknown, source: string, file: string): KubeObject {
  const o = doc as Partial<KubeObject>;
  const missing = !o || typeof o !== "object" || Array.isArray(o)
    ? "is not a mapping"
    : typeof o.apiVersion !== "string"
    ? "has no apiVersion"
    : typeof o.kind !== "string"
    ? "has no kind"
    : typeof o.metadata?.name !== "string" || !o.metadata.name
    ? "has no metadata.name"
    : undefined;
  if (missing) {
    throw new ManifestError(
      `Invalid manifest ${file}: document ${source.split("#")[1]} ${missing}`,
      "Every document needs apiVersion, kind and metadata.name",
    );
  }
  return o as KubeObject;
}

/** What the service's manifests must hold, checked: its Deployment, one namespace. */
export function checkManifests(
  manifests: Manifest[],
  want: { namespace: string; deployment: string; path: string },
): Manifest {
  for (const m of manifests) {
    const o = m.object;
    const ns = o.kind === "Namespace" ? o.metadata.name : o.metadata.namespace;
    if (ns !== undefined && ns !== want.namespace) {
      throw new ManifestError(
        `Manifest ${m.source}: ${o.kind} "${o.metadata.name}" names namespace "${ns}", not the service's "${want.namespace}"`,
        `Remove the namespace from the manifest or set namespace = "${ns}" in the service's table`,
      );
    }
  }
  const deployment = manifests.find((m) =>
    m.object.kind === "Deployment" && m.object.metadata.name === want.deployment
  );
  if (!deployment) {
    const found = manifests.map((m) => `${m.object.kind}/${m.object.metadata.name}`).join(", ");
    throw new ManifestError(
      `None of the manifests in ${want.path} is the Deployment "${want.deployment}" (found: ${
        found || "nothing"
      })`,
      "Fix deployment_name, or add that Deployment to the manifests",
    );
  }
  if (deployment.object.apiVersion !== "apps/v1") {
    throw new ManifestError(
      `Manifest ${deployment.source}: Deployment "${want.deployment}" has apiVersion "${deployment.object.apiVersion}" (expected apps/v1)`,
      "Use apiVersion: apps/v1",
    );
  }
  return deployment;
}

/** Namespaces first (the objects in them need them), then the rest in file order. */
export function applyOrder<T extends { manifest: Manifest }>(items: T[]): T[] {
  const isNamespace = (t: T) => t.manifest.object.kind === "Namespace";
  return [...items.filter(isNamespace), ...items.filter((t) => !isNamespace(t))];
}
