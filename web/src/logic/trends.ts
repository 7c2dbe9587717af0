// Trending rows in words and numbers (issue 16 §5): the distinct accounts
// that used a tag in the window against the tag's usual level, "8× usual",
// or "new" when it has no usual level yet. Counts, never the ranking score.

import type { TrendingTag } from '../bindings/TrendingTag';

/**
 * What a trending row says: the accounts above the tag's usual level
 * (`added`, shown "+120"), and the ratio to it, or "new".
 */
export type TrendReading =
  | { kind: 'usual'; accounts: number; added: number; times: string }
  | { kind: 'new'; accounts: number; added: number }
  | { kind: 'count'; count: number };

/** Below this many expected accounts a tag has no usual level to compare with. */
const NEW_BELOW_EXPECTED = 0.5;

/** The ratio as shown: whole numbers from 10 up, else one decimal without a trailing ".0". */
function showTimes(ratio: number): string {
  return ratio >= 10 ? String(Math.round(ratio)) : ratio.toFixed(1).replace(/\.0$/, '');
}

function finite(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/**
 * Reads a trending row. The server's own reading (`added`, `new`, `ratio`,
 * the formula in docs/trends.md) wins; a server without it falls back to
 * accounts against `expected` (added = accounts − max(expected, 1)), and one
 * without account figures to the score as a plain count.
 */
export function readTrend(
  row: Pick<TrendingTag, 'score' | 'accounts' | 'expected'> & Partial<Pick<TrendingTag, 'new' | 'ratio' | 'added'>>,
): TrendReading {
  const accounts = finite(row.accounts);
  if (accounts === null) return { kind: 'count', count: Math.round(row.score) };
  const shown = Math.round(accounts);
  const expected = finite(row.expected);
  const added = Math.round(finite(row.added) ?? accounts - Math.max(expected ?? 0, 1));
  if (row.new === true) return { kind: 'new', accounts: shown, added };
  const ratio = finite(row.ratio);
  if (ratio !== null) return { kind: 'usual', accounts: shown, added, times: showTimes(ratio) };
  if (expected === null || expected < NEW_BELOW_EXPECTED) return { kind: 'new', accounts: shown, added };
  return { kind: 'usual', accounts: shown, added, times: showTimes(accounts / Math.max(expected, 1)) };
}

/** The accounts added, signed as a change: "+120". */
export function signed(added: number): string {
  return added >= 0 ? `+${added}` : String(added);
}

/** The words a trending row is written in (the language's strings). */
export interface TrendWords {
  accountsUsual(added: string, times: string): string;
  accountsNew(added: string): string;
  postsCount(n: string): string;
}

/** The text of a trending row: "+120 accounts · 9× usual", "+49 accounts · new", or "42 posts" (`count` formats the number). */
export function trendText(reading: TrendReading, words: TrendWords, count: (n: number) => string): string {
  if (reading.kind === 'usual') return words.accountsUsual(signed(reading.added), reading.times);
  if (reading.kind === 'new') return words.accountsNew(signed(reading.added));
  return words.postsCount(count(reading.count));
}
