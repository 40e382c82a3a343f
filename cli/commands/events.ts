/**
 * `provisioning events [NAME...]`: the home's event journal as a timeline, like `journalctl -u`
 * — who asked for what, and what each service did (started, healthy, crashed, backed off,
 * restarted, stopped) — oldest first; `--follow` goes on with new events, across rotations.
 *
 * @module
 */
import type { Command } from "commander";
import type { JournalRecord, JournalType } from "../../mod.ts";
import { defaultHome, parseSince, readJournal, statePaths } from "./_lib.ts";
import { bold, dim, green, red, yellow } from "../render/text.ts";
import { type Common, interruptSignal, leaf, type Run } from "./_common.ts";

/** How each kind of event is painted on a terminal. */
const PAINT: Partial<Record<JournalType, (s: string) => string>> = {
  requested: bold,
  healthy: green,
  ready: green,
  started: green,
  running: green,
  stopped: dim,
  backoff: yellow,
  restarting: yellow,
  stopping: yellow,
  warning: yellow,
  preflight: red,
  crashed: red,
  failed: red,
  gave_up: red,
  unhealthy: red,
  refused: red,
  blocked: red,
};

/** `2026-12-02T03:04:05.678Z web: crashed (killed by SIGKILL) [supervisor]` */
export function renderRecord(r: JournalRecord): string {
  const paint = PAINT[r.type];
  const text = paint ? paint(r.text) : r.text;
  return `${dim(r.at)} ${r.service ?? "platform"}: ${text} ${dim(`[${r.by}]`)}`;
}

/** Add `events` to `program`. */
export function eventsCommand(program: Command, run: Run): Command {
  return leaf(
    program,
    "events [names...]",
    "the event journal: what was asked for and what every service (or NAME...) did, oldest first",
  )
    .option("--since <when>", "only events since then: 30s, 10m, 1h, 2d, or an ISO time")
    .option("--follow", "then print new events as they happen, until Ctrl+C")
    .action(run(async (out, names: string[], o: Common & { since?: string; follow?: boolean }) => {
      const since = o.since === undefined ? undefined : parseSince(o.since);
      const paths = statePaths(defaultHome(process.env));
      const signal = o.follow ? interruptSignal() : undefined;
      // As `logs`: one JSON document, or JSON lines while following.
      const records: JournalRecord[] = [];
      let n = 0;
      for await (
        const e of readJournal(paths, { since, services: names, follow: o.follow, signal })
      ) {
        n++;
        if (o.json && !o.follow) records.push(e.record);
        else out(o.json ? JSON.stringify(e.record) : renderRecord(e.record));
      }
      if (o.json && !o.follow) return { doc: { events: records } };
      if (n > 0 || o.follow) return {};
      const of = names.length ? ` of ${names.join(", ")}` : "";
      return { text: `No events${of}${o.since ? ` since ${o.since}` : ""}.` };
    }));
}
