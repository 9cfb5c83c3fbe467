/**
 * "Did you mean" for commands, flags, JSON fields and config keys.
 *
 * @module
 */

/** Optimal string alignment distance: edits, with a swap of two neighbours counting as one. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array(rows * cols).fill(0);
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(
        d[(i - 1) * cols + j]! + 1,
        d[i * cols + j - 1]! + 1,
        d[(i - 1) * cols + j - 1]! + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, d[(i - 2) * cols + j - 2]! + 1);
      }
      d[i * cols + j] = best;
    }
  }
  return d[rows * cols - 1]!;
}

/** Other words for the same thing: what a user may type (`cmd`) → what we call it (`command`). */
export type Aliases = Readonly<Record<string, string>>;

/** Case, dashes and underscores do not matter when matching an alias: `Max-Attempts`, `max_attempts`. */
function aliasKey(word: string): string {
  return word.toLowerCase().replace(/[-_]/g, "");
}

/**
 * The candidate `input` most likely stands for: a known alias first (by meaning, so `cmd` gives
 * `command` although `cwd` is one edit away), else the closest by edit distance if it is close
 * enough to be a likely typo (at most a third of the word's length, and at least one edit
 * allowed), else a candidate that `input` begins.
 */
export function closest(
  input: string,
  candidates: Iterable<string>,
  aliases: Aliases = {},
): string | undefined {
  const key = aliasKey(input);
  for (const [alias, meaning] of Object.entries(aliases)) {
    if (aliasKey(alias) === key) return meaning;
  }
  const lower = input.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best === undefined) return undefined;
  const limit = Math.max(1, Math.floor(Math.max(input.length, best.length) / 3));
  if (bestDistance <= limit) return best;
  if (lower.length >= 2) {
    for (const candidate of candidates) if (candidate.startsWith(lower)) return candidate;
  }
  return undefined;
}

/** `; did you mean "x"?` or an empty string. */
export function didYouMean(
  input: string,
  candidates: Iterable<string>,
  aliases: Aliases = {},
): string {
  const match = closest(input, candidates, aliases);
  return match === undefined ? "" : `did you mean "${match}"?`;
}
