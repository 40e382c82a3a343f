/**
 * Every process of a binary service, whatever it forked: found by its cgroup where the machine
 * allows one (as systemd does), else by an environment marker every descendant inherits, plus
 * the process group of a live leader — and killed together when the service stops or before it
 * starts again.
 *
 * ```
 * PROVISIONING_SERVICE_ID=<home id>:<name>:<nonce>       in the environment of every child
 * <cgroup2 mount>/provisioning/<home id>/<name>.service   the cgroup, where it can be created
 * ```
 *
 * The home id is a hash of the home's real path, so two homes never mix their services; the
 * nonce tells incarnations apart (a `pid_file` must name a process of this very start). A scan
 * matches the prefix `<home id>:<name>:`, so processes of any earlier incarnation are found too.
 * Both can be found with no record at all: the cgroup path and the prefix follow from the home
 * and the name.
 *
 * Who counts: a process in the cgroup (only root can move one there) or carrying the marker and
 * owned by our user can stand for a running service with no record; any process carrying the
 * marker is killed with the service (a user can only tag processes of their own).
 *
 * `PROVISIONING_CGROUPS=off` keeps services out of cgroups (the marker still works);
 * `PROVISIONING_CGROUP_ROOT=<dir>` puts them under another cgroup directory (a delegated subtree).
 *
 * @module
 */
import { accessSync, constants, existsSync, readdirSync, realpathSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import process from "node:process";
import { randomHex } from "../../core/names.ts";
import {
  cgroup2Mount,
  cgroupPids,
  createCgroup,
  killCgroup,
  removeCgroup,
} from "../../core/process/cgroup.ts";
import {
  groupMembers,
  isAlive,
  killGroup,
  procStat,
  waitGone,
} from "../../core/process/identity.ts";
import { tagged } from "../../core/process/tree.ts";
import type { ServiceState, StatePaths } from "../../core/types.ts";

/** The variable that marks every process of a service. */
export const SERVICE_ID_VARIABLE = "PROVISIONING_SERVICE_ID";

const ids = new Map<string, string>();

/** A short stable id of the home `home` (FNV-1a 64 of its real path, as 16 hex digits). */
export function homeId(home: string): string {
  const known = ids.get(home);
  if (known) return known;
  let hash = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(realish(home))) {
    hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  const id = hash.toString(16).padStart(16, "0");
  ids.set(home, id);
  return id;
}

/** The real path of `path`, as far as it exists (a home not yet created hashes the same later). */
function realish(path: string): string {
  const rest: string[] = [];
  let current = resolve(path);
  while (true) {
    try {
      return join(realpathSync(current), ...rest.reverse());
    } catch {
      const parent = dirname(current);
      if (parent === current) return resolve(path);
      rest.push(basename(current));
      current = parent;
    }
  }
}

/** What every marker of service `name` in this home starts with. */
export function markerPrefix(paths: StatePaths, name: string): string {
  return `${homeId(paths.home)}:${name}:`;
}

/** A fresh marker for one start of `name`. */
export function newMarker(paths: StatePaths, name: string): string {
  return `${markerPrefix(paths, name)}${randomHex()}`;
}

const OFF = new Set(["0", "off", "false", "no"]);

/** The cgroups of one home's services, listed at most every `maxAgeMs` (status of many). */
const listed = new Map<string, { at: number; names: Set<string> }>();

/**
 * Whether the cgroup `dir` may exist: one listing of its parent (the home's cgroups) serves
 * every status read within `maxAgeMs` instead of a failed read per service without one.
 */
function cgroupMayExist(dir: string, maxAgeMs: number): boolean {
  if (maxAgeMs <= 0) return true;
  const parent = dirname(dir);
  let l = listed.get(parent);
  if (!l || performance.now() - l.at > maxAgeMs) {
    let names: string[] = [];
    try {
      names = readdirSync(parent);
    } catch { /* no cgroup of this home yet */ }
    l = { at: performance.now(), names: new Set(names) };
    listed.set(parent, l);
  }
  return l.names.has(basename(dir));
}

const writableCache = new Map<string, boolean>();

/** Whether this process may create cgroups under `base` (its nearest existing ancestor). */
function writable(base: string): boolean {
  let known = writableCache.get(base);
  if (known === undefined) {
    let dir = base;
    while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
    try {
      accessSync(dir, constants.W_OK);
      known = true;
    } catch {
      known = false;
    }
    writableCache.set(base, known);
  }
  return known;
}

/** Where the cgroups of this home's services go: `<base>/<home id>/<name>.service`. */
export interface CgroupPlace {
  base: string;
  dir: string;
}

/**
 * Where the cgroup of `name` is or would be, or undefined without a cgroup2 mount. With
 * `forStart`, also undefined when `PROVISIONING_CGROUPS` turns cgroups off.
 */
export function cgroupPlace(
  paths: StatePaths,
  env: Record<string, string | undefined>,
  name: string,
  opts: { forStart?: boolean } = {},
): CgroupPlace | undefined {
  if (opts.forStart && OFF.has((env.PROVISIONING_CGROUPS ?? "").toLowerCase())) return undefined;
  const root = env.PROVISIONING_CGROUP_ROOT;
  const base = root && isAbsolute(root)
    ? root
    : cgroup2Mount()
    ? join(cgroup2Mount()!.path, "provisioning")
    : undefined;
  if (!base) return undefined;
  return { base, dir: join(base, homeId(paths.home), `${name}.service`) };
}

/** The cgroup a start of `name` runs in, created now; undefined where none can be. */
export function prepareCgroup(
  paths: StatePaths,
  env: Record<string, string | undefined>,
  name: string,
): CgroupPlace | undefined {
  const place = cgroupPlace(paths, env, name, { forStart: true });
  listed.clear(); // a status read after this start must see its cgroup
  return place && createCgroup(place.dir) ? place : undefined;
}

/** How to find one service's processes. */
export interface Tracking {
  /** Markers start with this. */
  prefix: string;
  /** Its cgroup (recorded, else where it would be). */
  cgroup?: CgroupPlace;
  /** The recorded leader and its start time (it counts only while that very process lives). */
  leader?: { pid: number; start: string };
  /** The recorded process group. */
  pgid?: number;
  /**
   * Whether to scan for the marker (a read of every process's environment). Not when the record
   * says its start ran in a cgroup: nothing it forked can leave that but by root's hand.
   */
  markers: boolean;
}

/** The tracking of `name` from its record (if any) and the home. */
export function trackingOf(
  paths: StatePaths,
  env: Record<string, string | undefined>,
  name: string,
  state: ServiceState | undefined,
  leader?: { pid: number; start: string },
): Tracking {
  const handle = state?.handle ?? {};
  // A recorded cgroup is `<base>/<home id>/<name>.service`.
  const cgroup = typeof handle.cgroup === "string"
    ? { base: dirname(dirname(handle.cgroup)), dir: handle.cgroup }
    : cgroupPlace(paths, env, name);
  const pgid = typeof handle.pgid === "number" ? handle.pgid : state?.pid;
  // The marker scan (every process's environment) is needed when the recorded start ran
  // without a cgroup; with no record of a start, only where starts could run without one
  // (where this home's starts get cgroups, whatever a start forked is in the cgroup's known
  // place, record or not).
  const markers = typeof handle.marker === "string"
    ? typeof handle.cgroup !== "string"
    : !(cgroup && !OFF.has((env.PROVISIONING_CGROUPS ?? "").toLowerCase()) &&
      writable(cgroup.base));
  return { prefix: markerPrefix(paths, name), cgroup, leader, pgid, markers };
}

/** One process of a service, and whether it may stand for the running service. */
export interface Found {
  pid: number;
  /** In its cgroup, its live leader or group, or marked and owned by our user. */
  trusted: boolean;
}

const ownUid = () => process.geteuid?.() ?? -1;

/**
 * The live processes of the service `t` tracks: its cgroup, its marker, and (`groups`) the
 * members of its recorded process group while the group holds one of them. `maxAgeMs`: a marker
 * scan that old may be reused (status reads); 0 (default) scans afresh.
 */
export async function trackedProcesses(
  t: Tracking,
  opts: { maxAgeMs?: number; groups?: boolean } = {},
): Promise<Found[]> {
  const found = new Map<number, Found>();
  const add = (pid: number, trusted: boolean) => {
    const known = found.get(pid);
    if (!known || (!known.trusted && trusted)) found.set(pid, { pid, trusted });
  };
  const leader = t.leader && (await isAlive(t.leader.pid, t.leader.start))
    ? t.leader.pid
    : undefined;
  if (leader) add(leader, true);
  // A dying multi-threaded process stays listed until its last thread is gone, its leader
  // already a zombie: that one is dead.
  if (t.cgroup && cgroupMayExist(t.cgroup.dir, opts.maxAgeMs ?? 0)) {
    for (const pid of cgroupPids(t.cgroup.dir)) if (await isAlive(pid)) add(pid, true);
  }
  if (t.markers) {
    const query = { variable: SERVICE_ID_VARIABLE, prefix: true, maxAgeMs: opts.maxAgeMs };
    for (const p of tagged(t.prefix, query)) add(p.pid, p.uid === ownUid());
  }
  // Only the marker can miss a member of the group (one that cleared its environment).
  if (opts.groups && t.markers && found.size > 0) {
    for (const pgid of groupsOf(t)) {
      const members = await groupMembers(pgid);
      const held = (leader !== undefined && (await procStat(leader))?.pgid === pgid) ||
        members.some((m) => found.has(m));
      if (held) { for (const m of members) add(m, true); }
    }
  }
  return [...found.values()].filter((f) => f.pid !== process.pid);
}

/**
 * The recorded group and the leader's own: a group number is ours only while a process of the
 * service is in it (once the group is empty the number may be reused by anyone).
 */
function groupsOf(t: Tracking): number[] {
  return [...new Set([t.pgid, t.leader?.pid].filter((g): g is number => !!g && g > 1))];
}

/** What {@linkcode killTracked} did. */
export interface KillOutcome {
  /** Processes that were there when it began. */
  found: number[];
  /** The graceful signal was not enough (or `force`): SIGKILL was sent. */
  sigkill: boolean;
  /** Processes still alive after SIGKILL and `killWaitMs`. */
  survivors: number[];
}

/** How {@linkcode killTracked} goes about it. */
export interface KillOptions {
  /** The graceful signal (default SIGTERM). */
  signal?: NodeJS.Signals;
  /** How long the graceful signal gets before SIGKILL. */
  timeoutMs: number;
  /** SIGKILL at once. */
  force?: boolean;
  /** How long to wait for the processes to vanish after SIGKILL (default 5 s). */
  killWaitMs?: number;
  /** The first look may reuse a status read's marker scan this many ms old. */
  firstLookMaxAgeMs?: number;
  /** Leave the (empty) cgroup in place: a start is about to spawn into it. */
  keepCgroup?: boolean;
  abort?: AbortSignal;
}

/**
 * End every process of the service: the graceful signal to each of them (and to its live
 * group), up to `timeoutMs` for all to go, then SIGKILL (`cgroup.kill`, and each one known,
 * again at every look until none is left). Removes its cgroup once empty. Never throws for
 * processes that will not die: they are the `survivors`.
 *
 * While it waits it watches the processes it found (and the cgroup), which is cheap; only when
 * all of them are gone does it look everywhere again, to make sure nothing new is left.
 */
export async function killTracked(t: Tracking, opts: KillOptions): Promise<KillOutcome> {
  // Once found, a process counts until it is dead: a dying one may drop out of the scans (its
  // environment reads empty once its main thread is gone) while its threads still hold its port.
  const known = new Map<number, string | undefined>();
  const everywhere = async (maxAgeMs = 0): Promise<number[]> => {
    const now = await trackedProcesses(t, { groups: true, maxAgeMs });
    for (const f of now) {
      if (!known.has(f.pid)) known.set(f.pid, (await procStat(f.pid))?.startTime);
    }
    return [...new Set([...now.map((f) => f.pid), ...(await knownAlive())])];
  };
  const knownAlive = async (): Promise<number[]> => {
    const alive: number[] = [];
    for (const [pid, start] of known) if (start && (await isAlive(pid, start))) alive.push(pid);
    if (t.cgroup) {
      for (const pid of cgroupPids(t.cgroup.dir)) {
        if (!alive.includes(pid) && (await isAlive(pid))) alive.push(pid);
      }
    }
    return alive;
  };
  const look = async () => {
    const alive = await knownAlive();
    return alive.length ? alive : await everywhere();
  };
  const done = (outcome: KillOutcome) => {
    if (t.cgroup && !opts.keepCgroup) removeCgroup(t.cgroup.dir, t.cgroup.base);
    return outcome;
  };
  const first = await everywhere(opts.firstLookMaxAgeMs);
  const outcome: KillOutcome = { found: first, sigkill: false, survivors: [] };
  if (first.length === 0) return done(outcome);
  const exists = async () => (await look()).length > 0;
  if (!opts.force) {
    await signalAll(t, first, opts.signal ?? "SIGTERM");
    if (await waitGone(exists, opts.timeoutMs, { signal: opts.abort })) return done(outcome);
  }
  outcome.sigkill = true;
  const killAll = async () => {
    const now = await look();
    await signalAll(t, now, "SIGKILL");
    if (t.cgroup) killCgroup(t.cgroup.dir);
    return now.length > 0;
  };
  await killAll();
  if (!(await waitGone(killAll, opts.killWaitMs ?? 5_000, { signal: opts.abort }))) {
    outcome.survivors = await look();
  }
  return done(outcome);
}

/**
 * `signal` once to each process found: to the live leader's whole group at once (which also
 * reaches a member forked this instant), then to each one outside that group.
 */
async function signalAll(t: Tracking, found: number[], signal: NodeJS.Signals): Promise<void> {
  let group: number | undefined;
  const leader = t.leader?.pid;
  if (leader && found.includes(leader)) {
    try {
      if ((await procStat(leader))?.pgid === leader && killGroup(leader, signal)) group = leader;
    } catch { /* not ours to signal */ }
  }
  for (const pid of found) {
    if (group !== undefined && (await procStat(pid))?.pgid === group) continue;
    try {
      process.kill(pid, signal);
    } catch { /* gone meanwhile */ }
  }
}
