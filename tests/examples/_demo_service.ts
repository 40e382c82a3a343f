/**
 * Spawns `examples/platform/service.mjs` as a real child process for tests: with the `node` on
 * PATH when there is one, else with this Deno (`deno run -A`). Collects its log lines and is
 * cleaned up by `await using`.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/** Absolute path of the demo service script. */
export const SERVICE_SCRIPT = fileURLToPath(
  new URL("../../examples/platform/service.mjs", import.meta.url),
);

const hasNode = await new Deno.Command("node", {
  args: ["--version"],
  stdout: "null",
  stderr: "null",
})
  .output()
  .then((o) => o.success, () => false);

/** The command line that runs the demo service with `args`. */
export function serviceCommand(args: string[]): [string, string[]] {
  return hasNode
    ? ["node", [SERVICE_SCRIPT, ...args]]
    : [Deno.execPath(), ["run", "-A", SERVICE_SCRIPT, ...args]];
}

/** A running demo service. */
export class DemoService implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly lines: string[] = [];
  /** Set once the process has exited. */
  exit: Deno.CommandStatus | undefined;
  readonly status: Promise<Deno.CommandStatus>;
  #pump: Promise<void>;
  #changed: Array<() => void> = [];

  constructor(args: string[]) {
    const [cmd, cmdArgs] = serviceCommand(args);
    this.child = new Deno.Command(cmd, { args: cmdArgs, stdout: "piped", stderr: "inherit" })
      .spawn();
    this.status = this.child.status.then((s) => (this.exit = s));
    this.#pump = this.#readLines();
  }

  get pid(): number {
    return this.child.pid;
  }

  /** Whether the process still runs (the `isAlive` of the prober). */
  alive = (): boolean => this.exit === undefined;

  async #readLines(): Promise<void> {
    let buffer = "";
    for await (const chunk of this.child.stdout.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      const parts = buffer.split("\n");
      buffer = parts.pop() ?? "";
      this.lines.push(...parts);
      for (const notify of this.#changed.splice(0)) notify();
    }
    if (buffer) this.lines.push(buffer);
    for (const notify of this.#changed.splice(0)) notify();
  }

  /** Waits for a log line matching `pattern`; throws after `deadlineMs` or at exit. */
  async waitForLine(pattern: RegExp, deadlineMs = 10_000): Promise<RegExpMatchArray> {
    const end = performance.now() + deadlineMs;
    let seen = 0;
    while (true) {
      for (; seen < this.lines.length; seen++) {
        const match = this.lines[seen].match(pattern);
        if (match) return match;
      }
      const left = end - performance.now();
      if (left <= 0 || this.exit) {
        throw new Error(`No log line matching ${pattern}; got:\n${this.lines.join("\n")}`);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#changed.push(resolve);
        timer = setTimeout(resolve, Math.min(left, 100));
      });
      clearTimeout(timer);
    }
  }

  /** The port from the `listening on 127.0.0.1:PORT` line. */
  async port(deadlineMs = 10_000): Promise<number> {
    return Number((await this.waitForLine(/listening on 127\.0\.0\.1:(\d+)/, deadlineMs))[1]);
  }

  /** Kills the process (SIGKILL) unless it has exited, and waits for it and its output. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.exit) {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // exited meanwhile
      }
    }
    await this.status;
    await this.#pump;
  }
}
