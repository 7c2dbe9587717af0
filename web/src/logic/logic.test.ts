// Unit tests of the client's pure logic, as data.

import { describe, expect, it } from 'vitest';
import { compareCursors, makeCursor } from './cursor';
import { addLive, appendOlder, emptyColumn, flushPending, loadFirstPage, removePost, trimOldest, updateCounts } from './column';
import { makePost, makeRetweet } from './testPosts';
import { effectiveQuery } from './query';
import { compileMutes, isMuted } from './mute';
import { createSlowSampler } from './slow';
import { toDisplayItems } from './collapse';
import { relativeTime } from './time';
import { segmentText, safeUrl } from './linkify';
import { backoffDelay } from './backoff';

const ids = (posts: { id: string }[]) => posts.map((p) => p.id);

describe('cursor order', () => {
  it('orders by time then numeric id, unlike plain string comparison', () => {
    const cases: [number, string][] = [[-5, '1'], [1000, '99'], [1000, '100'], [1001, '1'], [1_700_000_000_000, '42'], [1_700_000_000_063, '7']];
    const cursors = cases.map(([ms, id]) => makeCursor(ms, id));
    for (let i = 0; i < cursors.length; i++) {
      for (let j = 0; j < cursors.length; j++) {
        expect(Math.sign(compareCursors(cursors[i], cursors[j]))).toBe(Math.sign(i - j));
      }
    }
  });
});

describe('column model', () => {
  it('merges history and live posts, deduplicated by id and ordered by cursor', () => {
    let column = emptyColumn();
    column = loadFirstPage(column, [makePost('5', 5000), makePost('4', 4000), makePost('3', 3000)], 'c3');
    expect(addLive(column, makePost('6', 6000), false)).toBe(true);
    expect(addLive(column, makePost('5', 5000), false)).toBe(false);
    // A catch-up post older than the newest lands in its place.
    expect(addLive(column, makePost('45', 4500), false)).toBe(true);
    appendOlder(column, [makePost('3', 3000), makePost('2', 2000), makePost('1', 1000)], null);
    expect(ids(column.shown)).toEqual(['6', '5', '45', '4', '3', '2', '1']);
    expect(column.hasMore).toBe(false);
    expect(column.newest).toBe(makePost('6', 6000).cursor);
  });

  it('holds live posts back while the reader is away from the top, and flushes them in order', () => {
    const column = loadFirstPage(emptyColumn(), [makePost('2', 2000), makePost('1', 1000)], null);
    addLive(column, makePost('3', 3000), true);
    addLive(column, makePost('4', 4000), true);
    expect(ids(column.shown)).toEqual(['2', '1']);
    expect(column.pending.length).toBe(2);
    expect(column.newest).toBe(makePost('4', 4000).cursor);
    expect(addLive(column, makePost('3', 3000), true)).toBe(false);
    expect(flushPending(column)).toBe(2);
    expect(ids(column.shown)).toEqual(['4', '3', '2', '1']);
    expect(column.pending).toEqual([]);
  });

  it('keeps pending posts across a reload from history (resync)', () => {
    const column = loadFirstPage(emptyColumn(), [makePost('1', 1000)], null);
    addLive(column, makePost('9', 9000), true);
    const reloaded = loadFirstPage(column, [makePost('8', 8000), makePost('7', 7000)], 'x');
    expect(ids(reloaded.shown)).toEqual(['8', '7']);
    expect(ids(reloaded.pending)).toEqual(['9']);
    expect(reloaded.newest).toBe(makePost('9', 9000).cursor);
  });

  it('removes deleted posts and retweets of them, and updates counts everywhere', () => {
    const original = makePost('1', 1000);
    const column = loadFirstPage(emptyColumn(), [makeRetweet('3', 3000, 'fan', original), makePost('2', 2000), original], null);
    expect(updateCounts(column, '1', 10, 20)).toBe(true);
    expect(column.shown[0].retweeted?.retweet_count).toBe(10);
    expect(column.shown[2].like_count).toBe(20);
    expect(updateCounts(column, '1', 10, 20)).toBe(false);
    expect(removePost(column, '1')).toBe(true);
    expect(ids(column.shown)).toEqual(['2']);
    expect(removePost(column, 'nope')).toBe(false);
  });

  it('trims the oldest posts and can load them again', () => {
    const column = loadFirstPage(emptyColumn(), [3, 2, 1].map((n) => makePost(String(n), n * 1000)), null);
    expect(trimOldest(column, 2)).toBe(1);
    expect(ids(column.shown)).toEqual(['3', '2']);
    expect(column.next).toBe(makePost('2', 2000).cursor);
    expect(column.hasMore).toBe(true);
  });
});

describe('filters as query', () => {
  const table: [string, Parameters<typeof effectiveQuery>[1], string][] = [
    ['BTS', undefined, 'BTS'],
    ['BTS', { retweets: false }, 'BTS -filter:retweets'],
    ['BTS', { retweets: true, media: true }, 'BTS filter:media'],
    ['#bts', { lang: 'KO' }, '#bts lang:ko'],
    ['BTS', { lang: 'k o' }, 'BTS'],
    ['BTS', { min_retweets: 5, min_faves: 10.7 }, 'BTS min_retweets:5 min_faves:10'],
    ['BTS', { exclude: ['spoiler', ' -promo ', '', 'two words'] }, 'BTS -spoiler -promo -"two words"'],
  ];
  it.each(table)('%s + %j → %s', (base, filters, expected) => {
    expect(effectiveQuery(base, filters)).toBe(expected);
  });
});

describe('mutes', () => {
  const mutes = compileMutes(['spoiler', '/give\\s*away/', '@spambot', '방탄', '/(unclosed/']);
  const table: [string, Partial<Parameters<typeof makePost>[2]>, boolean][] = [
    ['no spoilers here', {}, false],
    ['big SPOILER ahead', {}, true],
    ['#spoiler alert', {}, true],
    ['spoilers', {}, false],
    ['free Give Away now', {}, true],
    ['hello', { author: { id: 'x', handle: 'SpamBot', name: 's', avatar_url: null } }, true],
    ['hi @spambot', { mentions: ['spambot'] }, true],
    ['방탄이 최고', {}, true],
    ['just text', {}, false],
  ];
  it.each(table)('%s', (text, overrides, muted) => {
    expect(isMuted(mutes, makePost('1', 0, { text, ...overrides }))).toBe(muted);
  });
  it('looks into the original of a retweet', () => {
    const original = makePost('1', 0, { text: 'a spoiler' });
    expect(isMuted(mutes, makeRetweet('2', 1, 'fan', original))).toBe(true);
  });
});

describe('slow mode', () => {
  it('keeps at most N a minute, spread evenly over a fast stream', () => {
    const sampler = createSlowSampler(10);
    const keptAt: number[] = [];
    // 600 posts over 3 minutes: 200 a minute.
    for (let i = 0; i < 600; i++) {
      const now = i * 300;
      if (sampler.accept(now)) keptAt.push(now);
    }
    for (let start = 0; start < 180_000; start += 10_000) {
      expect(keptAt.filter((t) => t > start - 60_000 && t <= start).length).toBeLessThanOrEqual(10);
    }
    const lastMinute = keptAt.filter((t) => t >= 120_000);
    expect(lastMinute.length).toBeGreaterThanOrEqual(8);
    const gaps = lastMinute.slice(1).map((t, i) => t - lastMinute[i]);
    expect(Math.max(...gaps)).toBeLessThan(12_000);
  });
  it('keeps everything from a slow stream', () => {
    const sampler = createSlowSampler(10);
    let kept = 0;
    for (let i = 0; i < 20; i++) if (sampler.accept(i * 10_000)) kept++;
    expect(kept).toBe(20);
  });
});

describe('retweet collapsing', () => {
  it('shows an original once with its retweeters', () => {
    const original = makePost('1', 1000);
    const posts = [makeRetweet('4', 4000, 'c', original), makePost('3', 3000), makeRetweet('2', 2000, 'b', original), makeRetweet('2b', 2500, 'c', original), original];
    const items = toDisplayItems(posts, true);
    expect(items.map((i) => i.key)).toEqual(['1', '3']);
    expect(items[0].retweeters.map((a) => a.handle)).toEqual(['c', 'b']);
    expect(toDisplayItems(posts, false).length).toBe(5);
    expect(toDisplayItems(posts, true, (p) => p.id === '3').map((i) => i.key)).toEqual(['1']);
  });
});

describe('relative time', () => {
  const now = Date.UTC(2024, 5, 13, 12, 0, 0);
  const table: [number, string, string][] = [
    [0, 'now', '방금'],
    [30_000, '30s', '30초'],
    [5 * 60_000, '5m', '5분'],
    [3 * 3_600_000, '3h', '3시간'],
    [2 * 86_400_000, '2d', '2일'],
    [30 * 86_400_000, 'May 14, 2024', '2024년 5월 14일'],
  ];
  it.each(table)('%i ms ago', (ago, en, ko) => {
    expect(relativeTime(now - ago, now, 'en')).toBe(en);
    expect(relativeTime(now - ago, now, 'ko')).toBe(ko);
  });
});

describe('text segments', () => {
  it('finds hashtags, mentions, cashtags and links', () => {
    const segments = segmentText('Hi @rm_bts! #BTS #방탄소년단 $HYBE see https://example.com/a?b=1. ok');
    expect(segments).toEqual([
      { kind: 'text', text: 'Hi ' },
      { kind: 'mention', text: '@rm_bts', value: 'rm_bts' },
      { kind: 'text', text: '! ' },
      { kind: 'hashtag', text: '#BTS', value: 'BTS' },
      { kind: 'text', text: ' ' },
      { kind: 'hashtag', text: '#방탄소년단', value: '방탄소년단' },
      { kind: 'text', text: ' ' },
      { kind: 'cashtag', text: '$HYBE', value: 'HYBE' },
      { kind: 'text', text: ' see ' },
      { kind: 'url', text: 'https://example.com/a?b=1', value: 'https://example.com/a?b=1' },
      { kind: 'text', text: '. ok' },
    ]);
  });
  it('keeps markup as text and never links unsafe schemes', () => {
    const segments = segmentText('<img src=x onerror=alert(1)> javascript:alert(1) #1 a#b');
    expect(segments).toEqual([{ kind: 'text', text: '<img src=x onerror=alert(1)> javascript:alert(1) #1 a#b' }]);
    expect(safeUrl('javascript:alert(1)')).toBeNull();
    expect(safeUrl('https://x.test/')).toBe('https://x.test/');
  });
  it('prefers the entities the server extracted', () => {
    const segments = segmentText('#BTS #other', { hashtags: ['bts'], mentions: [], cashtags: [], urls: [] });
    expect(segments.filter((s) => s.kind === 'hashtag').map((s) => s.text)).toEqual(['#BTS']);
  });
});

describe('backoff', () => {
  it('grows exponentially within jitter bounds and is capped', () => {
    for (let attempt = 0; attempt < 20; attempt++) {
      const ceiling = Math.min(30_000, 500 * 2 ** attempt);
      expect(backoffDelay(attempt, 0)).toBe(ceiling / 2);
      expect(backoffDelay(attempt, 0.999)).toBeLessThanOrEqual(ceiling);
    }
    expect(backoffDelay(3, 0.5)).toBeGreaterThan(backoffDelay(2, 0.5));
  });
});

import { cursorTime, inOverlap, makeCursor as cursorAt, RESUME_OVERLAP_MS, RESUME_OVERLAP_POSTS, resumeCursor } from './cursor';

describe('resuming a column', () => {
  it('reads the time of a cursor, and resumes RESUME_OVERLAP_MS before the newest post', () => {
    const newest = cursorAt(1_764_633_600_000, '1950000000000000109');
    expect(cursorTime(newest)).toBe(1_764_633_600_000);
    const resume = resumeCursor(newest);
    expect(cursorTime(resume)).toBe(1_764_633_600_000 - RESUME_OVERLAP_MS);
    // Older than the newest post, and than a post 9 s before it (a lagging partition's).
    expect(compareCursors(resume, cursorAt(1_764_633_600_000 - 9_000, '1950000000000000002'))).toBeLessThan(0);
    expect(cursorTime(cursorAt(-5, 'x'))).toBe(-5);
    expect(cursorTime('not a cursor!')).toBeNull();
    expect(resumeCursor('AA')).toBe('AA');
  });

  it('tells the posts of the overlap asked for again from the ones after it', () => {
    const resumedFrom = cursorAt(1_000_000, 'p9');
    expect(inOverlap(cursorAt(999_000, 'p1'), resumedFrom)).toBe(true);
    expect(inOverlap(resumedFrom, resumedFrom)).toBe(true);
    expect(inOverlap(cursorAt(1_000_001, 'p10'), resumedFrom)).toBe(false);
    expect(inOverlap(cursorAt(999_000, 'p1'), null)).toBe(false);
  });

  it('goes back at most RESUME_OVERLAP_POSTS posts in a busy column', () => {
    const newestMs = 1_764_633_600_000;
    // 200 posts in the last 2 s: the 50th newest is 0.5 s back, well inside the 10 s.
    const busy = Array.from({ length: 200 }, (_, n) => cursorAt(newestMs - n * 10, `p${n}`));
    const resume = resumeCursor(busy[0], [...busy].reverse());
    expect(resume).toBe(busy[RESUME_OVERLAP_POSTS - 1]);
    // A quiet column: 3 posts a minute apart; the 10 s wins.
    const quiet = [0, 60_000, 120_000].map((back, n) => cursorAt(newestMs - back, `q${n}`));
    expect(cursorTime(resumeCursor(quiet[0], quiet))).toBe(newestMs - RESUME_OVERLAP_MS);
  });
});
