/**
 * The CLI's standard output. Into a pipe, a file or a socket it writes straight to fd 1: Node
 * makes `process.stdout` a stream on first use, and the stream's modules cost 7-10 ms of a
 * 130 ms `--help` of the bundle into a pipe (an A/B of two bundles, docs/benchmarks.md). A
 * terminal (and any other character device, as `/dev/null`) gets `process.stdout`: its width,
 * its colours.
 *
 * @module
 */
import { fstatSync, writeSync } from "node:fs";

let direct: boolean | undefined;
/** No reader any more (`provisioning … | head`): the rest is dropped, as `cat` would stop. */
let closed = false;

/** Whether fd 1 is a pipe, a regular file or a socket (no terminal, for certain). */
function isDirect(): boolean {
  if (direct === undefined) {
    try {
      const st = fstatSync(1);
      direct = st.isFIFO() || st.isFile() || st.isSocket();
    } catch {
      direct = false;
    }
  }
  return direct;
}

/** Whether standard output is a terminal (without making a stream of it when it is not). */
export function stdoutIsTTY(): boolean {
  return !isDirect() && !!process.stdout.isTTY;
}

/** Write `text` to standard output, all of it before this returns where fd 1 is direct. */
export function writeOut(text: string): void {
  if (!isDirect()) return void process.stdout.write(text);
  if (closed) return;
  const bytes = Buffer.from(text);
  for (let off = 0; off < bytes.length;) {
    try {
      off += writeSync(1, bytes, off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EAGAIN") continue; // a non-blocking pipe that is full: try again
      if (code === "EPIPE") closed = true;
      else throw e;
      return;
    }
  }
}

/** One line of standard output (`console.log` of a string). */
export function writeLine(text: string): void {
  writeOut(`${text}\n`);
}
