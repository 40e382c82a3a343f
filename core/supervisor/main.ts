/**
 * The supervisor's own entry point under Deno: only the supervisor's modules, not the CLI's
 * (commander, renderers, the registry loader), so the long-lived process stays small.
 * `supervisor run` in the CLI does the same thing (and is what the Node bundle and the
 * compiled binary run, having one entry each).
 *
 * @module
 */
import process from "node:process";
import { defaultHome } from "../state/files.ts";
import { Supervisor } from "./daemon.ts";

await new Supervisor(defaultHome(process.env)).run();
