/**
 * The agent's web dashboard: one self-contained page (HTML, a plain-JavaScript app, a stylesheet)
 * held as strings, so it bundles into the single binary and needs nothing from the network (no
 * CDN, no web fonts). The agent serves `DASHBOARD_ASSETS[path]` with `DASHBOARD_CSP`.
 *
 * The page signs in with the token from the URL fragment (`#token=…`: POSTed once as a bearer
 * header to `/v1/session`, which sets an HttpOnly cookie, then removed from the address bar), then
 * shows the services grouped by category with live status from `GET /v1/events`, start / stop /
 * restart buttons, the event journal of the last hour (`journal` events of the same stream), a
 * log tail (`GET /v1/services/<name>/logs?follow=1`) and the dependency graph drawn as SVG. Data is always rendered with `textContent`; there are no inline scripts or styles,
 * so the strict CSP holds.
 *
 * @module
 */

/** One file of the dashboard: its `Content-Type` and its text. */
export interface DashboardAsset {
  type: string;
  body: string;
}

/**
 * The Content-Security-Policy the agent sends with every dashboard file: only this origin's script,
 * stylesheet and API; no inline code, no frames, no forms.
 */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The message shown when the page has neither a token nor a valid session. */
export const SIGN_IN_MESSAGE = "Open the URL the agent printed (it carries the token after #)";

const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>provisioning agent</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<header class="top">
  <h1>provisioning <span class="muted">agent</span></h1>
  <span id="agent-info" class="muted"></span>
  <span id="connection" data-state="connecting" aria-live="polite">connecting…</span>
</header>
<div id="notice" role="alert" data-kind="error" hidden>
  <button type="button" id="notice-close" class="icon-button" aria-label="Dismiss">×</button>
  <p id="notice-message"></p>
  <ul id="notice-hints"></ul>
</div>
<section id="signin" class="card" hidden>
  <h2>Sign in</h2>
  <p id="signin-message">${SIGN_IN_MESSAGE}</p>
  <p id="signin-detail" class="muted"></p>
</section>
<main id="app" hidden>
  <section class="card" id="services-card">
    <h2>Services <span id="summary" class="muted"></span></h2>
    <table id="services">
      <thead>
        <tr>
          <th scope="col">Service</th>
          <th scope="col">Status</th>
          <th scope="col">Health</th>
          <th scope="col" class="num">PID</th>
          <th scope="col" class="num">Uptime</th>
          <th scope="col" class="num">Restarts</th>
          <th scope="col">Actions</th>
        </tr>
      </thead>
    </table>
    <p id="services-empty" class="muted" hidden>No services in the registry.</p>
  </section>
  <section class="card" id="events-card">
    <h2>Events <span class="muted">(the last hour, newest first)</span></h2>
    <ol id="journal" aria-label="Lifecycle events"></ol>
    <p id="journal-empty" class="muted">No events in the last hour.</p>
  </section>
  <section class="card" id="logs" hidden>
    <div class="logs-head">
      <h2>Log: <span id="log-name"></span> <span id="log-state" class="muted"></span></h2>
      <span class="spacer"></span>
      <button type="button" id="log-pause" aria-pressed="false">Pause</button>
      <button type="button" id="log-clear">Clear</button>
      <button type="button" id="log-close">Close</button>
    </div>
    <pre id="log" tabindex="0" aria-label="Log lines"></pre>
  </section>
  <section class="card" id="graph-card">
    <h2>Dependency graph</h2>
    <p class="muted">Columns are start waves (dependencies first); arrows go from a dependency to
    what needs it.</p>
    <div id="graph"></div>
  </section>
</main>
</body>
</html>
`;

const APP_JS = String.raw`"use strict";
(() => {
  const MAX_LOG_LINES = 2000;
  const MAX_EVENTS = 200;
  const STATUS_ICON = {
    running: "●",
    failed: "✖",
    stopped: "○",
    starting: "◐",
    backoff: "◔",
    stopping: "◑",
  };
  const HEALTH_ICON = { healthy: "✔", unhealthy: "✖", unknown: "?" };
  const SVG_NS = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);
  /** An element with attributes (text: its textContent) and children (strings become text). */
  const h = (tag, attrs, ...children) => {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    for (const c of children) if (c !== null && c !== undefined) el.append(c);
    return el;
  };
  const s = (tag, attrs, ...children) => {
    const el = document.createElementNS(SVG_NS, tag);
    setAttrs(el, attrs);
    for (const c of children) if (c !== null && c !== undefined) el.append(c);
    return el;
  };
  function setAttrs(el, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") el.textContent = String(v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
  }

  const state = {
    services: new Map(), // name -> row from /v1/services (+ uptimeAt)
    rows: new Map(), // name -> {tr, cells...}
    layout: "", // categories and names the table was built for
    graph: null,
    events: null,
    retry: 0,
    eventAt: new Map(), // name -> Date.now() of its last status event
    journalIds: new Set(), // ids of the journal events shown (a new stream replays the hour)
    log: { source: null, name: null, paused: false, pending: [] },
    signedOut: false,
  };

  // ---- sign-in -------------------------------------------------------------------------------

  async function main() {
    wireStatic();
    const token = new URLSearchParams(location.hash.slice(1)).get("token");
    if (token) {
      let r;
      try {
        r = await fetch("/v1/session", {
          method: "POST",
          headers: { Authorization: "Bearer " + token },
          credentials: "same-origin",
        });
      } catch {
        r = null;
      } finally {
        history.replaceState(null, "", location.pathname);
      }
      if (!r || !r.ok) {
        return signedOut(
          r ? "The token was not accepted (HTTP " + r.status + ")." : "The agent did not answer.",
        );
      }
    }
    let agent;
    try {
      agent = await fetch("/v1/agent", { credentials: "same-origin" });
    } catch {
      return signedOut("The agent did not answer.");
    }
    if (agent.status === 401) return signedOut("");
    if (agent.ok) showAgent(await agent.json().catch(() => null));
    $("signin").hidden = true;
    $("app").hidden = false;
    await refresh();
    connect();
    setInterval(tick, 1000);
  }

  function signedOut(detail) {
    state.signedOut = true;
    if (state.events) state.events.close();
    closeLog();
    setConnection("signed-out", "signed out");
    $("app").hidden = true;
    $("signin").hidden = false;
    $("signin-detail").textContent = detail || "";
  }

  function showAgent(info) {
    if (!info || typeof info !== "object") return;
    const parts = [];
    if (info.version) parts.push("v" + info.version);
    if (info.pid) parts.push("pid " + info.pid);
    if (info.registry) parts.push(String(info.registry));
    else if (info.home) parts.push(String(info.home));
    if (info.supervisor && typeof info.supervisor === "object") {
      parts.push(
        info.supervisor.running ? "supervisor pid " + info.supervisor.pid : "no supervisor",
      );
    }
    $("agent-info").textContent = parts.join(" · ");
  }

  // ---- data ----------------------------------------------------------------------------------

  async function getJson(path) {
    const r = await fetch(path, { credentials: "same-origin" });
    if (r.status === 401) {
      signedOut("The session has ended.");
      throw new Error("signed out");
    }
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    return r.json();
  }

  /** Re-read the services and the graph; a status event newer than the request wins. */
  async function refresh() {
    const asked = Date.now();
    let rows, graph;
    try {
      [rows, graph] = await Promise.all([getJson("/v1/services"), getJson("/v1/graph")]);
    } catch (e) {
      if (!state.signedOut) notice("error", "Could not read the services: " + e.message);
      return;
    }
    const now = Date.now();
    const next = new Map();
    for (const row of rows) {
      const old = state.services.get(row.name);
      const fresher = old && (state.eventAt.get(row.name) || 0) > asked;
      next.set(
        row.name,
        fresher
          ? {
            ...row,
            status: old.status,
            pid: old.pid,
            restarts: old.restarts,
            health: old.health,
            uptime_s: old.uptime_s,
            uptimeAt: old.uptimeAt,
          }
          : { ...row, uptimeAt: now },
      );
    }
    state.services = next;
    renderTable();
    state.graph = graph;
    drawGraph();
  }

  function connect() {
    if (state.signedOut) return;
    if (state.events) state.events.close();
    const es = new EventSource("/v1/events?since=1h");
    state.events = es;
    es.addEventListener("open", () => {
      state.retry = 0;
      setConnection("connected", "connected");
      refresh();
    });
    es.addEventListener("status", (ev) => {
      let d;
      try {
        d = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (d && typeof d.name === "string") applyStatus(d);
    });
    es.addEventListener("journal", (ev) => {
      let d;
      try {
        d = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (d && typeof d.text === "string") addEvent(d, ev.lastEventId);
    });
    es.addEventListener("error", () => {
      if (state.signedOut || state.events !== es) return;
      setConnection("reconnecting", "reconnecting…");
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (an HTTP error, not a dropped connection): check the session, retry.
        es.close();
        const wait = Math.min(30000, 1000 * 2 ** state.retry++);
        checkSession().then((ok) => {
          if (ok) setTimeout(() => state.events === es && connect(), wait);
        });
      }
    });
  }

  async function checkSession() {
    try {
      const r = await fetch("/v1/agent", { credentials: "same-origin" });
      if (r.status === 401) {
        signedOut("The session has ended.");
        return false;
      }
    } catch {
      // The agent is away: keep trying.
    }
    return true;
  }

  function setConnection(st, text) {
    const el = $("connection");
    el.dataset.state = st;
    el.textContent = text;
  }

  function applyStatus(d) {
    const row = state.services.get(d.name);
    if (!row) {
      refresh(); // a service this page has not seen
      return;
    }
    state.eventAt.set(d.name, Date.now());
    // The same process still running: keep the uptime ticking here (an event for a health change
    // carries the uptime of the agent's last read, which may be seconds old).
    const same = row.status === "running" && d.status === "running" && row.pid === d.pid &&
      typeof row.uptime_s === "number";
    if (d.status) row.status = d.status;
    if ("pid" in d) row.pid = d.pid;
    if ("restarts" in d && d.restarts !== undefined) row.restarts = d.restarts;
    if ("healthy" in d) {
      row.health = d.healthy === true ? "healthy" : d.healthy === false ? "unhealthy" : "unknown";
    }
    if ("uptime_s" in d && !same) {
      row.uptime_s = d.uptime_s;
      row.uptimeAt = Date.now();
    }
    paintRow(row);
    paintSummary();
    paintNode(d.name, row.status);
  }

  // ---- the services table --------------------------------------------------------------------

  function renderTable() {
    const rows = [...state.services.values()];
    const categories = [...new Set(rows.map((r) => r.category || "other"))];
    const layout = JSON.stringify(
      categories.map((
        c,
      ) => [c, rows.filter((r) => (r.category || "other") === c).map((r) => r.name)]),
    );
    $("services-empty").hidden = rows.length > 0;
    if (layout !== state.layout) {
      state.layout = layout;
      const table = $("services");
      for (const tb of table.querySelectorAll("tbody")) tb.remove();
      state.rows.clear();
      for (const c of categories) {
        const tbody = h("tbody", { "data-category": c });
        tbody.append(
          h(
            "tr",
            { class: "category" },
            h("th", { colspan: 7, scope: "rowgroup", text: c.toUpperCase() }),
          ),
        );
        for (const row of rows.filter((r) => (r.category || "other") === c)) {
          tbody.append(buildRow(row));
        }
        table.append(tbody);
      }
    }
    for (const row of rows) paintRow(row);
    paintSummary();
    if (state.log.name) markSelected(state.log.name);
  }

  function buildRow(row) {
    const name = row.name;
    const nameButton = h("button", {
      type: "button",
      class: "link",
      title: "Show the log of " + name,
      text: name,
    });
    nameButton.addEventListener("click", () => openLog(name));
    const meta = h("div", { class: "meta muted" });
    const cells = {
      name: h("td", { class: "name" }, nameButton, meta),
      status: h("td", { class: "status" }),
      health: h("td", { class: "health" }),
      pid: h("td", { class: "num pid" }),
      uptime: h("td", { class: "num uptime" }),
      restarts: h("td", { class: "num restarts" }),
      actions: h("td", { class: "actions" }),
    };
    const buttons = {};
    for (const action of ["start", "stop", "restart"]) {
      const b = h("button", {
        type: "button",
        class: "action action-" + action,
        "data-action": action,
        text: action,
      });
      b.addEventListener("click", () => act(name, action));
      buttons[action] = b;
      cells.actions.append(b);
    }
    const logButton = h("button", {
      type: "button",
      class: "action",
      "data-action": "logs",
      text: "logs",
    });
    logButton.addEventListener("click", () => openLog(name));
    cells.actions.append(logButton);
    const tr = h("tr", { class: "service" }, ...Object.values(cells));
    state.rows.set(name, { tr, cells, meta, buttons, busy: false });
    tagged(tr, name);
    return tr;
  }

  /** Every element of a service carries data-service="<name>". */
  function tagged(el, name) {
    el.dataset.service = name;
    for (const e of el.querySelectorAll("*")) e.dataset.service = name;
    return el;
  }

  function paintRow(row) {
    const r = state.rows.get(row.name);
    if (!r) return;
    const { cells } = r;
    const status = row.status || "stopped";
    const health = row.health || "unknown";
    r.tr.className = "service s-" + status;
    cells.status.dataset.status = status;
    cells.status.title = row.message ? String(row.message) : "";
    cells.status.replaceChildren(
      h("span", {
        class: "dot s-" + status,
        "aria-hidden": "true",
        text: STATUS_ICON[status] || "•",
      }),
      h("span", { class: "label", text: status }),
    );
    cells.health.dataset.health = health;
    cells.health.replaceChildren(
      h("span", {
        class: "dot h-" + health,
        "aria-hidden": "true",
        text: HEALTH_ICON[health] || "?",
      }),
      h("span", { class: "label", text: health }),
    );
    cells.pid.textContent = row.pid ? String(row.pid) : "—";
    cells.restarts.textContent = row.restarts === undefined || row.restarts === null
      ? "—"
      : String(row.restarts);
    const meta = [row.type, row.deployment_mode].filter(Boolean).join(" · ");
    const deps = Array.isArray(row.dependencies) && row.dependencies.length
      ? "needs " + row.dependencies.join(", ")
      : "";
    r.meta.textContent = [meta, deps].filter(Boolean).join(" — ");
    r.buttons.start.disabled = r.busy || status === "running";
    r.buttons.stop.disabled = r.busy || status === "stopped";
    r.buttons.restart.disabled = r.busy;
    paintUptime(row);
    tagged(r.tr, row.name);
  }

  function paintUptime(row) {
    const r = state.rows.get(row.name);
    if (!r) return;
    const up = row.status === "running" && typeof row.uptime_s === "number"
      ? row.uptime_s + Math.max(0, Math.floor((Date.now() - (row.uptimeAt || Date.now())) / 1000))
      : null;
    r.cells.uptime.textContent = up === null ? "—" : duration(up);
  }

  function tick() {
    for (const row of state.services.values()) paintUptime(row);
  }

  function paintSummary() {
    const rows = [...state.services.values()];
    const running = rows.filter((r) => r.status === "running").length;
    $("summary").textContent = running + "/" + rows.length + " running";
  }

  function duration(sec) {
    sec = Math.floor(sec);
    const d = Math.floor(sec / 86400), hr = Math.floor((sec % 86400) / 3600);
    const m = Math.floor((sec % 3600) / 60), sx = sec % 60;
    const two = (n) => String(n).padStart(2, "0");
    if (d) return d + "d " + two(hr) + "h " + two(m) + "m";
    if (hr) return hr + "h " + two(m) + "m " + two(sx) + "s";
    if (m) return m + "m " + two(sx) + "s";
    return sx + "s";
  }

  // ---- actions -------------------------------------------------------------------------------

  async function act(name, action) {
    if (action === "stop" && !confirm('Stop "' + name + '"?')) return;
    const r = state.rows.get(name);
    const setBusy = (busy) => {
      if (!r) return;
      r.busy = busy;
      const row = state.services.get(name);
      if (row) paintRow(row);
    };
    setBusy(true);
    let res, body;
    try {
      res = await fetch("/v1/services/" + encodeURIComponent(name) + "/" + action, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: "{}",
        credentials: "same-origin",
        // Under the page's no-referrer policy the Fetch standard sends "Origin: null" on a POST
        // (Chromium sends the origin anyway); the agent wants this origin on a cookie-signed POST.
        referrerPolicy: "same-origin",
      });
      body = await res.json().catch(() => null);
    } catch (e) {
      notice("error", action + " " + name + ": the agent did not answer (" + e.message + ")");
      return;
    } finally {
      setBusy(false);
    }
    if (res.status === 401) return signedOut("The session has ended.");
    if (body && body.error) {
      const err = body.error;
      notice(
        "error",
        err.message || (action + " " + name + " failed (" + (err.code || res.status) + ")"),
        err.hints,
      );
    } else if (body && Array.isArray(body.outcomes)) {
      const lines = body.outcomes.map((o) =>
        o.name + ": " + o.status + (o.message ? " — " + o.message : "")
      );
      const ok = res.ok && body.ok !== false;
      const took = typeof body.elapsed_ms === "number"
        ? " in " + Math.round(body.elapsed_ms) + " ms"
        : "";
      notice(ok ? "ok" : "error", action + " " + name + (ok ? ": done" : ": failed") + took, lines);
    } else {
      notice(res.ok ? "ok" : "error", action + " " + name + ": HTTP " + res.status);
    }
    refresh();
  }

  let noticeTimer = 0;
  function notice(kind, message, hints) {
    const el = $("notice");
    clearTimeout(noticeTimer);
    el.dataset.kind = kind;
    $("notice-message").textContent = message;
    const list = $("notice-hints");
    list.replaceChildren(
      ...(Array.isArray(hints) ? hints : []).map((x) =>
        h("li", { text: typeof x === "string" ? x : JSON.stringify(x) })
      ),
    );
    el.hidden = false;
    if (kind === "ok") noticeTimer = setTimeout(() => (el.hidden = true), 8000);
  }

  // ---- the event journal ---------------------------------------------------------------------

  /** One journal record at the top of the list (once per id), the oldest beyond MAX dropped. */
  function addEvent(d, id) {
    if (id && state.journalIds.has(id)) return;
    const at = new Date(d.at);
    const time = isNaN(at.getTime()) ? String(d.at) : at.toLocaleTimeString();
    const li = h(
      "li",
      { class: "ev", "data-type": String(d.type || ""), "data-id": id || null, title: String(d.at) },
      h("time", { datetime: String(d.at), text: time }),
      " ",
      h("span", { class: "ev-service", text: d.service || "platform" }),
      ": ",
      h("span", { class: "ev-text", text: d.text }),
      " ",
      h("span", { class: "muted", text: "[" + String(d.by || "") + "]" }),
    );
    if (id) state.journalIds.add(id);
    const list = $("journal");
    list.prepend(li);
    while (list.children.length > MAX_EVENTS) {
      const last = list.lastElementChild;
      if (last.dataset.id) state.journalIds.delete(last.dataset.id);
      last.remove();
    }
    $("journal-empty").hidden = true;
  }

  // ---- the log tail --------------------------------------------------------------------------

  function openLog(name) {
    closeLog();
    const log = state.log;
    log.name = name;
    log.paused = false;
    log.pending = [];
    $("log-name").textContent = name;
    $("log").replaceChildren();
    $("logs").hidden = false;
    paintPause();
    markSelected(name);
    let lastId = "";
    const es = new EventSource(
      "/v1/services/" + encodeURIComponent(name) + "/logs?lines=100&follow=1",
    );
    log.source = es;
    setLogState("connecting…");
    es.addEventListener("open", () => {
      // A reconnect resumes after the last line when its id is a file position ("ino:offset",
      // sent back as Last-Event-ID); otherwise the stream starts again with the last lines.
      if (lastId && !/^\d+:\d+$/.test(lastId)) {
        $("log").replaceChildren();
        log.pending = [];
      }
      setLogState(log.paused ? "paused" : "following");
    });
    es.addEventListener("line", (ev) => {
      lastId = ev.lastEventId || lastId;
      addLine(ev.data);
    });
    es.addEventListener("error", () => {
      if (log.source !== es) return;
      if (es.readyState === EventSource.CLOSED) {
        setLogState("closed");
        es.close();
      } else {
        setLogState("reconnecting…");
      }
    });
    $("logs").scrollIntoView({ block: "nearest" });
  }

  function closeLog() {
    const log = state.log;
    if (log.source) log.source.close();
    log.source = null;
    log.name = null;
    log.pending = [];
    $("logs").hidden = true;
    markSelected(null);
  }

  function markSelected(name) {
    for (const [n, r] of state.rows) r.tr.classList.toggle("selected", n === name);
  }

  function setLogState(text) {
    $("log-state").textContent = "(" + text + ")";
  }

  function addLine(text) {
    const log = state.log;
    if (log.paused) {
      log.pending.push(text);
      if (log.pending.length > MAX_LOG_LINES) {
        log.pending.splice(0, log.pending.length - MAX_LOG_LINES);
      }
      return;
    }
    appendLines([text]);
  }

  function appendLines(lines) {
    const pre = $("log");
    const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
    for (const t of lines) pre.append(h("span", { class: "line", text: t + "\n" }));
    while (pre.childElementCount > MAX_LOG_LINES) pre.firstElementChild.remove();
    if (atBottom || lines.length > 1) pre.scrollTop = pre.scrollHeight;
  }

  function paintPause() {
    const b = $("log-pause");
    b.setAttribute("aria-pressed", String(state.log.paused));
    b.textContent = state.log.paused ? "Follow" : "Pause";
    b.dataset.state = state.log.paused ? "paused" : "following";
  }

  function wireStatic() {
    $("notice-close").addEventListener("click", () => ($("notice").hidden = true));
    $("log-close").addEventListener("click", closeLog);
    $("log-clear").addEventListener("click", () => $("log").replaceChildren());
    $("log-pause").addEventListener("click", () => {
      const log = state.log;
      log.paused = !log.paused;
      if (!log.paused && log.pending.length) {
        appendLines(log.pending);
        log.pending = [];
      }
      paintPause();
      if (log.source) setLogState(log.paused ? "paused" : "following");
    });
  }

  // ---- the dependency graph ------------------------------------------------------------------

  const BOX_W = 160, BOX_H = 44, GAP_X = 70, GAP_Y = 16, PAD = 12;

  function drawGraph() {
    const host = $("graph");
    const g = state.graph;
    if (!g || !Array.isArray(g.nodes) || g.nodes.length === 0) {
      host.replaceChildren(h("p", { class: "muted", text: "No services." }));
      return;
    }
    const names = g.nodes.map((n) => n.name);
    const waves = (Array.isArray(g.waves) ? g.waves : []).map((w) =>
      w.filter((n) => names.includes(n))
    ).filter((w) => w.length);
    const placed = new Set(waves.flat());
    const rest = names.filter((n) => !placed.has(n));
    if (rest.length) waves.push(rest);
    const pos = new Map();
    waves.forEach((w, i) =>
      w.forEach((n, j) =>
        pos.set(n, { x: PAD + i * (BOX_W + GAP_X), y: PAD + j * (BOX_H + GAP_Y) })
      )
    );
    const tallest = Math.max(...waves.map((w) => w.length));
    const width = PAD * 2 + waves.length * BOX_W + (waves.length - 1) * GAP_X + 40;
    const height = PAD * 2 + tallest * BOX_H + (tallest - 1) * GAP_Y;
    const svg = s("svg", {
      xmlns: SVG_NS,
      viewBox: "0 0 " + width + " " + height,
      width,
      height,
      role: "img",
      "aria-label": "Dependency graph",
      class: "graph",
    });
    svg.append(s(
      "defs",
      {},
      s("marker", {
        id: "arrow",
        viewBox: "0 0 10 10",
        refX: 10,
        refY: 5,
        markerWidth: 7,
        markerHeight: 7,
        orient: "auto-start-reverse",
      }, s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" })),
    ));
    const edges = s("g", { class: "edges" });
    for (const e of Array.isArray(g.edges) ? g.edges : []) {
      const a = pos.get(e.to), b = pos.get(e.from); // a: the dependency, b: what needs it
      if (!a || !b) continue;
      let d;
      if (a.x < b.x) {
        const x1 = a.x + BOX_W,
          y1 = a.y + BOX_H / 2,
          x2 = b.x,
          y2 = b.y + BOX_H / 2,
          mx = (x1 + x2) / 2;
        d = "M" + x1 + "," + y1 + " C" + mx + "," + y1 + " " + mx + "," + y2 + " " + x2 + "," + y2;
      } else {
        const x1 = a.x + BOX_W, y1 = a.y + BOX_H / 2, x2 = b.x + BOX_W, y2 = b.y + BOX_H / 2;
        d = "M" + x1 + "," + y1 + " C" + (x1 + 36) + "," + y1 + " " + (x2 + 36) + "," + y2 + " " +
          x2 + "," + y2;
      }
      edges.append(s("path", {
        d,
        class: "edge",
        "marker-end": "url(#arrow)",
        "data-from": e.from,
        "data-to": e.to,
      }, s("title", { text: e.from + " depends on " + e.to })));
    }
    svg.append(edges);
    for (const n of g.nodes) {
      const p = pos.get(n.name);
      const row = state.services.get(n.name);
      const status = (row && row.status) || n.status || "stopped";
      const label = n.name.length > 20 ? n.name.slice(0, 19) + "…" : n.name;
      const node = s(
        "g",
        {
          class: "node s-" + status,
          "data-service": n.name,
          "data-node-status": status,
          transform: "translate(" + p.x + "," + p.y + ")",
          tabindex: 0,
        },
        s("title", { text: n.name + " (" + (n.category || "") + "): " + status }),
        s("rect", { width: BOX_W, height: BOX_H, rx: 6, ry: 6 }),
        s("text", { x: 10, y: 18, class: "node-name", text: label }),
        s("text", {
          x: 10,
          y: 34,
          class: "node-status",
          text: status + (n.category ? " · " + n.category : ""),
        }),
      );
      for (const c of node.children) c.dataset.service = n.name;
      node.addEventListener("click", () => openLog(n.name));
      node.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") openLog(n.name);
      });
      svg.append(node);
    }
    host.replaceChildren(svg);
  }

  function paintNode(name, status) {
    const node = $("graph").querySelector('g.node[data-service="' + CSS.escape(name) + '"]');
    if (!node) return;
    node.setAttribute("class", "node s-" + status);
    node.dataset.nodeStatus = status;
    const text = node.querySelector(".node-status");
    const n = state.graph && state.graph.nodes.find((x) => x.name === name);
    if (text) text.textContent = status + (n && n.category ? " · " + n.category : "");
    const title = node.querySelector("title");
    if (title) {
      title.textContent = name + (n && n.category ? " (" + n.category + ")" : "") + ": " + status;
    }
  }

  main().catch((e) => notice("error", "The dashboard failed: " + e.message));
})();
`;

const APP_CSS = String.raw`:root {
  color-scheme: light dark;
  --bg: #f6f7f9;
  --card: #ffffff;
  --fg: #1d2230;
  --muted: #667085;
  --line: #e3e6ec;
  --ok: #1f9d55;
  --bad: #d63a3a;
  --off: #8a919e;
  --warn: #d98a00;
  --ok-bg: #e7f6ee;
  --bad-bg: #fdecec;
  --off-bg: #eef0f3;
  --warn-bg: #fdf3e0;
  --accent: #2f6fde;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #14171d;
    --card: #1c2029;
    --fg: #e5e8ee;
    --muted: #9aa3b2;
    --line: #2c3240;
    --ok-bg: #15321f;
    --bad-bg: #3a1c1c;
    --off-bg: #262b35;
    --warn-bg: #3a2d12;
    --accent: #6d9cf0;
  }
}
[hidden] {
  display: none !important;
}
* {
  box-sizing: border-box;
}
body {
  margin: 0;
  background: var(--bg);
  color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
.muted {
  color: var(--muted);
  font-weight: normal;
}
.top {
  display: flex;
  align-items: baseline;
  gap: 16px;
  padding: 12px 20px;
  border-bottom: 1px solid var(--line);
  background: var(--card);
}
.top h1 {
  font-size: 18px;
  margin: 0;
}
#agent-info {
  flex: 1;
  font-size: 12px;
}
#connection {
  font-size: 12px;
  padding: 2px 10px;
  border-radius: 999px;
  background: var(--off-bg);
  color: var(--off);
}
#connection::before {
  content: "● ";
}
#connection[data-state="connected"] {
  background: var(--ok-bg);
  color: var(--ok);
}
#connection[data-state="reconnecting"] {
  background: var(--warn-bg);
  color: var(--warn);
}
#connection[data-state="signed-out"] {
  background: var(--bad-bg);
  color: var(--bad);
}
main {
  max-width: 1200px;
  margin: 16px auto;
  padding: 0 20px;
}
#signin,
#notice {
  width: calc(100% - 40px);
  max-width: 1160px;
  margin: 16px auto;
}
.card {
  background: var(--card);
  border: 1px solid var(--line);
  border-radius: 8px;
  padding: 14px 16px;
  margin-bottom: 16px;
}
#signin {
  padding: 14px 16px;
}
.card h2 {
  font-size: 15px;
  margin: 0 0 10px;
}
#notice {
  position: relative;
  padding: 10px 40px 10px 14px;
  border-radius: 8px;
  border: 1px solid var(--bad);
  background: var(--bad-bg);
}
#notice[data-kind="ok"] {
  border-color: var(--ok);
  background: var(--ok-bg);
}
#notice p {
  margin: 0;
  font-weight: 600;
}
#notice ul {
  margin: 6px 0 0;
  padding-left: 20px;
}
#notice ul:empty {
  display: none;
}
.icon-button {
  position: absolute;
  top: 6px;
  right: 8px;
  border: 0;
  background: transparent;
  color: inherit;
  font-size: 18px;
  cursor: pointer;
}
table {
  width: 100%;
  border-collapse: collapse;
}
th,
td {
  text-align: left;
  padding: 6px 8px;
  border-bottom: 1px solid var(--line);
  vertical-align: middle;
}
thead th {
  font-size: 12px;
  color: var(--muted);
  font-weight: 600;
}
tr.category th {
  font-size: 11px;
  letter-spacing: 0.06em;
  color: var(--muted);
  background: var(--bg);
  padding-top: 10px;
}
.num {
  text-align: right;
  font-variant-numeric: tabular-nums;
}
td.name .meta {
  font-size: 11px;
}
tr.service.selected {
  background: var(--off-bg);
}
.dot {
  display: inline-block;
  width: 1.2em;
  text-align: center;
}
.s-running .dot.s-running,
.dot.s-running {
  color: var(--ok);
}
.dot.s-failed {
  color: var(--bad);
}
.dot.s-stopped {
  color: var(--off);
}
.dot.s-starting,
.dot.s-backoff,
.dot.s-stopping {
  color: var(--warn);
}
.dot.h-healthy {
  color: var(--ok);
}
.dot.h-unhealthy {
  color: var(--bad);
}
.dot.h-unknown {
  color: var(--off);
}
td.status[data-status="failed"] .label {
  color: var(--bad);
  font-weight: 600;
}
td.status[data-status="running"] .label {
  color: var(--ok);
}
td.status[data-status="starting"] .label,
td.status[data-status="backoff"] .label,
td.status[data-status="stopping"] .label {
  color: var(--warn);
}
td.health[data-health="unhealthy"] .label {
  color: var(--bad);
}
button {
  font: inherit;
  font-size: 12px;
  padding: 3px 10px;
  border-radius: 6px;
  border: 1px solid var(--line);
  background: var(--card);
  color: var(--fg);
  cursor: pointer;
}
button:hover:not(:disabled) {
  border-color: var(--accent);
}
button:disabled {
  opacity: 0.45;
  cursor: default;
}
button.link {
  border: 0;
  padding: 0;
  background: none;
  color: var(--accent);
  font-size: 14px;
  font-weight: 600;
}
td.actions {
  white-space: nowrap;
}
td.actions button + button {
  margin-left: 4px;
}
.action-stop:not(:disabled):hover {
  border-color: var(--bad);
  color: var(--bad);
}
.logs-head {
  display: flex;
  align-items: center;
  gap: 6px;
}
.logs-head h2 {
  margin: 0;
}
.spacer {
  flex: 1;
}
#log-pause[data-state="paused"] {
  border-color: var(--warn);
  color: var(--warn);
}
#journal {
  list-style: none;
  margin: 0;
  padding: 0;
  max-height: 240px;
  overflow: auto;
  font: 12px/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace;
}
#journal time {
  color: var(--muted);
}
#journal .ev-service {
  font-weight: 600;
}
.ev[data-type="crashed"] .ev-text,
.ev[data-type="failed"] .ev-text,
.ev[data-type="gave_up"] .ev-text,
.ev[data-type="unhealthy"] .ev-text,
.ev[data-type="refused"] .ev-text,
.ev[data-type="preflight"] .ev-text {
  color: var(--bad);
}
.ev[data-type="backoff"] .ev-text,
.ev[data-type="restarting"] .ev-text,
.ev[data-type="warning"] .ev-text {
  color: var(--warn);
}
.ev[data-type="healthy"] .ev-text,
.ev[data-type="ready"] .ev-text {
  color: var(--ok);
}
#log {
  margin: 10px 0 0;
  max-height: 360px;
  min-height: 120px;
  overflow: auto;
  padding: 8px 10px;
  border-radius: 6px;
  background: #0f1218;
  color: #d5dae3;
  font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace;
  white-space: pre-wrap;
  word-break: break-all;
}
#graph {
  overflow-x: auto;
}
svg.graph .edge {
  fill: none;
  stroke: var(--muted);
  stroke-width: 1.5;
}
svg.graph .arrowhead {
  fill: var(--muted);
}
svg.graph .node {
  cursor: pointer;
}
svg.graph .node rect {
  fill: var(--off-bg);
  stroke: var(--off);
  stroke-width: 1.5;
}
svg.graph .node.s-running rect {
  fill: var(--ok-bg);
  stroke: var(--ok);
}
svg.graph .node.s-failed rect {
  fill: var(--bad-bg);
  stroke: var(--bad);
}
svg.graph .node.s-starting rect,
svg.graph .node.s-backoff rect,
svg.graph .node.s-stopping rect {
  fill: var(--warn-bg);
  stroke: var(--warn);
}
svg.graph .node:focus {
  outline: none;
}
svg.graph .node:focus rect {
  stroke-width: 3;
}
svg.graph .node-name {
  fill: var(--fg);
  font-size: 13px;
  font-weight: 600;
}
svg.graph .node-status {
  fill: var(--muted);
  font-size: 11px;
}
`;

/** The dashboard's files by URL path: `/` (the page), `/app.js`, `/app.css`. */
export const DASHBOARD_ASSETS: Record<string, DashboardAsset> = {
  "/": { type: "text/html; charset=utf-8", body: INDEX_HTML },
  "/app.js": { type: "text/javascript; charset=utf-8", body: APP_JS },
  "/app.css": { type: "text/css; charset=utf-8", body: APP_CSS },
};
