/**
 * `Graph.problems()`: everything wrong with a dependency graph, found at once.
 *
 * @module
 */
import {
  type Adjacency,
  cycleThrough,
  cyclicNodes,
  findCycles,
  pathBetween,
  reach,
} from "./_algo.ts";
import { suggest } from "../suggest.ts";

/** One problem of the graph, at the TOML path a user has to edit. */
export interface GraphProblem {
  /** The service whose table holds the problem. */
  service: string;
  /** Dotted TOML path, e.g. `services.api.dependencies`. */
  path: string;
  message: string;
}

/** What the checks read: the graph's adjacency plus what the constructor set aside. */
export interface GraphFacts extends Adjacency {
  names: readonly string[];
  index: ReadonlyMap<string, number>;
  /** Per node, dependency names that name no service. */
  unknown: readonly (readonly string[])[];
  /** Per node, its `conflicts` as written. */
  conflicts: readonly (readonly string[])[];
  /** Names defined more than once (after the first). */
  duplicates: readonly string[];
  /** Per node, whether it starts with the platform (`startup.auto_start`). */
  autoStart: readonly boolean[];
}

/** Options of {@linkcode graphProblems}. */
export interface ProblemOptions {
  /**
   * Report a cycle on every service on it, not only on its first one, and every service on any
   * cycle (a registry marks each of them invalid). Default: each cycle once.
   */
  everyCycleMember?: boolean;
}

/** Cycles longer than this are shown around the service in the reports of its other members. */
const SHOWN_CYCLE = 16;

/**
 * Duplicates, unknown dependencies (with a "did you mean" hint), self-dependencies, each distinct
 * cycle as its path, conflicts that can never be met because a service needs what it conflicts
 * with, and conflicting services that both auto-start. Unknown names in `conflicts` are fine:
 * they may name foreign processes. Sorted by service in input order.
 */
export function graphProblems(g: GraphFacts, opts: ProblemOptions = {}): GraphProblem[] {
  const found: { at: number; problem: GraphProblem }[] = [];
  const add = (at: number, key: string, message: string) =>
    found.push({
      at,
      problem: { service: g.names[at], path: `services.${g.names[at]}.${key}`, message },
    });

  for (const name of g.duplicates) {
    const at = g.index.get(name)!;
    found.push({
      at,
      problem: {
        service: name,
        path: `services.${name}`,
        message: `Duplicate service "${name}": only the first definition is used`,
      },
    });
  }
  g.unknown.forEach((names, at) => {
    for (const name of names) {
      const hint = suggest(name, g.names);
      add(
        at,
        "dependencies",
        `Unknown dependency "${name}"${hint ? ` (did you mean "${hint}"?)` : ""}`,
      );
    }
  });
  const cycles = findCycles(g.deps);
  for (const cycle of cycles) {
    const at = cycle[0];
    const path = cycle.map((i) => g.names[i]).join(" -> ");
    const self = cycle.length === 2 ? ` ("${g.names[at]}" depends on itself)` : "";
    add(at, "dependencies", `Dependency cycle: ${path}${self}`);
  }
  if (opts.everyCycleMember) cycleMembers(g, cycles, add);
  conflictProblems(g, add);
  return found.sort((a, b) => a.at - b.at).map((f) => f.problem);
}

/**
 * The other services on each reported cycle, and the services on a cycle no report passes
 * through (one shortest cycle each): one problem per service, on its own `dependencies`.
 */
function cycleMembers(
  g: GraphFacts,
  cycles: readonly number[][],
  add: (at: number, key: string, message: string) => void,
) {
  const marked = new Uint8Array(g.names.length);
  for (const cycle of cycles) marked[cycle[0]] = 1;
  const report = (cycle: readonly number[]) => {
    for (const v of cycle) {
      if (marked[v]) continue;
      marked[v] = 1;
      add(v, "dependencies", `Dependency cycle: ${cycleText(g.names, cycle, v)}`);
    }
  };
  cycles.forEach(report);
  const { component, cyclic } = cyclicNodes(g);
  for (let v = 0; v < g.names.length; v++) {
    if (cyclic[v] && !marked[v]) report(cycleThrough(g.deps, v, component));
  }
}

/**
 * `a -> b -> c -> a`; a long cycle is shown around `at`:
 * `a -> … -> x -> at -> y -> … -> a (N services)`.
 */
function cycleText(names: readonly string[], cycle: readonly number[], at: number): string {
  const show = (list: readonly number[]) => list.map((i) => names[i]).join(" -> ");
  if (cycle.length <= SHOWN_CYCLE + 1) return show(cycle);
  const i = cycle.indexOf(at);
  const from = Math.max(1, i - 1), to = Math.min(cycle.length - 1, i + 2);
  const parts = [
    names[cycle[0]],
    ...(from > 1 ? ["…"] : []),
    show(cycle.slice(from, to)),
    ...(to < cycle.length - 1 ? ["…"] : []),
    names[cycle[0]],
  ];
  return `${parts.join(" -> ")} (${cycle.length - 1} services)`;
}

/** Conflicts with a dependency, a dependent, or a service needed together with it. */
function conflictProblems(g: GraphFacts, add: (at: number, key: string, message: string) => void) {
  const seen = new Set<string>();
  g.conflicts.forEach((conflicts, a) => {
    for (const name of conflicts) {
      const c = g.index.get(name);
      if (c === undefined || c === a) continue;
      const pair = a < c ? `${a} ${c}` : `${c} ${a}`;
      if (seen.has(pair)) continue;
      seen.add(pair);
      if (g.autoStart[a] && g.autoStart[c]) {
        add(
          a,
          "conflicts",
          `Conflicting services "${g.names[a]}" and "${name}" both auto-start: ` +
            `set startup.auto_start on one of them only`,
        );
      }
      const show = (path: number[]) => path.map((i) => g.names[i]).join(" -> ");
      if (g.deps[a].includes(c)) {
        add(
          a,
          "conflicts",
          `Conflicting dependency "${name}": listed in both dependencies and conflicts`,
        );
        continue;
      }
      const down = pathBetween(g.deps, a, c);
      if (down) {
        add(a, "conflicts", `Conflicting dependency "${name}": needed through ${show(down)}`);
        continue;
      }
      const up = pathBetween(g.deps, c, a);
      if (up) {
        add(
          a,
          "conflicts",
          `Conflicting service "${name}" depends on "${g.names[a]}": ${show(up)}`,
        );
        continue;
      }
      const both = reach(g.dependents, [a]).mask;
      const needer = reach(g.dependents, [c]).list.filter((i) => both[i]).sort((x, y) => x - y)[0];
      if (needer !== undefined) {
        add(a, "conflicts", `Conflicting service "${name}": "${g.names[needer]}" needs both`);
      }
    }
  });
}
