/**
 * Server-sent events: a bounded set of clients, a heartbeat comment every 15 s, and a client
 * that does not read (its socket buffer past a limit) is dropped rather than waited for, so a
 * slow client never stalls the agent or the other clients.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from "node:http";

/** Bytes a client may have unread in its socket buffer before it is dropped. */
export const SSE_BUFFER_LIMIT = 1024 * 1024;
const HEARTBEAT_MS = 15_000;

/** How long a paced stream waits for a client to take what it was sent before dropping it. */
const DRAIN_WAIT_MS = 10_000;

/** One open event stream. */
export class SseClient {
  #closed = false;
  /** Bytes written since the socket last drained (the runtime may buffer more than it shows). */
  #backlog = 0;
  readonly done: Promise<void>;
  constructor(readonly res: ServerResponse, onClose: () => void) {
    this.done = new Promise((resolve) =>
      res.once("close", () => {
        this.#closed = true;
        onClose();
        resolve();
      })
    );
    res.on("drain", () => (this.#backlog = 0));
  }

  get closed(): boolean {
    return this.#closed;
  }

  #write(text: string): boolean {
    if (this.#closed) return false;
    if (this.#backlog > SSE_BUFFER_LIMIT) {
      this.close(); // it does not read: dropped, never waited for
      return false;
    }
    if (!this.res.write(text)) this.#backlog += Buffer.byteLength(text);
    return true;
  }

  /** Send one event; false (and the client dropped) when it is not keeping up. */
  send(event: string, data: string, id?: string): boolean {
    const lines = data.split(/\r?\n/).map((l) => `data: ${l}`).join("\n");
    return this.#write(`${id !== undefined ? `id: ${id}\n` : ""}event: ${event}\n${lines}\n\n`);
  }

  /**
   * Send one event of a long stream (a log): when the client has not taken what it was sent,
   * wait for it (up to 10 s, then it is dropped) instead of reading ahead. False once closed.
   */
  async paced(event: string, data: string, id?: string): Promise<boolean> {
    if (!this.send(event, data, id)) return false;
    if (this.#backlog === 0) return true;
    const drained = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), DRAIN_WAIT_MS);
      const done = (ok: boolean) => {
        clearTimeout(timer);
        resolve(ok);
      };
      this.res.once("drain", () => done(true));
      this.res.once("close", () => done(false));
    });
    if (!drained) this.close();
    return drained;
  }

  /** A comment line (keeps proxies and the client's idle timers from closing the stream). */
  comment(text: string): void {
    this.#write(`: ${text}\n\n`);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.res.destroy();
  }
}

/** All open streams of an agent, at most `max` at once. */
export class SseHub {
  readonly clients = new Set<SseClient>();
  #timer: ReturnType<typeof setInterval>;

  constructor(readonly max = 64) {
    this.#timer = setInterval(() => {
      for (const c of this.clients) c.comment("heartbeat");
    }, HEARTBEAT_MS);
    (this.#timer as { unref?: () => void }).unref?.();
  }

  /** Open a stream on `res`, or undefined when `max` are open (the caller answers 503). */
  open(req: IncomingMessage, res: ServerResponse): SseClient | undefined {
    if (this.clients.size >= this.max) return undefined;
    res.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-store",
      "X-Accel-Buffering": "no",
    });
    res.flushHeaders();
    req.socket.setNoDelay(true);
    req.socket.setTimeout(0);
    const client = new SseClient(res, () => this.clients.delete(client));
    this.clients.add(client);
    res.write(": connected\n\n");
    return client;
  }

  /** Send one event to every open stream that listens to it. */
  broadcast(event: string, data: string, only?: (c: SseClient) => boolean): void {
    for (const c of this.clients) if (!only || only(c)) c.send(event, data);
  }

  close(): void {
    clearInterval(this.#timer);
    for (const c of this.clients) c.close();
  }
}
