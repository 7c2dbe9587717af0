// Trending rows in words and numbers (issue 16 §5): the distinct accounts
// that used a tag in the window against the tag's usual level, "8× usual",
// or "new" when it has no usual level yet. Counts, never the ranking score.

import type { TrendingTag } from '../bindings/TrendingTag';

/** What a trending row says. */
export type TrendReading = { kind: 'usual'; accounts: number; times: string } | { kind: 'new'; accounts: number } | { kind: 'count'; count: number };

/** Below this many expected accounts a tag has no usual level to compare with. */
const NEW_BELOW_EXPECTED = 0.5;

/** Reads a trending row; a server without account figures falls back to the score as a plain count. */
export function readTrend(row: Pick<TrendingTag, 'score' | 'accounts' | 'expected'>): TrendReading {
  const accounts = typeof row.accounts === 'number' && Number.isFinite(row.accounts) ? Math.round(row.accounts) : null;
  const expected = typeof row.expected === 'number' && Number.isFinite(row.expected) ? row.expected : null;
  if (accounts === null) return { kind: 'count', count: Math.round(row.score) };
  if (expected === null || expected < NEW_BELOW_EXPECTED) return { kind: 'new', accounts };
  const ratio = accounts / expected;
  const times = ratio >= 10 ? String(Math.round(ratio)) : ratio.toFixed(1).replace(/\.0$/, '');
  return { kind: 'usual', accounts, times };
}
