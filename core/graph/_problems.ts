/**
 * `Graph.problems()`: everything wrong with a dependency graph, found at once.
 *
 * @module
 */
import { type Adjacency, findCycles, pathBetween, reach } from "./_algo.ts";
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
}

/**
 * Duplicates, unknown dependencies (with a "did you mean" hint), self-dependencies, each distinct
 * cycle as its path, and conflicts that can never be met because a service needs what it
 * conflicts with. Unknown names in `conflicts` are fine: they may name foreign processes.
 * Sorted by service in input order.
 */
export function graphProblems(g: GraphFacts): GraphProblem[] {
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
  for (const cycle of findCycles(g.deps)) {
    const at = cycle[0];
    const path = cycle.map((i) => g.names[i]).join(" -> ");
    const self = cycle.length === 2 ? ` ("${g.names[at]}" depends on itself)` : "";
    add(at, "dependencies", `Dependency cycle: ${path}${self}`);
  }
  conflictProblems(g, add);
  return found.sort((a, b) => a.at - b.at).map((f) => f.problem);
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
