/**
 * The dependency graph of a registry: start and stop order, reverse dependencies, start waves,
 * the critical path, the services an operation needs, and every problem (unknown dependencies,
 * cycles as paths, impossible conflicts). Pure and synchronous; it works on any objects shaped
 * like {@linkcode GraphNode}, so registry services can be passed as they are.
 *
 * @example
 * ```ts
 * import { Graph } from "./graph.ts";
 * const g = new Graph([
 *   { name: "db", dependencies: [] },
 *   { name: "api", dependencies: ["db"] },
 * ]);
 * g.order(["api"]); // ["db", "api"]
 * g.dependents("db"); // ["api"]
 * ```
 *
 * @module
 */
import { findCycles, kahn, reach } from "./_algo.ts";
import {
  type GraphFacts,
  type GraphProblem,
  graphProblems,
  type ProblemOptions,
} from "./_problems.ts";
import { suggest } from "../suggest.ts";
import { DependencyCycleError, UsageError } from "../errors.ts";

export type { GraphProblem, ProblemOptions };

/** What the graph needs of a service; a registry `Service` fits as it is. */
export interface GraphNode {
  name: string;
  dependencies: readonly string[];
  /** Services or foreign process names this one cannot run beside. */
  conflicts?: readonly string[];
  /** Operations that need this service (`services check OP`). */
  required_for?: readonly string[];
  /** Tiebreak among services whose dependencies are met: lower first (default 100). */
  start_order?: number;
  /** It starts with the platform; two conflicting services cannot both (default false). */
  auto_start?: boolean;
  /** Read for `start_order` and `auto_start` when the fields above are absent (a `Service`). */
  startup?: { start_order?: number; auto_start?: boolean };
}

/** The start order of services that do not say (as in the registry's defaults). */
export const DEFAULT_START_ORDER = 100;

/** A dependency graph over services. Immutable once built; derived sets are cached. */
export class Graph {
  /** Service names, in input order. */
  readonly names: string[];
  #index = new Map<string, number>();
  #deps: number[][] = [];
  #dependents: number[][] = [];
  #startOrder: number[] = [];
  #requiredFor: (readonly string[])[] = [];
  #conflicts: (readonly string[])[] = [];
  #autoStart: boolean[] = [];
  #unknown: string[][] = [];
  #duplicates: string[] = [];
  #rank?: Int32Array;
  #transitive = new Map<string, number[]>();
  #before = (a: number, b: number): boolean => {
    const sa = this.#startOrder[a], sb = this.#startOrder[b];
    return sa !== sb ? sa < sb : a < b;
  };

  /** Build from services in input order; a repeated name keeps its first definition. */
  constructor(nodes: Iterable<GraphNode>) {
    const list: GraphNode[] = [];
    for (const node of nodes) {
      if (this.#index.has(node.name)) {
        this.#duplicates.push(node.name);
        continue;
      }
      this.#index.set(node.name, list.length);
      list.push(node);
    }
    this.names = list.map((n) => n.name);
    for (const node of list) {
      const deps = new Set<number>();
      const unknown: string[] = [];
      for (const d of node.dependencies ?? []) {
        const i = this.#index.get(d);
        if (i === undefined) unknown.push(d);
        else deps.add(i);
      }
      this.#deps.push([...deps]);
      this.#dependents.push([]);
      this.#unknown.push(unknown);
      const order = node.start_order ?? node.startup?.start_order;
      this.#startOrder.push(Number.isFinite(order) ? order! : DEFAULT_START_ORDER);
      this.#requiredFor.push(node.required_for ?? []);
      this.#conflicts.push(node.conflicts ?? []);
      this.#autoStart.push((node.auto_start ?? node.startup?.auto_start) === true);
    }
    this.#deps.forEach((deps, v) => deps.forEach((d) => this.#dependents[d].push(v)));
  }

  /** Whether a service of that name exists. */
  has(name: string): boolean {
    return this.#index.has(name);
  }

  /**
   * Every problem at once, sorted by service: duplicate names, unknown dependencies (with a
   * "did you mean" hint), self-dependencies, each distinct cycle as `a -> b -> a`, and conflicts
   * that cannot be met (a service conflicts with something it needs, or something that needs it,
   * or two services one service needs both), and conflicting services that both auto-start.
   * Unknown names in `conflicts` are not problems. `everyCycleMember` reports each cycle on every
   * service on it (default: on its first service only).
   */
  problems(opts: ProblemOptions = {}): GraphProblem[] {
    const facts: GraphFacts = {
      names: this.names,
      index: this.#index,
      deps: this.#deps,
      dependents: this.#dependents,
      unknown: this.#unknown,
      conflicts: this.#conflicts,
      duplicates: this.#duplicates,
      autoStart: this.#autoStart,
    };
    return graphProblems(facts, opts);
  }

  /** The first cycle found, as a path with its first service repeated at the end, or `null`. */
  findCycle(): string[] | null {
    const [cycle] = findCycles(this.#deps, { limit: 1 });
    return cycle ? this.#namesOf(cycle) : null;
  }

  /**
   * Start order of `names` (default: every service) and all they depend on: dependencies
   * first; among services whose dependencies are met, lower `start_order` first, then input
   * order. Throws {@linkcode DependencyCycleError} on a cycle, {@linkcode UsageError} on an
   * unknown name. Unknown dependencies are skipped (`problems()` reports them).
   */
  order(names?: Iterable<string>): string[] {
    const from = this.#resolve(names);
    const set = from ? reach(this.#deps, from) : this.#all();
    return this.#namesOf(this.#sort(set.list, set.mask));
  }

  /**
   * Stop order of exactly `names` (default: every service), dependents first: the mirror of
   * the start order. Dependencies through services outside `names` still count.
   */
  stopOrder(names?: Iterable<string>): string[] {
    const from = this.#resolve(names);
    if (!from) return this.order().reverse();
    const chosen = new Set(from);
    const closure = reach(this.#deps, from);
    return this.#namesOf(
      this.#sort(closure.list, closure.mask).filter((v) => chosen.has(v)).reverse(),
    );
  }

  /** What `name` depends on, directly (default) or transitively, in start order. */
  dependencies(name: string, opts: { transitive?: boolean } = {}): string[] {
    return this.#related(this.#at(name), this.#deps, "deps", opts.transitive);
  }

  /** What depends on `name` ("Required by"), directly (default) or transitively, in start order. */
  dependents(name: string, opts: { transitive?: boolean } = {}): string[] {
    return this.#related(this.#at(name), this.#dependents, "dependents", opts.transitive);
  }

  /** `names` plus everything they depend on, transitively; iterates in start order. */
  closure(names: Iterable<string>): Set<string> {
    const { list } = reach(this.#deps, this.#resolve(names) ?? []);
    return new Set(this.#namesOf(this.#byRank(list)));
  }

  /**
   * Start waves of exactly `names` (default: every service): wave 0 holds the services with no
   * dependency inside the set, wave k those whose deepest dependency inside the set is in wave
   * k - 1. Dependencies through services outside the set count. Each wave is sorted by
   * `start_order`, then input order. Throws {@linkcode DependencyCycleError} on a cycle.
   */
  waves(names?: Iterable<string>): string[][] {
    const { chosen, topo } = this.#within(names);
    const level = new Int32Array(this.names.length);
    const waves: number[][] = [];
    for (const v of topo) {
      let k = 0;
      for (const d of this.#deps[v]) k = Math.max(k, level[d] + (chosen[d] ? 1 : 0));
      level[v] = k;
      if (chosen[v]) (waves[k] ??= []).push(v);
    }
    return waves.map((w) => this.#namesOf(w.sort((a, b) => (this.#before(a, b) ? -1 : 1))));
  }

  /**
   * The longest chain of dependencies among exactly `names` (default: every service), weighing
   * each service by `weight` (default 1, must not be negative): `path` in start order, `length`
   * the sum of its weights. Chains may pass through services outside the set (weighing 0); use
   * `criticalPath(graph.closure(names))` for the chain through everything `names` needs.
   * Ties go to the chain that ends, then continues, earliest in start order.
   */
  criticalPath(
    names?: Iterable<string>,
    weight: (name: string) => number = () => 1,
  ): { path: string[]; length: number } {
    const { chosen, topo } = this.#within(names);
    const rank = new Int32Array(this.names.length);
    topo.forEach((v, i) => (rank[v] = i));
    const best = new Float64Array(this.names.length);
    const prev = new Int32Array(this.names.length).fill(-1);
    let end = -1;
    for (const v of topo) {
      let top = -1;
      for (const d of this.#deps[v]) {
        if (top === -1 || best[d] > best[top] || (best[d] === best[top] && rank[d] < rank[top])) {
          top = d;
        }
      }
      prev[v] = top;
      best[v] = (top === -1 ? 0 : best[top]) + (chosen[v] ? weight(this.names[v]) : 0);
      if (chosen[v] && (end === -1 || best[v] > best[end])) end = v;
    }
    const path: number[] = [];
    for (let v = end; v !== -1; v = prev[v]) if (chosen[v]) path.push(v);
    return { path: this.#namesOf(path.reverse()), length: end === -1 ? 0 : best[end] };
  }

  /**
   * The services an operation needs: those whose `required_for` names it, plus everything they
   * depend on, in start order. An operation no service names gives `[]`.
   */
  requiredFor(operation: string): string[] {
    const wanted: string[] = [];
    this.#requiredFor.forEach((ops, v) => ops.includes(operation) && wanted.push(this.names[v]));
    return wanted.length ? this.order(wanted) : [];
  }

  /** Every operation any service's `required_for` names, sorted. */
  operations(): string[] {
    return [...new Set(this.#requiredFor.flat())].sort();
  }

  #namesOf(list: readonly number[]): string[] {
    return list.map((i) => this.names[i]);
  }

  #all(): { list: number[]; mask: Uint8Array } {
    return { list: this.names.map((_, i) => i), mask: new Uint8Array(this.names.length).fill(1) };
  }

  #at(name: string): number {
    const i = this.#index.get(name);
    if (i !== undefined) return i;
    const hint = suggest(name, this.names);
    throw new UsageError(`Unknown service "${name}"`, hint ? [`Did you mean "${hint}"?`] : []);
  }

  /** Indexes of `names` (deduplicated, in the given order), or `null` for "every service". */
  #resolve(names: Iterable<string> | undefined): number[] | null {
    if (names === undefined) return null;
    const list = typeof names === "string" ? [names] : names;
    return [...new Set([...list].map((n) => this.#at(n)))];
  }

  /** Topological order of `list`, or a DependencyCycleError with a cycle inside it. */
  #sort(list: number[], mask: Uint8Array): number[] {
    const { order, stuck } = kahn(
      { deps: this.#deps, dependents: this.#dependents },
      list,
      mask,
      this.#before,
    );
    if (stuck.length === 0) return order;
    const inside = new Uint8Array(mask.length);
    stuck.forEach((v) => (inside[v] = 1));
    const [cycle] = findCycles(this.#deps, { limit: 1, mask: inside });
    throw new DependencyCycleError(this.#namesOf(cycle));
  }

  /** The chosen set as a mask, and its closure in start order. */
  #within(names?: Iterable<string>): { chosen: Uint8Array; topo: number[] } {
    const from = this.#resolve(names);
    const set = from ? reach(this.#deps, from) : this.#all();
    const chosen = from ? new Uint8Array(this.names.length) : set.mask;
    from?.forEach((v) => (chosen[v] = 1));
    return { chosen, topo: this.#sort(set.list, set.mask) };
  }

  /** Position of every service in the start order of all; services on a cycle go last. */
  #byRank(list: number[]): number[] {
    if (!this.#rank) {
      const { list: all, mask } = this.#all();
      const { order, stuck } = kahn(
        { deps: this.#deps, dependents: this.#dependents },
        all,
        mask,
        this.#before,
      );
      this.#rank = new Int32Array(this.names.length);
      [...order, ...stuck].forEach((v, i) => (this.#rank![v] = i));
    }
    const rank = this.#rank;
    return list.sort((a, b) => rank[a] - rank[b]);
  }

  #related(at: number, edges: number[][], kind: string, transitive?: boolean): string[] {
    if (!transitive) return this.#namesOf(this.#byRank(edges[at].filter((v) => v !== at)));
    const key = `${kind} ${at}`;
    let list = this.#transitive.get(key);
    if (!list) {
      list = this.#byRank(reach(edges, [at]).list.filter((v) => v !== at));
      this.#transitive.set(key, list);
    }
    return this.#namesOf(list);
  }
}
