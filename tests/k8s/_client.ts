/**
 * A small HTTP(S) client for talking to the API double from tests (Deno's `fetch` cannot trust a
 * per-request CA): one-shot requests, and line streams for watches and `follow` logs that the
 * caller closes. Uses `node:http`/`node:https` with the double's CA.
 */

import { type IncomingMessage, request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";

export interface RequestOptions {
  method?: string;
  /** A string is sent as is; anything else as JSON. */
  body?: unknown;
  contentType?: string;
  accept?: string;
  /** Bearer token; `null` sends none even when the double has one. */
  token?: string | null;
  headers?: Record<string, string>;
}

export interface Reply {
  status: number;
  headers: IncomingMessage["headers"];
  text: string;
  // deno-lint-ignore no-explicit-any
  json(): any;
}

export interface LineStream {
  status: number;
  headers: IncomingMessage["headers"];
  /** Resolves with the next line, or undefined when the stream ended; rejects after `ms`. */
  next(ms?: number): Promise<string | undefined>;
  close(): void;
}

export type Target = { url: string; ca?: string; token?: string };

function open(target: Target, path: string, o: RequestOptions): Promise<IncomingMessage> {
  const url = new URL(path, target.url);
  const body = o.body === undefined
    ? undefined
    : typeof o.body === "string"
    ? o.body
    : JSON.stringify(o.body);
  const token = o.token === null ? undefined : o.token ?? target.token;
  const headers: Record<string, string> = {
    Accept: o.accept ?? "application/json",
    ...(body !== undefined
      ? {
        "Content-Type": o.contentType ?? "application/json",
        "Content-Length": String(Buffer.byteLength(body)),
      }
      : {}),
    ...(token ? { Authorization: `Bearer ${token}` } : {}),
    ...o.headers,
  };
  const opts = {
    method: o.method ?? "GET",
    headers,
    ...(target.ca ? { ca: target.ca, servername: "localhost" } : {}),
  };
  return new Promise((resolve, reject) => {
    const req = (url.protocol === "https:" ? httpsRequest : httpRequest)(url, opts, (res) => {
      clearTimeout(timer);
      resolve(res);
    });
    // A reply whose headers do not come (e.g. a watch that is not flushed) fails instead of hanging.
    const timer = setTimeout(
      () => req.destroy(new Error(`no response headers within 10 s for ${path}`)),
      10_000,
    );
    req.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end(body);
  });
}

/** One request; the whole reply body as text. */
export async function request(
  target: Target,
  path: string,
  o: RequestOptions = {},
): Promise<Reply> {
  const res = await open(target, path, o);
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  return { status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) };
}

/** A streaming request (watch, log follow) read line by line. */
export async function stream(
  target: Target,
  path: string,
  o: RequestOptions = {},
): Promise<LineStream> {
  const res = await open(target, path, o);
  const lines: string[] = [];
  let rest = "";
  let ended = false;
  let wake: (() => void) | undefined;
  res.setEncoding("utf8");
  res.on("data", (chunk: string) => {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop() ?? "";
    lines.push(...parts);
    wake?.();
  });
  const finish = () => {
    if (rest) lines.push(rest);
    rest = "";
    ended = true;
    wake?.();
  };
  res.on("end", finish);
  res.on("close", finish);
  res.on("error", finish);
  return {
    status: res.statusCode ?? 0,
    headers: res.headers,
    async next(ms = 10_000) {
      const deadline = Date.now() + ms;
      while (lines.length === 0 && !ended) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no line within ${ms} ms from ${path}`);
        let timer: ReturnType<typeof setTimeout> | undefined;
        await new Promise<void>((r) => {
          wake = r;
          timer = setTimeout(r, left);
        });
        clearTimeout(timer);
        wake = undefined;
      }
      return lines.shift();
    },
    close() {
      res.destroy();
    },
  };
}
