/**
 * Size-based log rotation that works for processes which never reopen their log: copy the
 * file to `<log>.1` (shifting `.1` → `.2` ... up to `keep`), then truncate it in place. Services
 * write with O_APPEND, so their next write lands at the start of the emptied file
 * (logrotate's `copytruncate`). Lines written between the copy and the truncate can be lost;
 * that window is a few milliseconds once per `max_size` bytes.
 *
 * @module
 */
import { closeSync, constants, ftruncateSync, lstatSync, openSync } from "node:fs";
import { copyFile, rename, rm } from "node:fs/promises";

/** Empty `file` in place, never through a symbolic link. */
function truncateInPlace(file: string): void {
  const fd = openSync(file, constants.O_WRONLY | constants.O_NOFOLLOW);
  try {
    ftruncateSync(fd, 0);
  } finally {
    closeSync(fd);
  }
}

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
    const st = lstatSync(file);
    if (!st.isFile()) return false; // a symbolic link (or worse) is never followed
    size = st.size;
  } catch { /* no log yet */ }
  if (size <= maxSize) return false;
  if (keep === 0) {
    truncateInPlace(file);
    return true;
  }
  await rm(`${file}.${keep}`, { force: true });
  for (let i = keep - 1; i >= 1; i--) {
    await rename(`${file}.${i}`, `${file}.${i + 1}`).catch(() => {});
  }
  // `.1` was just moved away: a file there now was planted; EXCL refuses to write through it.
  await copyFile(file, `${file}.1`, constants.COPYFILE_EXCL);
  truncateInPlace(file);
  return true;
}
