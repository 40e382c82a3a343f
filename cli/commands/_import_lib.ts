/**
 * The one place the CLI imports the library (`mod.ts`), when a command needs it. The Node
 * bundle's entry replaces this module (scripts/build.ts): its command tree is compiled from a
 * V8 code cache, where a dynamic `import()` has no loader, so its entry imports the library's
 * chunk for it.
 *
 * @module
 */
import type * as Mod from "../../mod.ts";

/** The library. */
export const importLib = (): Promise<typeof Mod> => import("../../mod.ts");
