/**
 * A release in `dist/release/`: the Node bundle, a standalone binary per platform, each in a
 * tarball, the npm package, and `SHA256SUMS` over all of them (`sha256sum -c SHA256SUMS`).
 *
 * ```sh
 * deno task release                          # this machine's platform only (works offline)
 * deno task release --target linux-arm64     # more platforms (repeatable)
 * ```
 *
 * | file                                        | holds                                          |
 * | ------------------------------------------- | ---------------------------------------------- |
 * | `provisioning-<v>-<platform>.tar.gz`        | `provisioning-<v>-<platform>/provisioning`, README |
 * | `provisioning-<v>-node.tar.gz`              | `cli.cjs` + `chunks/` for Node 20+, README     |
 * | `provisioning-<v>.tgz`                      | the npm package (`npm install -g ./…tgz`)      |
 *
 * Bun compiles for its own platform from its own executable, offline. Another platform's Bun
 * runtime (`--target`) is downloaded from the npm registry on first use and cached in
 * `~/.bun/install/cache`; without network only the platforms already cached there build.
 *
 * Importable: `const { files } = await release({ targets: ["linux-x64"] })`.
 *
 * @module
 */
import $ from "dax";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, readdirSync } from "node:fs";
import process from "node:process";
import { parseArgs } from "node:util";
import { binary, buildInfo, bundle, ROOT } from "./build.ts";

/** Platforms `bun build --compile --target=bun-<platform>` knows. */
export const PLATFORMS = [
  "linux-x64",
  "linux-arm64",
  "linux-x64-musl",
  "linux-arm64-musl",
  "darwin-x64",
  "darwin-arm64",
  "windows-x64",
] as const;
export type Platform = typeof PLATFORMS[number];

/** This machine's platform (what Bun compiles for offline). */
export function hostPlatform(): Platform {
  const os = process.platform === "win32" ? "windows" : process.platform;
  const arch = process.arch === "arm64" ? "arm64" : "x64";
  const musl = os === "linux" && existsSync("/lib") &&
    readdirSync("/lib").some((f) => f.startsWith("ld-musl-"));
  const name = `${os}-${arch}${musl ? "-musl" : ""}`;
  if (!(PLATFORMS as readonly string[]).includes(name)) {
    throw new RangeError(`Cannot release for this machine: "${name}" is not a Bun target`);
  }
  return name as Platform;
}

/** Options of {@linkcode release}. */
export interface ReleaseOptions {
  /** Platforms of the binaries (default: this machine's). */
  targets?: Platform[];
  /** Output directory (default `dist/release`), emptied first. */
  outDir?: string;
}

/** Build everything and write the checksums; returns the files, their directory and the sums. */
export async function release(
  opts: ReleaseOptions = {},
): Promise<{ dir: string; files: string[]; sums: string }> {
  const host = hostPlatform();
  const targets = opts.targets?.length ? [...new Set(opts.targets)] : [host];
  const out = $.path(opts.outDir ?? `${ROOT}dist/release`);
  const { version, commit } = await buildInfo();
  $.logStep("Releasing", `provisioning ${version} (${commit}) for ${targets.join(", ")}, node`);
  await out.remove({ recursive: true }).catch(() => {});
  await out.mkdir({ recursive: true });
  const stage = out.join(".stage");
  const readme = $.path(ROOT).join("README.md");
  const files: string[] = [];

  /** `name.tar.gz` of the folder `stage/name` (the archive holds that one folder). */
  const tarball = async (name: string) => {
    const file = out.join(`${name}.tar.gz`);
    await $`tar -C ${stage} -czf ${file} ${name}`.quiet();
    files.push(file.toString());
  };

  await bundle({ clean: true });
  for (const platform of targets) {
    const name = `provisioning-${version}-${platform}`;
    const dir = stage.join(name);
    await dir.mkdir({ recursive: true });
    const exe = dir.join(platform.startsWith("windows") ? "provisioning.exe" : "provisioning");
    await binary({
      outfile: exe.toString(),
      bundleFirst: false,
      // This machine's platform from Bun's own executable: no download.
      ...(platform === host ? {} : { target: `bun-${platform}` }),
    });
    if (platform === host) {
      const shown = (await $`${exe} --version`.env({ NO_COLOR: "1" }).text()).trim();
      if (shown !== `provisioning ${version} (${commit})`) {
        throw new Error(`Cannot release: the binary says "${shown}", not ${version} (${commit})`);
      }
    }
    await readme.copyFile(dir.join("README.md"));
    await tarball(name);
  }

  const nodeName = `provisioning-${version}-node`;
  const nodeDir = stage.join(nodeName);
  await nodeDir.mkdir({ recursive: true });
  await $.path(ROOT).join("dist/cli.cjs").copyFile(nodeDir.join("cli.cjs"));
  await $`cp -R ${ROOT}dist/chunks ${nodeDir}/chunks`;
  await readme.copyFile(nodeDir.join("README.md"));
  await tarball(nodeName);

  // The npm package of the bundle just built (prepack would build it once more).
  $.logStep("Packing", "npm package");
  const packed = (await $`npm pack --ignore-scripts --silent --pack-destination ${out}`
    .cwd(ROOT).text()).trim().split("\n").at(-1)!;
  files.push(out.join(packed).toString());

  await stage.remove({ recursive: true });
  const lines = [];
  for (const f of files) lines.push(`${await sha256(f)}  ${$.path(f).basename()}`);
  const sums = lines.join("\n") + "\n";
  await out.join("SHA256SUMS").writeText(sums);
  files.push(out.join("SHA256SUMS").toString());
  return { dir: out.toString(), files, sums };
}

/** The SHA-256 of a file, in hex. */
function sha256(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(file).on("data", (d) => h.update(d)).on("error", reject).on(
      "end",
      () => resolve(h.digest("hex")),
    );
  });
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { target: { type: "string", multiple: true }, help: { type: "boolean" } },
  });
  if (values.help) {
    console.log(
      `Usage: deno task release [--target PLATFORM]...\n\nPlatforms: ${
        PLATFORMS.join(", ")
      } (default: this machine's, ${hostPlatform()})`,
    );
    process.exit(0);
  }
  const bad = (values.target ?? []).find((t) => !(PLATFORMS as readonly string[]).includes(t));
  if (bad) {
    $.logError("Cannot release:", `unknown platform "${bad}" (${PLATFORMS.join(", ")})`);
    process.exit(2);
  }
  const { dir, files, sums } = await release({
    targets: values.target as Platform[] | undefined,
  });
  $.logStep("Released", dir);
  console.log(sums.trimEnd());
  $.logLight(`npm install -g ${files.find((f) => f.endsWith(".tgz"))}`);
}
