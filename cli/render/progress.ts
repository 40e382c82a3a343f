/**
 * Live progress of long waits: which services a start waits for, for how long, and the last
 * result of their readiness check (`api: waiting 12s/30s — HTTP 503`). On a terminal these lines
 * stay below the progress lines and are redrawn every second; elsewhere (a pipe, a CI log) one
 * line per waiting service is printed every 5 s, once it has waited that long.
 *
 * @module
 */
import type { LifecycleEvent } from "../../mod.ts";
import { dim } from "./text.ts";

/** How often the lines are redrawn on a terminal, and printed elsewhere. */
export const LIVE_TTY_MS = 1_000;
export const LIVE_LOG_MS = 5_000;

/** Events after which a service no longer waits. */
const DONE = new Set<LifecycleEvent["type"]>([
  "healthy",
  "ready",
  "failed",
  "blocked",
  "running",
  "stopped",
  "not_managed",
]);

interface Waiting {
  since: number;
  timeoutMs?: number;
  last?: string;
}

const s = (ms: number) => `${Math.floor(ms / 1000)}s`;

/** The live line of one waiting service. */
export function waitingLine(name: string, waitedMs: number, w: Omit<Waiting, "since">): string {
  const of = w.timeoutMs ? `/${s(w.timeoutMs)}` : "";
  return `${name}: waiting ${s(waitedMs)}${of}${w.last ? ` — ${w.last}` : ""}`;
}

/** Progress output with live lines for the services a start waits for. */
export class LiveProgress {
  readonly #waiting = new Map<string, Waiting>();
  readonly #write: (text: string) => void;
  readonly #tty: boolean;
  readonly #width: () => number;
  #drawn = 0;
  #timer?: ReturnType<typeof setInterval>;

  /**
   * `write` gets raw text (lines end in `\n`); `tty`: redraw in place (escape sequences),
   * else print a line per waiting service every {@linkcode LIVE_LOG_MS}.
   */
  constructor(
    write: (text: string) => void,
    opts: { tty: boolean; columns?: () => number },
  ) {
    this.#write = write;
    this.#tty = opts.tty;
    this.#width = opts.columns ?? (() => 80);
  }

  /** Print an event's progress lines, the live lines kept below them. */
  print(lines: string[]): void {
    if (!lines.length) return;
    this.#erase();
    this.#write(lines.map((l) => `${l}\n`).join(""));
    this.#draw();
  }

  /** Follow `e`: a service starts or stops waiting, or its check has a new result. */
  event(e: LifecycleEvent): void {
    if (e.type === "waiting") {
      const w = this.#waiting.get(e.service);
      if (!w) this.#waiting.set(e.service, { since: Date.now(), timeoutMs: e.timeout_ms });
    } else if (e.type === "check") {
      const w = this.#waiting.get(e.service);
      if (w) w.last = e.message;
      if (this.#tty) this.#redraw();
    } else if (DONE.has(e.type)) {
      this.#waiting.delete(e.service);
    }
    if (this.#waiting.size && !this.#timer) {
      this.#timer = setInterval(() => this.#tick(), this.#tty ? LIVE_TTY_MS : LIVE_LOG_MS);
      (this.#timer as { unref?: () => void }).unref?.();
    } else if (!this.#waiting.size && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Remove the live lines and stop the timer (before the summary). */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#erase();
  }

  #lines(): string[] {
    const now = Date.now();
    return [...this.#waiting].map(([name, w]) => waitingLine(name, now - w.since, w));
  }

  #tick(): void {
    if (this.#tty) return this.#redraw();
    const now = Date.now();
    const due = [...this.#waiting].filter(([, w]) => now - w.since >= LIVE_LOG_MS);
    if (due.length) {
      this.#write(due.map(([name, w]) => `${waitingLine(name, now - w.since, w)}\n`).join(""));
    }
  }

  #redraw(): void {
    this.#erase();
    this.#draw();
  }

  #draw(): void {
    if (!this.#tty) return;
    const max = Math.max(20, this.#width() - 1); // a wrapped line would break the erase
    const lines = this.#lines().map((l) => dim(l.length > max ? `${l.slice(0, max - 1)}…` : l));
    if (lines.length) this.#write(lines.map((l) => `${l}\n`).join(""));
    this.#drawn = lines.length;
  }

  #erase(): void {
    if (!this.#tty || !this.#drawn) return;
    this.#write(`\x1b[${this.#drawn}A\r\x1b[J`);
    this.#drawn = 0;
  }
}
