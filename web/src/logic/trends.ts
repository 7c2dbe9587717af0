// Trending rows in words and numbers (issue 16 §5): the distinct accounts
// that used a tag in the window against the tag's usual level, "8× usual",
// or "new" when it has no usual level yet. Counts, never the ranking score.

import type { TrendingTag } from '../bindings/TrendingTag';

/** What a trending row says. */
export type TrendReading = { kind: 'usual'; accounts: number; times: string } | { kind: 'new'; accounts: number } | { kind: 'count'; count: number };

/** Below this many expected accounts a tag has no usual level to compare with. */
const NEW_BELOW_EXPECTED = 0.5;

/** The ratio as shown: whole numbers from 10 up, else one decimal without a trailing ".0". */
function showTimes(ratio: number): string {
  return ratio >= 10 ? String(Math.round(ratio)) : ratio.toFixed(1).replace(/\.0$/, '');
}

/**
 * Reads a trending row. The server's own reading (`new`, `ratio`, the
 * formula in docs/trends.md) wins; a server without it falls back to
 * accounts against `expected`, and one without account figures to the score
 * as a plain count.
 */
export function readTrend(
  row: Pick<TrendingTag, 'score' | 'accounts' | 'expected'> & Partial<Pick<TrendingTag, 'new' | 'ratio'>>,
): TrendReading {
  const accounts = typeof row.accounts === 'number' && Number.isFinite(row.accounts) ? Math.round(row.accounts) : null;
  if (accounts === null) return { kind: 'count', count: Math.round(row.score) };
  if (row.new === true) return { kind: 'new', accounts };
  if (typeof row.ratio === 'number' && Number.isFinite(row.ratio)) return { kind: 'usual', accounts, times: showTimes(row.ratio) };
  const expected = typeof row.expected === 'number' && Number.isFinite(row.expected) ? row.expected : null;
  if (expected === null || expected < NEW_BELOW_EXPECTED) return { kind: 'new', accounts };
  return { kind: 'usual', accounts, times: showTimes(accounts / expected) };
}
