/**
 * `provisioning`: start, stop, watch and explain a platform of services described in a TOML
 * registry (`services.toml`).
 *
 * @example Bring up what an operation needs, from a script
 * ```ts
 * import { ensureOperation, Platform } from "./mod.ts";
 *
 * const platform = await Platform.open({ config: "examples/platform/services.toml" });
 * const result = await ensureOperation(platform, "server", {
 *   onEvent: (e) => console.log(e.elapsed_ms, e.type, e.service),
 * });
 * if (!result.ok) throw new Error("platform is not ready");
 * console.log(await platform.status("orchestrator"));
 * ```
 *
 * @example Validate a registry without touching anything
 * ```ts
 * import { planStart, Platform, validateServices } from "./mod.ts";
 *
 * const report = await validateServices({ config: "config/services.toml", prerequisites: false });
 * console.log(`${report.valid}/${report.total} valid`);
 * const plan = await planStart(await Platform.open({ config: "config/services.toml" }), ["api-gateway"]);
 * console.log(plan.waves);
 * ```
 *
 * Plugins (drivers and checks) have their own entry, `plugin.ts`.
 *
 * @module
 */
export { listEntry, Platform } from "./core/platform.ts";
export type { HealthReport, ListEntry, OpenOptions, StatusReport } from "./core/platform.ts";
export { planStart, planStop } from "./core/lifecycle/plan.ts";
export type { StartPlan, StopPlan } from "./core/lifecycle/plan.ts";
export {
  ensureOperation,
  restartServices,
  startServices,
  STARTUP_POLL_MAX_MS,
} from "./core/lifecycle/start.ts";
export type { StartOptions } from "./core/lifecycle/start.ts";
export { stopServices } from "./core/lifecycle/stop.ts";
export { planReload, reloadPlatform } from "./core/lifecycle/reload.ts";
export type {
  ReloadChange,
  ReloadDiff,
  ReloadOptions,
  ReloadPlan,
} from "./core/lifecycle/reload.ts";
export type { StopOptions as StopServicesOptions } from "./core/lifecycle/stop.ts";
export type { LifecycleEvent, LifecycleResult, Outcome } from "./core/lifecycle/events.ts";
export { preflight, readiness } from "./core/lifecycle/preflight.ts";
export { explain } from "./core/lifecycle/why.ts";
export type { Explanation, Reason } from "./core/lifecycle/why.ts";
export type { ReadinessEntry } from "./core/lifecycle/preflight.ts";
export { monitor } from "./core/lifecycle/monitor.ts";
export { Supervisor } from "./core/supervisor/daemon.ts";
export { reviveSupervisor, stopSupervisor, supervisorStatus } from "./core/supervisor/client.ts";
export type { SupervisorTarget } from "./core/supervisor/client.ts";
export type { Replies as SupervisorReplies } from "./core/supervisor/protocol.ts";
import type { Agent, AgentOptions } from "./core/agent/server.ts";
export type { Agent, AgentOptions };
/** The agent's API version (the program's version). */
export { VERSION as AGENT_VERSION } from "./core/runtime/version.ts";

/**
 * Start the HTTP agent (`provisioning agent`): see {@linkcode Agent}. Loaded when called: the
 * agent's HTTP and TLS modules are most of what a library import would load otherwise.
 */
export async function startAgent(opts: AgentOptions): Promise<Agent> {
  return (await import("./core/agent/server.ts")).startAgent(opts);
}
export { defaultTokenFile, loadToken } from "./core/agent/auth.ts";
export { validateServices } from "./core/registry/validate.ts";
export type { ServiceValidation, ValidationReport } from "./core/registry/validate.ts";
export {
  BUNDLED_REGISTRY,
  discoverRegistry,
  loadRegistry,
  validateRegistry,
} from "./core/registry/load.ts";
export type { LoadOptions, Validation } from "./core/registry/load.ts";
export { Graph } from "./core/graph/graph.ts";
export type { GraphNode, GraphProblem } from "./core/graph/graph.ts";
export { listPlugins, pluginDirs, PluginError, PluginRegistry } from "./core/plugins/registry.ts";
export type {
  DiscoverPluginsOptions,
  PluginEntry,
  PluginInfo,
  PluginKind,
} from "./core/plugins/registry.ts";
export { defaultHome, statePaths } from "./core/state/files.ts";
export { readState, StateStore, StateTransitionError } from "./core/state/store.ts";
export { mergeLive, mergeLogs } from "./core/state/log_merge.ts";
export type { MergeLiveOptions, ServiceLog, ServiceLogLine } from "./core/state/log_merge.ts";
export {
  appendEvent,
  JOURNAL_KEEP,
  JOURNAL_MAX_SIZE,
  journalFile,
  parseSince,
  readJournal,
} from "./core/state/journal.ts";
export type {
  JournalEntry,
  JournalEvent,
  JournalOptions,
  JournalRecord,
  JournalType,
  ReadJournalOptions,
  RequestedBy,
} from "./core/state/journal.ts";
export {
  DependencyCycleError,
  ExitCode,
  formatIssue,
  PreflightError,
  ProvisioningError,
  RefusedError,
  RegistryError,
  StartTimeoutError,
  UsageError,
} from "./core/errors.ts";
export { describeExit, SERVICE_STATUSES } from "./core/types.ts";
export { buildCommit, VERSION, versionLine } from "./core/runtime/version.ts";
export { readOwnFile } from "./core/runtime/assets.ts";
export type {
  ExitInfo,
  HealthCheckConfig,
  LogLine,
  LogOptions,
  Registry,
  RegistryIssue,
  RuntimeStatus,
  Service,
  ServiceState,
  ServiceStatus,
  StatePaths,
} from "./core/types.ts";
