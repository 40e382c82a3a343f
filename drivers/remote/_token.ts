/**
 * The bearer token of `auth_token_path`: read fresh for every request (so a rotated token is
 * used at once), from a file group and others cannot read, checked on the descriptor that is
 * read (no window between the check and the read). Errors name the file, never its content.
 *
 * @module
 */
import { open } from "node:fs/promises";

/** A token file that cannot be used; `message` names the file and what to do. */
export class TokenError extends Error {
  override name = "TokenError";
  constructor(message: string, readonly hint?: string) {
    super(message);
  }
}

/** Permission bits that let group or others read the file. */
const READABLE_BY_OTHERS = 0o044;

/** `0644` for a mode. */
export const octal = (mode: number): string => `0${(mode & 0o777).toString(8).padStart(3, "0")}`;

/**
 * The token in `path`: its content without surrounding whitespace. Throws {@linkcode TokenError}
 * when the file is missing, not a regular file, readable by group or others, empty, or holds a
 * line break or control character inside (it must fit in one header).
 */
export async function readToken(path: string): Promise<string> {
  let fh;
  try {
    fh = await open(path, "r");
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw code === "ENOENT"
      ? new TokenError(
        `Token file ${path} (auth_token_path) does not exist`,
        `Write the token there, readable only by you: chmod 600 ${path}`,
      )
      : new TokenError(`Cannot read token file ${path} (auth_token_path): ${code ?? e}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new TokenError(`Token file ${path} (auth_token_path) is not a file`);
    if (st.mode & READABLE_BY_OTHERS) {
      throw new TokenError(
        `Token file ${path} (auth_token_path) is readable by ${
          st.mode & 0o004 ? "others" : "its group"
        } (mode ${octal(st.mode)})`,
        `Make it private: chmod 600 ${path}`,
      );
    }
    const token = (await fh.readFile("utf8")).trim();
    if (!token) throw new TokenError(`Token file ${path} (auth_token_path) is empty`);
    // deno-lint-ignore no-control-regex
    if (/[\x00-\x1f\x7f]/.test(token)) {
      throw new TokenError(
        `Token file ${path} (auth_token_path) holds more than one line (or a control character)`,
        "A token file holds the token alone, on one line",
      );
    }
    return token;
  } finally {
    await fh.close();
  }
}
