/// <reference lib="dom" />
/**
 * The agent's dashboard: its files checked for what the strict CSP forbids, then the page in a
 * real headless Chromium (playwright-core, the system's /usr/bin/chromium) against a real agent
 * process on a sandbox of real demo services: sign-in from the URL fragment (token gone from the
 * address bar, an HttpOnly cookie), live rows through a `kill -9` and the supervisor's restart
 * (no reload), a refused stop explained in the notice, the log tail following and pausing, the
 * dependency graph as SVG, a screenshot for the docs, and the "reconnecting" indicator once the
 * agent is gone.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { type Browser, chromium, type Page } from "playwright-core";
import { cliCommand, ROOT } from "../_cli.ts";
import { DASHBOARD_ASSETS, DASHBOARD_CSP, SIGN_IN_MESSAGE } from "../../core/agent/dashboard.ts";
import { freePort, type Sandbox, until } from "../e2e/_registry.ts";
import { cliStatus, supervisedSandbox } from "../e2e/_supervised.ts";

const CHROMIUM = "/usr/bin/chromium";
/** Skipped without Chromium, except in CI (`.ci/run` installs it: a skip there would hide that). */
const NO_BROWSER = !existsSync(CHROMIUM) && process.env.CI !== "true";
if (NO_BROWSER) {
  console.warn("dashboard browser test skipped: no /usr/bin/chromium (apt-get install chromium)");
}
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
];
/** Generous: the machine is small and shared. */
const WAIT = 20_000;

Deno.test("dashboard files: the page, its script, its stylesheet; nothing the CSP forbids", () => {
  assert.deepEqual(Object.keys(DASHBOARD_ASSETS).sort(), ["/", "/app.css", "/app.js"]);
  assert.equal(
    DASHBOARD_CSP,
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
      "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  );
  const html = DASHBOARD_ASSETS["/"].body;
  const js = DASHBOARD_ASSETS["/app.js"].body;
  const css = DASHBOARD_ASSETS["/app.css"].body;
  assert.match(DASHBOARD_ASSETS["/"].type, /^text\/html/);
  assert.match(DASHBOARD_ASSETS["/app.js"].type, /^text\/javascript/);
  assert.match(DASHBOARD_ASSETS["/app.css"].type, /^text\/css/);
  // No inline code: every <script> has a src, no <style>, no style= or on*= attributes.
  for (const tag of html.match(/<script\b[^>]*>/g) ?? []) assert.match(tag, /\bsrc="\/app\.js"/);
  assert.doesNotMatch(html, /<style\b|\sstyle=|\son[a-z]+=/i);
  assert.ok(html.includes(SIGN_IN_MESSAGE));
  // Nothing from elsewhere: the only absolute URL is the SVG namespace (a name, never fetched).
  for (const text of [html, js, css]) {
    const urls = (text.match(/\b[a-z]+:\/\/[^\s"')]+/gi) ?? [])
      .filter((u) => u !== "http://www.w3.org/2000/svg");
    assert.deepEqual(urls, []);
    assert.doesNotMatch(text, /@import|@font-face|url\((?!#)/);
  }
  // Data goes in as text, never as markup; no eval; styling through classes only.
  assert.doesNotMatch(
    js,
    /innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|\.style\b/,
  );
  new Function(js); // it parses (not run)
});

/** The agent process and the sign-in URL it printed. */
interface Agent {
  child: ChildProcess;
  url: string;
  output: () => string;
}

async function startAgent(sb: Sandbox): Promise<Agent> {
  const port = await freePort();
  const child = sb.adopt(spawn(
    ...cliCommand(["agent", "--listen", `127.0.0.1:${port}`, "--config", sb.config]),
    {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: "1", PROVISIONING_HOME: sb.home },
      stdio: ["ignore", "pipe", "pipe"],
    },
  ));
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const re = new RegExp(`http://127\\.0\\.0\\.1:${port}/#token=[^\\s]+`);
  await until(
    () => re.test(out) || child.exitCode !== null,
    "the agent to print its URL",
    WAIT,
  );
  if (!re.test(out)) throw new Error(`The agent exited ${child.exitCode}:\n${out}`);
  return { child, url: re.exec(out)![0], output: () => out };
}

/** The `data-status` of a service's status cell. */
function statusOf(page: Page, name: string): Promise<string | null> {
  return page.getAttribute(`#services td[data-service="${name}"][data-status]`, "data-status");
}

/** The PID shown in a service's row. */
async function shownPid(page: Page, name: string): Promise<number> {
  return Number(await page.textContent(`#services td.pid[data-service="${name}"]`));
}

/** Wait until the page shows `name` running under a PID other than `old`; that PID. */
async function untilRunningAgain(page: Page, name: string, old: number): Promise<number> {
  await page.waitForFunction(
    ([name, old]) => {
      const st = document.querySelector(`#services td[data-service="${name}"][data-status]`);
      const pid = document.querySelector(`#services td.pid[data-service="${name}"]`);
      return st?.getAttribute("data-status") === "running" && !!pid?.textContent &&
        Number(pid.textContent) > 0 && Number(pid.textContent) !== old;
    },
    [name, old] as const,
    { timeout: WAIT },
  );
  return await shownPid(page, name);
}

Deno.test({
  name:
    "dashboard in Chromium: sign-in, a crash and its restart live, a refused stop, the log tail, no CSRF",
  // Chromium's pipes and the agent's output streams outlive single steps by design.
  sanitizeResources: false,
  sanitizeOps: false,
  ignore: NO_BROWSER,
  async fn() {
    await using sb = await supervisedSandbox([
      {
        name: "db",
        category: "storage",
        readyAfter: 300,
        startup: { restart_on_failure: true, max_restarts: 10, restart_delay: 0.2 },
      },
      { name: "web", category: "frontend", deps: ["db"] },
    ]);
    const started = await sb.cli(["services", "start", "db", "web"]);
    assert.equal(started.code, 0, `services start: ${started.stdout}${started.stderr}`);
    const firstPid = (await cliStatus(sb, "db")).pid!;
    assert.ok(firstPid > 0);

    const agent = await startAgent(sb);
    const token = new URL(agent.url).hash.replace(/^#token=/, "");
    const origin = new URL(agent.url).origin;
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      const problems: string[] = [];
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      page.on("console", (m) => {
        if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(m.text());
      });
      const requests: string[] = [];
      page.on("request", (r) => requests.push(r.url()));
      let navigations = 0;
      page.on("framenavigated", (f) => {
        if (f === page.mainFrame()) navigations++;
      });

      // Sign-in: the token goes in a header once, the fragment leaves the address bar.
      const response = await page.goto(agent.url);
      assert.equal(response?.status(), 200);
      assert.equal(response?.headers()["content-security-policy"], DASHBOARD_CSP);
      await page.waitForSelector('#connection[data-state="connected"]', { timeout: WAIT });
      await page.waitForSelector('#services td[data-service="db"][data-status="running"]', {
        timeout: WAIT,
      });
      await page.waitForSelector('#services td[data-service="web"][data-status="running"]', {
        timeout: WAIT,
      });
      assert.equal(page.url(), `${origin}/`, "the token is still in the address bar");
      assert.ok(await page.isHidden("#signin"));
      const cookies = await context.cookies();
      assert.ok(cookies.length > 0, "no session cookie");
      for (const c of cookies) {
        assert.ok(c.httpOnly, `cookie ${c.name} is not HttpOnly`);
        assert.notEqual(c.value, token, "the cookie is the token itself");
      }
      assert.equal(await page.evaluate(() => document.cookie), "");
      // Grouped by category, both rows filled in, the graph drawn in waves.
      assert.equal(
        await page.textContent('tbody[data-category="storage"] tr.category'),
        "STORAGE",
      );
      assert.equal(await shownPid(page, "db"), firstPid);
      await page.waitForSelector('#services td[data-service="web"][data-health="healthy"]', {
        timeout: WAIT,
      });
      await page.waitForSelector('#graph svg g.node[data-service="web"]', { timeout: WAIT });
      // (a straight edge has no height: attached, not "visible")
      await page.waitForSelector('#graph svg path.edge[data-from="web"][data-to="db"]', {
        state: "attached",
        timeout: WAIT,
      });
      const x = (name: string) =>
        page.$eval(`#graph g.node[data-service="${name}"]`, (g) => g.getBoundingClientRect().x);
      assert.ok((await x("db")) < (await x("web")), "db is not in an earlier wave than web");

      // A crash: every status the row passes through, recorded in the page.
      const settled = navigations;
      await page.evaluate(() => {
        const w = window as unknown as { seen: string[]; sameDocument: boolean };
        w.sameDocument = true;
        w.seen = [];
        const cell = document.querySelector('#services td[data-service="db"][data-status]')!;
        new MutationObserver(() => w.seen.push(cell.getAttribute("data-status")!))
          .observe(cell, { attributes: true, attributeFilter: ["data-status"] });
      });
      process.kill(firstPid, "SIGKILL");
      const secondPid = await untilRunningAgain(page, "db", firstPid);
      const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
      assert.ok(
        seen.some((s) => ["failed", "backoff", "starting"].includes(s)),
        `db never showed as down: ${seen.join(" → ")}`,
      );
      assert.equal(seen.at(-1), "running");
      assert.equal(await statusOf(page, "web"), "running");
      assert.equal(
        await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument),
        true,
        "the page was reloaded",
      );
      assert.equal(navigations, settled, "the page navigated");

      // A refused stop: confirmed, then explained.
      const dialogs: string[] = [];
      page.once("dialog", (d) => {
        dialogs.push(`${d.type()}: ${d.message()}`);
        d.accept();
      });
      await page.click('#services button[data-service="db"][data-action="stop"]');
      await page.waitForFunction(
        () => {
          const n = document.getElementById("notice")!;
          return !n.hidden && n.textContent!.includes("web");
        },
        undefined,
        { timeout: WAIT },
      );
      assert.equal(dialogs.length, 1);
      assert.match(dialogs[0], /^confirm: .*db/);
      assert.equal(await page.getAttribute("#notice", "data-kind"), "error");
      assert.equal(await page.getAttribute("#notice", "role"), "alert");
      assert.equal((await cliStatus(sb, "db")).status, "running", "the refused stop stopped db");
      assert.equal(await statusOf(page, "db"), "running");

      // The log tail: backlog first, then a line of the next restart as it is written.
      await page.click('#services button.link[data-service="db"]');
      await page.waitForSelector("#logs:not([hidden])", { timeout: WAIT });
      assert.equal(await page.textContent("#log-name"), "db");
      await page.waitForFunction(
        (pid) => document.getElementById("log")!.textContent!.includes(`(pid ${pid},`),
        secondPid,
        { timeout: WAIT },
      );
      process.kill(secondPid, "SIGKILL");
      const thirdPid = await untilRunningAgain(page, "db", secondPid);
      await page.waitForFunction(
        (pid) => document.getElementById("log")!.textContent!.includes(`(pid ${pid},`),
        thirdPid,
        { timeout: WAIT },
      );

      // Paused, lines wait; Follow shows them.
      await page.click("#log-pause");
      assert.equal(await page.getAttribute("#log-pause", "aria-pressed"), "true");
      const shownLines = await page.$$eval("#log .line", (l) => l.length);
      process.kill(thirdPid, "SIGKILL");
      const fourthPid = await untilRunningAgain(page, "db", thirdPid);
      await until(
        async () => (await sb.log("db")).includes(`(pid ${fourthPid},`),
        "the restarted db's first line in its log",
        WAIT,
      );
      assert.equal(await page.$$eval("#log .line", (l) => l.length), shownLines);
      await page.click("#log-pause");
      assert.equal(await page.getAttribute("#log-pause", "aria-pressed"), "false");
      await page.waitForFunction(
        (pid) => document.getElementById("log")!.textContent!.includes(`(pid ${pid},`),
        fourthPid,
        { timeout: WAIT },
      );
      assert.ok(await page.$$eval("#log .line", (l) => l.length) <= 2000);
      assert.equal(await statusOf(page, "db"), "running");
      assert.equal(navigations, settled, "the page navigated");

      // The restarted db's health comes in live; web's uptime ticks in the page.
      await page.waitForSelector('#services td[data-service="db"][data-health="healthy"]', {
        timeout: WAIT,
      });
      const webUptime = await page.textContent('#services td.uptime[data-service="web"]');
      await page.waitForFunction(
        (before) =>
          document.querySelector('#services td.uptime[data-service="web"]')!.textContent !== before,
        webUptime,
        { timeout: WAIT },
      );
      await page.screenshot({ path: join(ROOT, "docs", "dashboard.png"), fullPage: true });
      assert.deepEqual(problems, []);
      // Every request went to the agent, none with the token in its URL (a fragment is never sent).
      assert.ok(requests.some((u) => u.includes("/logs?")), "no log stream was requested");
      for (const u of requests) {
        if (u.startsWith("data:")) continue;
        const { origin: o, pathname, search } = new URL(u);
        assert.equal(o, origin, `a request left the agent: ${u}`);
        assert.ok(!`${pathname}${search}`.includes(token), `the token went into a URL: ${u}`);
      }

      // Without the cookie (a new browser context) and without a token: the sign-in message.
      const stranger = await browser.newContext();
      const other = await stranger.newPage();
      await other.goto(`${origin}/`);
      await other.waitForSelector("#signin:not([hidden])", { timeout: WAIT });
      assert.equal(await other.textContent("#signin-message"), SIGN_IN_MESSAGE);
      assert.ok(await other.isHidden("#app"));
      await stranger.close();

      // CSRF: a page on another localhost port, in the signed-in browser, POSTs to the agent (a
      // form, and a no-cors fetch with credentials). The session cookie goes along (same site:
      // ports do not count), the Origin does not match: nothing restarts.
      const dbBefore = (await cliStatus(sb, "db")).pid;
      const target = `${origin}/v1/services/db/restart`;
      const attack = createServer((_req, res) => {
        res.writeHead(200, { "Content-Type": "text/html" });
        res.end(`<form id="f" method="POST" action="${target}" enctype="text/plain">
          <input name='{"force":true,"x":"' value='"}'></form>
          <script>
            fetch(${JSON.stringify(target)}, { method: "POST", mode: "no-cors",
              credentials: "include", body: "{}" }).finally(() => {
                document.title = "fetched"; document.getElementById("f").submit(); });
          </script>`);
      });
      await new Promise<void>((r) => attack.listen(0, "127.0.0.1", () => r()));
      try {
        const evil = await context.newPage();
        const answers: number[] = [];
        evil.on("response", (r) => r.url() === target && answers.push(r.status()));
        await evil.goto(`http://127.0.0.1:${(attack.address() as AddressInfo).port}/`);
        await evil.waitForURL(target, { timeout: WAIT }); // the form went through
        assert.deepEqual(answers, [403, 403], "the agent refused both cross-origin POSTs");
        await evil.close();
      } finally {
        attack.close();
      }
      assert.equal((await cliStatus(sb, "db")).pid, dbBefore, "a cross-origin page restarted db");

      // The agent gone: the indicator says so (the browser keeps retrying).
      process.kill(agent.child.pid!, "SIGKILL");
      await page.waitForSelector('#connection[data-state="reconnecting"]', { timeout: WAIT });
      assert.equal(await page.textContent("#connection"), "reconnecting…");
    } catch (e) {
      throw new Error(`${(e as Error).stack}\n--- agent output ---\n${agent.output()}`);
    } finally {
      await browser?.close();
      if (agent.child.exitCode === null && agent.child.signalCode === null) {
        const exited = new Promise((r) => agent.child.once("exit", r));
        process.kill(agent.child.pid!, "SIGKILL");
        await exited;
      }
    }
  },
});
