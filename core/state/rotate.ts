/**
 * Size-based log rotation that works for processes which never reopen their log: copy the
 * file to `<log>.1` (shifting `.1` → `.2` ... up to `keep`), then truncate it in place. Services
 * write with O_APPEND, so their next write lands at the start of the emptied file
 * (logrotate's `copytruncate`). Lines written between the copy and the truncate can be lost;
 * that window is a few milliseconds once per `max_size` bytes.
 *
 * @module
 */
import { statSync } from "node:fs";
import { copyFile, rename, rm, truncate } from "node:fs/promises";

/** Rotate `file` when it is larger than `maxSize` bytes; true when it rotated. */
export async function rotateIfLarger(
  file: string,
  maxSize: number,
  keep: number,
): Promise<boolean> {
  // Synchronous: a stat of a local file does not wait, and the supervisor makes one per
  // service every 10 s; under Deno the async call costs several times more CPU.
  let size = 0;
  try {
    size = statSync(file).size;
  } catch { /* no log yet */ }
  if (size <= maxSize) return false;
  if (keep === 0) {
    await truncate(file, 0);
    return true;
  }
  await rm(`${file}.${keep}`, { force: true });
  for (let i = keep - 1; i >= 1; i--) {
    await rename(`${file}.${i}`, `${file}.${i + 1}`).catch(() => {});
  }
  await copyFile(file, `${file}.1`);
  await truncate(file, 0);
  return true;
}
