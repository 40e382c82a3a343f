/**
 * `supervisor status`: the supervisor's process, then one line per service it watches.
 *
 * @module
 */
import type { supervisorStatus } from "../../mod.ts";

/** What a running supervisor reports. */
export type SupervisorReport = NonNullable<Awaited<ReturnType<typeof supervisorStatus>>>;

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

/** `Supervisor: running (pid 12, RSS 40.1 MiB, heap 9.8 MiB)`, or not running. */
export function renderSupervisorStatus(s: SupervisorReport | undefined): string {
  if (!s) return "Supervisor: not running";
  const memory = s.memory ? `, RSS ${mib(s.memory.rss)}, heap ${mib(s.memory.heap_used)}` : "";
  return [
    `Supervisor: running (pid ${s.pid}${memory})`,
    ...s.services.map((x) =>
      `  ${x.name} - ${x.phase}${x.pid ? ` (pid ${x.pid})` : ""}${
        x.streak ? `, ${x.streak} crash(es) in a row` : ""
      }`
    ),
  ].join("\n");
}
