// Trending rows in words and numbers (issue 16 §5), checked against the
// examples of docs/trends.md, "Reading a trending row".

import { describe, expect, it } from 'vitest';
import { en, ko } from '../i18n';
import { readTrend, trendText, type TrendReading } from './trends';

/** The text a trending row shows (TrendsColumn writes `trendText` with `formatCount`). */
function shown(reading: TrendReading, strings: typeof en): string {
  return trendText(reading, strings, String);
}

describe('trending rows', () => {
  it('read as docs/trends.md says: "+120 accounts · 9× usual" for 135 against 15, "+49 accounts · new" for 50 against none', () => {
    // The server's reading (docs/trends.md: added, ratio, new).
    const busy = readTrend({ score: 120, accounts: 135, expected: 15, added: 120, ratio: 9, new: false });
    expect(shown(busy, en)).toBe('+120 accounts · 9× usual');
    expect(shown(busy, ko)).toBe('계정 +120개 · 평소의 9배');
    const fresh = readTrend({ score: 49, accounts: 50, expected: 0, added: 49, ratio: null, new: true });
    expect(shown(fresh, en)).toBe('+49 accounts · new');
    expect(shown(fresh, ko)).toBe('계정 +49개 · 새로 등장');
  });

  it('reads a server without the reading the same way, from accounts and expected', () => {
    expect(shown(readTrend({ score: 120, accounts: 135, expected: 15 }), en)).toBe('+120 accounts · 9× usual');
    expect(shown(readTrend({ score: 49, accounts: 50, expected: 0 }), en)).toBe('+49 accounts · new');
    expect(readTrend({ score: 1, accounts: 30, expected: 12 })).toEqual({ kind: 'usual', accounts: 30, added: 18, times: '2.5' });
    expect(readTrend({ score: 1, accounts: 200, expected: 10 })).toEqual({ kind: 'usual', accounts: 200, added: 190, times: '20' });
  });

  it('never shows the ranking score as a multiplier', () => {
    const reading = readTrend({ score: 3006756, accounts: 120, expected: 15 });
    expect(shown(reading, en)).toBe('+105 accounts · 8× usual');
    expect(shown(reading, en)).not.toContain('3006756');
    // A server with no account figures: the score as a plain count of posts.
    expect(shown(readTrend({ score: 42.4, accounts: Number.NaN, expected: 0 }), en)).toBe('42 posts');
  });
});
