// ColumnFeed without a DOM or a server: a scripted socket and HTTP answers
// the test resolves by hand, and fake timers for the retries.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from '../api';
import type { ClientMessage } from '../bindings/ClientMessage';
import type { Post } from '../bindings/Post';
import type { TimelineResponse } from '../bindings/TimelineResponse';
import { resumeCursor } from '../logic/cursor';
import { makePost } from '../logic/testPosts';
import type { StreamState } from '../stream';
import { ColumnFeed, PAGE_SIZE, RESUBSCRIBE_MS, SUBSCRIBE_TIMEOUT_MS, type FeedView } from './ColumnFeed';

interface Fetch {
  before: string | null;
  resolve(page: TimelineResponse): void;
  reject(error: unknown): void;
}

function setup(held: Post[] = []) {
  const sent: ClientMessage[] = [];
  const stream = {
    state: 'open' as StreamState,
    send(message: ClientMessage): boolean {
      if (this.state !== 'open') return false;
      sent.push(message);
      return true;
    },
  };
  const fetches: Fetch[] = [];
  const fetchPage = (_q: string, before: string | null, limit: number): Promise<TimelineResponse> => {
    expect(limit).toBe(PAGE_SIZE);
    return new Promise((resolve, reject) => fetches.push({ before, resolve, reject }));
  };
  const events: string[] = [];
  const posts: Array<[string, boolean]> = [];
  let holding = [...held];
  let older: string | null = null;
  const view: FeedView = {
    query: () => '#bts',
    resumePoint: () => ({ newest: holding[0]?.cursor ?? null, held: holding.map((post) => post.cursor) }),
    olderCursor: () => older,
    empty: () => holding.length === 0,
    firstPage: (page, next) => {
      events.push(`first ${page.map((post) => post.id).join(',')}`);
      holding = [...page];
      older = next;
    },
    olderPage: (page, next) => {
      events.push(`older ${page.map((post) => post.id).join(',')}`);
      holding.push(...page);
      older = next;
    },
    backfill: (page) => events.push(`backfill ${page.map((post) => post.id).join(',')}`),
    post: (post, live) => posts.push([post.id, live]),
    changed: () => undefined,
  };
  const feed = new ColumnFeed('c1', view, stream, fetchPage);
  return { feed, sent, stream, fetches, events, posts };
}

/** Lets the promise callbacks run. */
const settle = () => Promise.resolve().then(() => undefined);

describe('ColumnFeed', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('loads the first page, subscribes, goes live, and looks once more when the column is empty', async () => {
    const { feed, sent, fetches, events } = setup();
    feed.start();
    expect(feed.state).toBe('loading');
    fetches[0]!.resolve({ posts: [], next: null });
    await settle();
    expect(events).toEqual(['first ']);
    expect(sent).toEqual([{ type: 'subscribe', column: 'c1~1', q: '#bts' }]);
    expect(feed.state).toBe('connecting');
    feed.handle({ type: 'subscribed', column: 'c1~1' });
    expect(feed.state).toBe('live');
    // A post stored between the empty page and the subscription is fetched again.
    expect(fetches).toHaveLength(2);
    fetches[1]!.resolve({ posts: [makePost('9', 1_000)], next: null });
    await settle();
    expect(events).toEqual(['first ', 'backfill 9']);
  });

  it('resumes a little before the newest post it holds, and the catch-up posts are not live', async () => {
    const held = [makePost('3', 3_000_000), makePost('2', 2_000_000)];
    const { feed, sent, fetches, posts } = setup(held);
    feed.start({ posts: held, next: null });
    expect(fetches).toHaveLength(0);
    const since = resumeCursor(held[0]!.cursor, held.map((post) => post.cursor));
    expect(sent).toEqual([{ type: 'subscribe', column: 'c1~1', q: '#bts', since }]);
    expect(feed.state).toBe('catching_up');
    feed.handle({ type: 'subscribed', column: 'c1~1' });
    expect(feed.state).toBe('catching_up');
    feed.handle({ type: 'post', column: 'c1~1', post: makePost('4', 4_000_000), cursor: '' });
    feed.handle({ type: 'caught_up', column: 'c1~1' });
    expect(feed.state).toBe('live');
    feed.handle({ type: 'post', column: 'c1~1', post: makePost('5', 5_000_000), cursor: '' });
    expect(posts).toEqual([
      ['4', false],
      ['5', true],
    ]);
    // Only the newest post's overlap is the resumed one.
    expect(feed.inResumeOverlap(held[1]!.cursor)).toBe(true);
    expect(feed.inResumeOverlap(makePost('6', 6_000_000).cursor)).toBe(false);
  });

  it('ignores what an earlier generation asked for, and owns only its current subscription', async () => {
    const { feed, sent, fetches, events } = setup();
    feed.start();
    feed.restart();
    expect(sent).toEqual([{ type: 'unsubscribe', column: 'c1~1' }]);
    fetches[0]!.resolve({ posts: [makePost('1', 1_000)], next: null });
    fetches[1]!.resolve({ posts: [makePost('2', 2_000)], next: null });
    await settle();
    expect(events).toEqual(['first 2']);
    expect(feed.owns('c1~2')).toBe(true);
    expect(feed.owns('c1~1')).toBe(false);
    expect(feed.ownsAny('c1~1')).toBe(true);
    expect(feed.ownsAny('c10~1')).toBe(false);
  });

  it('waits out a 429 as the server asks, retries other failures with backoff, and never a bad query', async () => {
    const { feed, fetches } = setup();
    feed.start();
    fetches[0]!.reject(new ApiError(429, { error: 'slow down', code: 'rate_limited', position: null, field: null }, 7));
    await settle();
    expect(feed.state).toBe('rate_limited');
    vi.advanceTimersByTime(6_999);
    expect(fetches).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(fetches).toHaveLength(2);

    fetches[1]!.reject(new ApiError(503, { error: 'busy', code: 'busy', position: null, field: null }, null));
    await settle();
    expect(feed.state).toBe('failed');
    vi.advanceTimersByTime(60_000);
    expect(fetches).toHaveLength(3);

    fetches[2]!.reject(new ApiError(400, { error: 'unexpected )', code: 'bad_query', position: 4, field: null }, null));
    await settle();
    expect(feed.state).toBe('failed');
    vi.advanceTimersByTime(10 * 60_000);
    expect(fetches).toHaveLength(3);
  });

  it('fails a subscription the server does not answer, and subscribes again', async () => {
    const { feed, sent } = setup();
    feed.start({ posts: [], next: null });
    expect(sent).toHaveLength(1);
    vi.advanceTimersByTime(SUBSCRIBE_TIMEOUT_MS);
    expect(feed.state).toBe('failed');
    // A late answer does not hide the failure: the retry decides.
    feed.handle({ type: 'subscribed', column: 'c1~1' });
    expect(feed.state).toBe('failed');
    vi.advanceTimersByTime(RESUBSCRIBE_MS);
    expect(sent).toHaveLength(2);
    expect(feed.state).toBe('connecting');
    feed.handle({ type: 'subscribed', column: 'c1~1' });
    expect(feed.state).toBe('live');
  });

  it('answers resync with a fresh first page and a new subscription since the newest post', async () => {
    const held = [makePost('3', 3_000_000)];
    const { feed, sent, fetches, events } = setup(held);
    feed.start({ posts: held, next: null });
    feed.handle({ type: 'subscribed', column: 'c1~1' });
    feed.handle({ type: 'caught_up', column: 'c1~1' });
    feed.handle({ type: 'resync', column: 'c1~1' });
    expect(feed.state).toBe('catching_up');
    const newer = [makePost('5', 5_000_000), makePost('4', 4_000_000)];
    fetches[0]!.resolve({ posts: newer, next: 'older' });
    await settle();
    expect(events).toEqual(['first 3', 'first 5,4']);
    expect(sent[1]).toEqual({ type: 'subscribe', column: 'c1~2', q: '#bts', since: resumeCursor(newer[0]!.cursor, newer.map((post) => post.cursor)) });
  });

  it('waits for the stream when it is down, and subscribes when asked again', () => {
    const { feed, sent, stream } = setup();
    stream.state = 'offline';
    feed.start({ posts: [], next: null });
    expect(feed.state).toBe('offline');
    expect(sent).toHaveLength(0);
    stream.state = 'open';
    feed.subscribe();
    expect(sent).toHaveLength(1);
    feed.offline('the connection dropped');
    expect(feed.state).toBe('offline');
    expect(feed.detail).toBe('the connection dropped');
  });

  it('loads older pages one at a time until the end', async () => {
    const { feed, fetches, events } = setup();
    feed.start();
    fetches[0]!.resolve({ posts: [makePost('9', 9_000)], next: 'p2' });
    await settle();
    feed.loadOlder();
    feed.loadOlder();
    expect(feed.loadingOlder).toBe(true);
    expect(fetches.map((fetch) => fetch.before)).toEqual([null, 'p2']);
    fetches[1]!.resolve({ posts: [makePost('8', 8_000)], next: null });
    await settle();
    expect(feed.loadingOlder).toBe(false);
    feed.loadOlder();
    expect(fetches).toHaveLength(2);
    expect(events).toEqual(['first 9', 'older 8']);
  });

  it('leaves its current subscription when it stops, and nothing it started answers after', async () => {
    const { feed, sent, fetches, events } = setup();
    feed.start();
    fetches[0]!.resolve({ posts: [makePost('9', 9_000)], next: 'p2' });
    await settle();
    feed.handle({ type: 'subscribed', column: 'c1~1' });
    feed.loadOlder();
    feed.stop();
    // The subscription the server holds, not the id of a generation that never subscribed.
    expect(sent.at(-1)).toEqual({ type: 'unsubscribe', column: 'c1~1' });
    fetches[1]!.resolve({ posts: [makePost('8', 8_000)], next: null });
    await settle();
    expect(events).toEqual(['first 9']);
    expect(feed.owns('c1~1')).toBe(false);
  });
});
