/**
 * "Did you mean" hints: the closest known name to a misspelt one.
 *
 * Written by hand rather than taken from npm: none of the project's dependencies ships an edit
 * distance (checked node_modules), and the usual packages (`fastest-levenshtein`, `leven`) would
 * add a dependency for twenty lines, without the transposition rule that catches `orchestartor`.
 *
 * @module
 */

/**
 * Edit distance between `a` and `b`: insertions, deletions, substitutions and swaps of two
 * adjacent characters each count 1 (optimal string alignment, Levenshtein's rule plus
 * transpositions). Stops early and returns `max + 1` once the distance must exceed `max`.
 */
export function editDistance(a: string, b: string, max = Infinity): number {
  if (a === b) return 0;
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prev2: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, prev2[j - 2] + 1);
      }
      row.push(d);
      if (d < best) best = d;
    }
    if (best > max) return max + 1;
    prev2 = prev;
    prev = row;
  }
  return prev[b.length];
}

/**
 * The candidate closest to `word`, or `undefined` when none is close enough to be a plausible
 * typo: at most 1 edit for words up to 4 characters, 2 up to 8, then 3, and fewer edits than
 * half the longer word (so `x` does not suggest `a`). Case is ignored; on a tie the earlier
 * candidate wins.
 *
 * @example
 * ```ts
 * suggest("helth_check", ["health_check", "startup"]); // "health_check"
 * suggest("zzz", ["health_check"]); // undefined
 * ```
 */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  if (!w) return undefined;
  const limit = w.length <= 4 ? 1 : w.length <= 8 ? 2 : 3;
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    const c = candidate.toLowerCase();
    const d = editDistance(w, c, bestDistance - 1);
    if (d < bestDistance && 2 * d < Math.max(w.length, c.length)) {
      best = candidate;
      bestDistance = d;
      if (d === 0) break;
    }
  }
  return best;
}
