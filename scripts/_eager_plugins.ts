/**
 * For `scripts/bench_plugins.ts` only: `deno run --preload scripts/_eager_plugins.ts cli.ts ...`
 * imports every bundled plugin before the CLI starts — what the CLI would cost if the loader
 * imported plugins eagerly instead of on first use. Not part of the library.
 *
 * @module
 */
import { builtins } from "../core/plugins/builtins.ts";

await Promise.all(Object.values(builtins).map((load) => load()));
