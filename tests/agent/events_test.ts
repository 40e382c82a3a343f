/**
 * The event journal through a real agent process: `/v1/events` streams `journal` events — a
 * start requested through the agent (with the client's address), and a stop a CLI makes in
 * another process — with ids that resume after them (`Last-Event-ID`); `/v1/journal` answers
 * the same records as JSON, filtered by service and time.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import type { JournalRecord } from "../../core/state/journal.ts";
import { ROOT } from "../_cli.ts";
import { Sandbox } from "../e2e/_registry.ts";
import { auth, call, spawnAgent } from "./_agent.ts";

interface Sse {
  event: string;
  data: string;
  id?: string;
}

/** Read an SSE stream until `done(events)` (after `onOpen` ran); the events seen. */
async function sse(
  url: string,
  headers: Record<string, string>,
  done: (events: Sse[]) => boolean,
  onOpen: () => Promise<unknown> = () => Promise.resolve(),
): Promise<Sse[]> {
  const ac = new AbortController();
  const res = await fetch(url, { headers, signal: ac.signal });
  if (res.status !== 200) assert.fail(`${url}: ${res.status} ${await res.text()}`);
  const events: Sse[] = [];
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const opened = onOpen();
  let buf = "";
  try {
    while (!done(events)) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buf += value;
      for (let i; (i = buf.indexOf("\n\n")) !== -1;) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const e: Sse = { event: "message", data: "" };
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) e.event = line.slice(7);
          else if (line.startsWith("data: ")) data.push(line.slice(6));
          else if (line.startsWith("id: ")) e.id = line.slice(4);
        }
        if (data.length) events.push({ ...e, data: data.join("\n") });
      }
    }
    await opened;
  } finally {
    ac.abort();
    await reader.cancel().catch(() => {});
  }
  return events;
}

const journal = (events: Sse[]) =>
  events.filter((e) => e.event === "journal").map((e) => ({
    ...(JSON.parse(e.data) as JournalRecord),
    id: e.id,
  }));

Deno.test("/v1/events streams the journal: a start requested through the agent, with the client's address; ids resume", async () => {
  await using sb = await Sandbox.create([{ name: "db" }, { name: "web", deps: ["db"] }]);
  const a = await spawnAgent(sb);
  const api = (path: string) => `${a.url}${path}`;

  // A start through the agent, while the stream is open.
  const started = await sse(
    api("/v1/events"),
    auth(a),
    (es) => journal(es).some((r) => r.type === "healthy" && r.service === "web"),
    async () => {
      const r = await call(api("/v1/services/web/start"), { method: "POST", headers: auth(a) });
      assert.equal(r.status, 200, r.text);
    },
  );
  const records = journal(started);
  const requested = records.find((r) => r.type === "requested");
  assert.ok(requested, `no requested event in ${JSON.stringify(records)}`);
  assert.equal(requested.service, "web");
  assert.equal(requested.by, "agent");
  const by = requested.requested_by as { kind: string; client: string };
  assert.equal(by.kind, "agent");
  assert.match(by.client, /^127\.0\.0\.1:\d+$/);
  assert.match(requested.text, /^start requested by agent \(client 127\.0\.0\.1:\d+\)$/);
  const types = records.filter((r) => r.service === "web").map((r) => r.type);
  assert.deepEqual(types, ["requested", "starting", "started", "healthy"]);
  for (const r of records) assert.match(r.id ?? "", /^\d+:\d+$/);

  // Another process's event (a CLI stop) reaches the stream too.
  const stopped = await sse(
    api("/v1/events?service=web"),
    auth(a),
    (es) => journal(es).some((r) => r.type === "stopped"),
    async () => {
      const r = await sb.cli(["services", "stop", "web"]);
      assert.equal(r.code, 0, r.stderr);
    },
  );
  const stop = journal(stopped);
  assert.ok(stop.every((r) => r.service === "web"), JSON.stringify(stop));
  assert.deepEqual(stop.map((r) => `${r.type} [${r.by}]`), [
    "requested [cli]",
    "stopping [cli]",
    "stopped [cli]",
  ]);

  // Resumed after the requested event (as EventSource reconnects): what followed it, once.
  const resumed = await sse(
    api("/v1/events"),
    { ...auth(a), "Last-Event-ID": requested.id! },
    (es) => journal(es).some((r) => r.type === "stopped" && r.service === "web"),
  );
  const again = journal(resumed);
  assert.equal(again[0].type, "starting");
  assert.ok(!again.some((r) => r.id === requested.id));
  assert.equal(new Set(again.map((r) => r.id)).size, again.length, "an event sent twice");

  // The same records as JSON, filtered; `since` in the future finds none; a bad one is a 400.
  const list = await call(api("/v1/journal?service=web&since=1h"), { headers: auth(a) });
  assert.equal(list.status, 200, list.text);
  const web = (list.json().events as JournalRecord[]).filter((r) => r.service === "web");
  // deno-lint-ignore no-explicit-any
  const doc: any = JSON.parse(readFileSync(join(ROOT, "docs", "agent.openapi.json"), "utf8"));
  const validate = new Ajv2020({ strict: false, validateFormats: false }).compile(
    doc.components.schemas.JournalRecord,
  );
  for (const r of list.json().events) assert.ok(validate(r), JSON.stringify(validate.errors));
  assert.deepEqual(web.map((r) => r.type), [
    "requested",
    "starting",
    "started",
    "healthy",
    "requested",
    "stopping",
    "stopped",
  ]);
  const future = await call(
    api(`/v1/journal?since=${new Date(Date.now() + 60_000).toISOString()}`),
    {
      headers: auth(a),
    },
  );
  assert.deepEqual(future.json(), { events: [] });
  const bad = await call(api("/v1/journal?since=soon"), { headers: auth(a) });
  assert.equal(bad.status, 400);
  assert.equal(bad.json().error.code, "bad_request");

  // The CLI reads what the agent wrote.
  const text = await sb.cli(["events", "web"]);
  assert.match(
    text.stdout,
    /Z web: start requested by agent \(client 127\.0\.0\.1:\d+\) \[agent\]\n/,
  );
  assert.equal(await a.stop(), 0);
});
