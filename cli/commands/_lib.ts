/**
 * The library as the commands use it, loaded once before a command runs (`loadLib`, called by
 * the entry unless argv only asks for help or the version): building the command tree imports
 * none of it, so `--help` loads commander and the command modules alone. Each name is a live
 * binding, set by `loadLib`.
 *
 * @module
 */
import type * as Mod from "../../mod.ts";
import { importLib } from "./_import_lib.ts";

export let defaultHome: typeof Mod.defaultHome;
export let defaultTokenFile: typeof Mod.defaultTokenFile;
export let ensureOperation: typeof Mod.ensureOperation;
export let ExitCode: typeof Mod.ExitCode;
export let explain: typeof Mod.explain;
export let listEntry: typeof Mod.listEntry;
export let listPlugins: typeof Mod.listPlugins;
export let loadToken: typeof Mod.loadToken;
export let mergeLive: typeof Mod.mergeLive;
export let mergeLogs: typeof Mod.mergeLogs;
export let monitor: typeof Mod.monitor;
export let parseSince: typeof Mod.parseSince;
export let planReload: typeof Mod.planReload;
export let planStart: typeof Mod.planStart;
export let planStop: typeof Mod.planStop;
export let ProvisioningError: typeof Mod.ProvisioningError;
export let readiness: typeof Mod.readiness;
export let readJournal: typeof Mod.readJournal;
export let RegistryError: typeof Mod.RegistryError;
export let reloadPlatform: typeof Mod.reloadPlatform;
export let restartServices: typeof Mod.restartServices;
export let reviveSupervisor: typeof Mod.reviveSupervisor;
export let startAgent: typeof Mod.startAgent;
export let startServices: typeof Mod.startServices;
export let statePaths: typeof Mod.statePaths;
export let stopServices: typeof Mod.stopServices;
export let stopSupervisor: typeof Mod.stopSupervisor;
export let Supervisor: typeof Mod.Supervisor;
export let supervisorStatus: typeof Mod.supervisorStatus;
export let UsageError: typeof Mod.UsageError;
export let validateServices: typeof Mod.validateServices;
export let versionLine: typeof Mod.versionLine;

/** Whether {@linkcode loadLib} has run. */
export const libLoaded = (): boolean => loaded;

/** Load the library and bind the names above (once). */
export async function loadLib(): Promise<void> {
  if (loaded) return;
  const m = await importLib();
  defaultHome = m.defaultHome;
  defaultTokenFile = m.defaultTokenFile;
  ensureOperation = m.ensureOperation;
  ExitCode = m.ExitCode;
  explain = m.explain;
  listEntry = m.listEntry;
  listPlugins = m.listPlugins;
  loadToken = m.loadToken;
  mergeLive = m.mergeLive;
  mergeLogs = m.mergeLogs;
  monitor = m.monitor;
  parseSince = m.parseSince;
  planReload = m.planReload;
  planStart = m.planStart;
  planStop = m.planStop;
  ProvisioningError = m.ProvisioningError;
  readiness = m.readiness;
  readJournal = m.readJournal;
  RegistryError = m.RegistryError;
  reloadPlatform = m.reloadPlatform;
  restartServices = m.restartServices;
  reviveSupervisor = m.reviveSupervisor;
  startAgent = m.startAgent;
  startServices = m.startServices;
  statePaths = m.statePaths;
  stopServices = m.stopServices;
  stopSupervisor = m.stopSupervisor;
  Supervisor = m.Supervisor;
  supervisorStatus = m.supervisorStatus;
  UsageError = m.UsageError;
  validateServices = m.validateServices;
  versionLine = m.versionLine;
  loaded = true;
}

let loaded = false;
