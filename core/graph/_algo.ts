/**
 * The algorithms behind `Graph`, on node indexes: a binary heap, Kahn's topological sort with a
 * priority tiebreak, iterative reachability, iterative DFS cycle search, strongly connected
 * components (which nodes are on a cycle) and a shortest cycle through a node. No recursion, so
 * deep graphs cannot overflow the stack.
 *
 * @module
 */

/** `true` when node `a` should come before node `b` among nodes that are ready together. */
export type Before = (a: number, b: number) => boolean;

/** A binary min-heap of node indexes ordered by `before`. */
export class Heap {
  #items: number[] = [];
  #before: Before;
  constructor(before: Before) {
    this.#before = before;
  }
  get size(): number {
    return this.#items.length;
  }
  push(x: number): void {
    const a = this.#items;
    let i = a.push(x) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#before(x, a[parent])) break;
      a[i] = a[parent];
      i = parent;
    }
    a[i] = x;
  }
  pop(): number | undefined {
    const a = this.#items;
    const top = a[0];
    const last = a.pop();
    if (a.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= a.length) break;
      const c = l + 1 < a.length && this.#before(a[l + 1], a[l]) ? l + 1 : l;
      if (!this.#before(a[c], last)) break;
      a[i] = a[c];
      i = c;
    }
    a[i] = last;
    return top;
  }
}

/** Adjacency lists by node index: `deps[i]` are what `i` depends on, `dependents[i]` the reverse. */
export interface Adjacency {
  deps: readonly (readonly number[])[];
  dependents: readonly (readonly number[])[];
}

/**
 * Kahn's algorithm over the nodes of `members` (in `mask`): a node is emitted once every
 * dependency inside the mask has been; among ready nodes `before` decides. Nodes on or behind
 * a cycle are never ready: they come back as `stuck`, in index order.
 */
export function kahn(
  adj: Adjacency,
  members: readonly number[],
  mask: Uint8Array,
  before: Before,
): { order: number[]; stuck: number[] } {
  const waiting = new Int32Array(mask.length);
  const heap = new Heap(before);
  for (const v of members) {
    let n = 0;
    for (const d of adj.deps[v]) if (mask[d]) n++;
    waiting[v] = n;
    if (n === 0) heap.push(v);
  }
  const order: number[] = [];
  while (heap.size) {
    const v = heap.pop()!;
    order.push(v);
    for (const u of adj.dependents[v]) {
      if (mask[u] && --waiting[u] === 0) heap.push(u);
    }
  }
  const stuck = order.length === members.length
    ? []
    : members.filter((v) => waiting[v] > 0).sort((a, b) => a - b);
  return { order, stuck };
}

/** Every node reachable from `from` along `edges` (including `from`), as a mask and a list. */
export function reach(
  edges: readonly (readonly number[])[],
  from: Iterable<number>,
): { mask: Uint8Array; list: number[] } {
  const mask = new Uint8Array(edges.length);
  const list: number[] = [];
  for (const s of from) {
    if (mask[s]) continue;
    mask[s] = 1;
    list.push(s);
  }
  for (let i = 0; i < list.length; i++) {
    for (const d of edges[list[i]]) {
      if (!mask[d]) {
        mask[d] = 1;
        list.push(d);
      }
    }
  }
  return { mask, list };
}

/** A path from `from` to `to` along `edges` (breadth first, so a shortest one), or `null`. */
export function pathBetween(
  edges: readonly (readonly number[])[],
  from: number,
  to: number,
): number[] | null {
  const parent = new Int32Array(edges.length).fill(-1);
  parent[from] = from;
  const queue = [from];
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i];
    if (v === to) {
      const path = [v];
      for (let p = v; p !== from;) path.push(p = parent[p]);
      return path.reverse();
    }
    for (const d of edges[v]) {
      if (parent[d] === -1) {
        parent[d] = v;
        queue.push(d);
      }
    }
  }
  return null;
}

/**
 * Cycles along `deps`, found by an iterative depth-first search that starts from nodes in index
 * order: one cycle per back edge, so every cycle of the graph shares at least one edge with a
 * reported one and no two reports are the same cycle. Each cycle starts at its lowest index and
 * repeats it at the end. Stops after `limit` cycles; `mask` restricts the search to a subset.
 */
export function findCycles(
  deps: readonly (readonly number[])[],
  opts: { limit?: number; mask?: Uint8Array } = {},
): number[][] {
  const { limit = Infinity, mask } = opts;
  const n = deps.length;
  const color = new Uint8Array(n); // 0 unvisited, 1 on the stack, 2 done
  const depth = new Int32Array(n);
  const stack: number[] = [];
  const next: number[] = [];
  const cycles: number[][] = [];
  for (let s = 0; s < n && cycles.length < limit; s++) {
    if (color[s] || (mask && !mask[s])) continue;
    color[s] = 1;
    depth[s] = 0;
    stack.push(s);
    next.push(0);
    while (stack.length && cycles.length < limit) {
      const top = stack.length - 1;
      const u = stack[top];
      if (next[top] === deps[u].length) {
        color[u] = 2;
        stack.pop();
        next.pop();
        continue;
      }
      const v = deps[u][next[top]++];
      if (mask && !mask[v]) continue;
      if (color[v] === 0) {
        color[v] = 1;
        depth[v] = stack.length;
        stack.push(v);
        next.push(0);
      } else if (color[v] === 1) {
        cycles.push(rotate(stack.slice(depth[v])));
      }
    }
  }
  return cycles;
}

/** `[c, a, b]` → `[a, b, c, a]` when `a` is the lowest index. */
function rotate(ring: number[]): number[] {
  let lo = 0;
  for (let i = 1; i < ring.length; i++) if (ring[i] < ring[lo]) lo = i;
  const path = [...ring.slice(lo), ...ring.slice(0, lo)];
  path.push(path[0]);
  return path;
}

/**
 * Which nodes lie on a cycle: those in a strongly connected component of two or more nodes, or
 * depending on themselves (Kosaraju's two passes, iterative). `component` numbers every node's
 * component; `cyclic` marks the nodes on a cycle.
 */
export function cyclicNodes(adj: Adjacency): { component: Int32Array; cyclic: Uint8Array } {
  const n = adj.deps.length;
  const finished: number[] = [];
  const seen = new Uint8Array(n);
  const stack: number[] = [];
  const next: number[] = [];
  for (let s = 0; s < n; s++) {
    if (seen[s]) continue;
    seen[s] = 1;
    stack.push(s);
    next.push(0);
    while (stack.length) {
      const top = stack.length - 1;
      const u = stack[top];
      if (next[top] === adj.deps[u].length) {
        finished.push(u);
        stack.pop();
        next.pop();
        continue;
      }
      const v = adj.deps[u][next[top]++];
      if (!seen[v]) {
        seen[v] = 1;
        stack.push(v);
        next.push(0);
      }
    }
  }
  const component = new Int32Array(n).fill(-1);
  const cyclic = new Uint8Array(n);
  let id = 0;
  for (let i = n - 1; i >= 0; i--) {
    const s = finished[i];
    if (component[s] !== -1) continue;
    const members = [s];
    component[s] = id;
    for (let k = 0; k < members.length; k++) {
      for (const v of adj.dependents[members[k]]) {
        if (component[v] === -1) {
          component[v] = id;
          members.push(v);
        }
      }
    }
    if (members.length > 1 || adj.deps[s].includes(s)) members.forEach((v) => (cyclic[v] = 1));
    id++;
  }
  return { component, cyclic };
}

/**
 * A shortest cycle through `v` along `deps`, inside `v`'s strongly connected component, in the
 * form of {@linkcode findCycles} (lowest index first and last); `[]` when `v` is on none.
 */
export function cycleThrough(
  deps: readonly (readonly number[])[],
  v: number,
  component: Int32Array,
): number[] {
  const parent = new Map<number, number>([[v, v]]); // a Map: only the component is visited
  const queue = [v];
  for (let i = 0; i < queue.length; i++) {
    const u = queue[i];
    for (const d of deps[u]) {
      if (d === v) {
        const ring = [u];
        for (let p = u; p !== v;) ring.push(p = parent.get(p)!);
        return rotate(ring.reverse());
      }
      if (component[d] !== component[v] || parent.has(d)) continue;
      parent.set(d, u);
      queue.push(d);
    }
  }
  return [];
}
