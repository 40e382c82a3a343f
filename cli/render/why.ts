/**
 * `why NAME`: the explanation in a few lines — the chain as one sentence, then what is known of
 * each service in it (its state, its last events, what pre-flight finds in its way now, its last
 * log lines).
 *
 * @module
 */
import type { Explanation, Reason } from "../../mod.ts";
import { clock, green, red, yellow } from "./text.ts";

const at = (iso: string) => clock(new Date(iso));

/** The text of an explanation. */
export function renderWhy(ex: Explanation): string {
  if (ex.ok) {
    const r = ex.chain[0];
    const pid = r.pid ? ` (pid ${r.pid}${r.restarts ? `, ${r.restarts} restart(s)` : ""})` : "";
    return green(`✅ ${ex.summary}${pid}`);
  }
  const out = [red(`❌ ${ex.summary}`)];
  for (const r of ex.chain) out.push(...details(r, ex.chain.length > 1));
  if (ex.root_cause !== ex.service || ex.chain[0].status === "stopped") {
    out.push("", `Fix ${ex.root_cause} first, then: provisioning services start ${ex.service}`);
  }
  return out.join("\n");
}

function details(r: Reason, named: boolean): string[] {
  const lines: string[] = [];
  const head = named ? `${r.service}: ` : "";
  lines.push(
    "",
    `${head}${r.status}${r.health !== "unknown" ? `, ${r.health}` : ""}${
      r.since ? ` since ${at(r.since)}` : ""
    }${r.restarts ? `, ${r.restarts} restart(s)` : ""}`,
  );
  for (const b of r.blockers) {
    lines.push(yellow(`  ⛔ ${b.message}${b.hint ? ` (${b.hint})` : ""}`));
  }
  if (r.events.length) {
    lines.push("  Last events:");
    for (const e of r.events) lines.push(`    ${at(e.at)} ${e.text} [${e.by}]`);
  }
  if (r.log_tail.length) {
    lines.push(`  Last log lines (provisioning services logs ${r.service}):`);
    for (const l of r.log_tail) lines.push(`    ${l}`);
  }
  return lines;
}
