/**
 * Container logs through the Engine API: `GET /containers/{id}/logs` with `tail` and `follow`,
 * stdout and stderr de-multiplexed, yielded line by line.
 *
 * Without a TTY the engine frames every write: an 8-byte header (stream: 1 stdout, 2 stderr;
 * three zero bytes; the payload size as a big-endian uint32), then the payload. With a TTY the
 * stream is raw. Each stream keeps its own partial line, so interleaved writes never splice.
 *
 * @module
 */
import type { DockerEngine } from "./_api.ts";

/** Options of {@linkcode containerLogs}. */
export interface ContainerLogOptions {
  /** Last N lines (the engine counts stdout and stderr together). */
  lines: number;
  follow?: boolean;
  /** The container was created with a TTY (raw stream, no frames). */
  tty: boolean;
  /** Each line starts with the engine's time, `<RFC 3339 nano> ` (`docker logs -t`). */
  timestamps?: boolean;
  /** Only lines since this time (ms since the epoch; the engine takes whole seconds). */
  since?: number;
  /** Ends the iteration (quietly) when aborted. */
  signal?: AbortSignal;
}

/** Split a multiplexed log stream into `[stream, payload]` frames; keeps a partial frame. */
export class FrameDecoder {
  #buf: Buffer = Buffer.alloc(0);

  /** Frames completed by `chunk`: stream 1 is stdout, 2 stderr (0 stdin). */
  push(chunk: Uint8Array): [number, Buffer][] {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : Buffer.from(chunk);
    const frames: [number, Buffer][] = [];
    while (this.#buf.length >= 8) {
      const size = this.#buf.readUInt32BE(4);
      if (this.#buf.length < 8 + size) break;
      frames.push([this.#buf[0], this.#buf.subarray(8, 8 + size)]);
      this.#buf = this.#buf.subarray(8 + size);
    }
    return frames;
  }
}

/** Turns byte chunks into whole lines (UTF-8 safe across chunk borders). */
export class LineSplitter {
  #decoder = new TextDecoder();
  #partial = "";

  push(chunk: Uint8Array): string[] {
    const text = this.#partial + this.#decoder.decode(chunk, { stream: true });
    const lines = text.split("\n");
    this.#partial = lines.pop() ?? "";
    return lines.map((l) => l.replace(/\r$/, ""));
  }

  /** The last unterminated line, if any. */
  flush(): string[] {
    const rest = this.#partial + this.#decoder.decode();
    this.#partial = "";
    return rest ? [rest.replace(/\r$/, "")] : [];
  }
}

/** The container's log lines: the last `lines`, then (with `follow`) new ones until aborted. */
export async function* containerLogs(
  engine: DockerEngine,
  id: string,
  opts: ContainerLogOptions,
): AsyncGenerator<string> {
  if (opts.signal?.aborted) return;
  let res;
  try {
    res = await engine.open("GET", `/containers/${encodeURIComponent(id)}/logs`, {
      query: {
        stdout: 1,
        stderr: 1,
        tail: Math.max(0, opts.lines),
        follow: opts.follow ? 1 : 0,
        ...(opts.timestamps ? { timestamps: 1 } : {}),
        ...(opts.since !== undefined ? { since: Math.floor(opts.since / 1000) } : {}),
      },
      signal: opts.signal,
    });
  } catch (error) {
    if (opts.signal?.aborted) return;
    throw error;
  }
  if ((res.statusCode ?? 500) >= 400) {
    let text = "";
    for await (const c of res) text += c;
    throw new Error(`Cannot read logs of container ${id.slice(0, 12)}: ${text.trim()}`);
  }
  const frames = new FrameDecoder();
  const splitters = new Map<number, LineSplitter>();
  const split = (stream: number) => {
    let s = splitters.get(stream);
    if (!s) splitters.set(stream, s = new LineSplitter());
    return s;
  };
  try {
    for await (const chunk of res as AsyncIterable<Uint8Array>) {
      if (opts.tty) {
        yield* split(1).push(chunk);
        continue;
      }
      for (const [stream, payload] of frames.push(chunk)) yield* split(stream).push(payload);
    }
  } catch (error) {
    if (!opts.signal?.aborted) throw error;
  } finally {
    res.destroy();
  }
  for (const s of splitters.values()) yield* s.flush();
}
