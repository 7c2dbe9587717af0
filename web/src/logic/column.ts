// The column model: history pages over HTTP and live posts over the WebSocket
// merged into one list, deduplicated by id and ordered by cursor (newest
// first), plus the held-back buffer of live posts the reader has not asked to
// see yet. No DOM and no I/O here, so it is tested as data.

import type { Post } from '../bindings/Post';
import { compareCursors, newerCursor } from './cursor';

/** The posts of one column. `shown` and `pending` are newest first. */
export interface ColumnData {
  /** Posts on screen. */
  shown: Post[];
  /** Live posts held back behind the "N new posts" control. */
  pending: Post[];
  /** Ids of every post in `shown` or `pending`. */
  ids: Set<string>;
  /** Cursor for the next (older) history page; null when history is exhausted or not loaded. */
  next: string | null;
  /** Whether older history remains. */
  hasMore: boolean;
  /** The newest cursor seen, shown or pending: where a resumed subscription starts. */
  newest: string | null;
}

/** An empty column. */
export function emptyColumn(): ColumnData {
  return { shown: [], pending: [], ids: new Set(), next: null, hasMore: true, newest: null };
}

/** Inserts a post into a newest-first list at its cursor's place (usually the front). */
function insertByCursor(list: Post[], post: Post): void {
  // Live posts are nearly always the newest, so check the front first.
  if (list.length === 0 || compareCursors(post.cursor, list[0].cursor) >= 0) {
    list.unshift(post);
    return;
  }
  let low = 0;
  let high = list.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (compareCursors(list[mid].cursor, post.cursor) > 0) low = mid + 1;
    else high = mid;
  }
  list.splice(low, 0, post);
}

/**
 * Adds the first page of history (or a reload after `resync`): replaces the
 * shown posts and keeps any pending live post that the page does not carry.
 */
export function loadFirstPage(column: ColumnData, posts: Post[], next: string | null): ColumnData {
  const fresh = emptyColumn();
  for (const post of posts) {
    if (fresh.ids.has(post.id)) continue;
    fresh.ids.add(post.id);
    insertByCursor(fresh.shown, post);
  }
  for (const post of column.pending) {
    if (fresh.ids.has(post.id)) continue;
    fresh.ids.add(post.id);
    insertByCursor(fresh.pending, post);
  }
  fresh.next = next;
  fresh.hasMore = next !== null;
  fresh.newest = fresh.shown.length > 0 ? fresh.shown[0].cursor : null;
  if (fresh.pending.length > 0) fresh.newest = newerCursor(fresh.newest, fresh.pending[0].cursor);
  return fresh;
}

/** Appends an older page of history at the bottom, skipping posts already present. */
export function appendOlder(column: ColumnData, posts: Post[], next: string | null): ColumnData {
  for (const post of posts) {
    if (column.ids.has(post.id)) continue;
    column.ids.add(post.id);
    insertByCursor(column.shown, post);
    column.newest = newerCursor(column.newest, post.cursor);
  }
  column.next = next;
  column.hasMore = next !== null;
  return column;
}

/**
 * Adds a live post. When `hold` is true (the reader scrolled down or hovers
 * the column) it waits in `pending`; otherwise it goes straight on screen.
 * Returns false for a duplicate.
 */
export function addLive(column: ColumnData, post: Post, hold: boolean): boolean {
  if (column.ids.has(post.id)) return false;
  column.ids.add(post.id);
  insertByCursor(hold ? column.pending : column.shown, post);
  column.newest = newerCursor(column.newest, post.cursor);
  return true;
}

/** Moves every held-back post on screen (the reader pressed "N new posts" or came back to the top). */
export function flushPending(column: ColumnData): number {
  const n = column.pending.length;
  if (n === 0) return 0;
  // Pending posts are newer than shown ones except after odd catch-ups; merge by cursor to stay ordered.
  if (column.shown.length === 0 || compareCursors(column.pending[column.pending.length - 1].cursor, column.shown[0].cursor) > 0) {
    column.shown = column.pending.concat(column.shown);
  } else {
    for (const post of column.pending) insertByCursor(column.shown, post);
  }
  column.pending = [];
  return n;
}

/** Removes a deleted post, and any retweet of it, from the column. Returns whether anything was removed. */
export function removePost(column: ColumnData, id: string): boolean {
  const gone = (post: Post) => post.id === id || post.retweeted?.id === id;
  const before = column.shown.length + column.pending.length;
  if (!column.ids.has(id) && !column.shown.some(gone) && !column.pending.some(gone)) return false;
  column.shown = column.shown.filter((post) => !gone(post));
  column.pending = column.pending.filter((post) => !gone(post));
  column.ids.delete(id);
  return column.shown.length + column.pending.length !== before;
}

/** Applies live counts to a post and to retweets and quotes that show it. Returns whether anything changed. */
export function updateCounts(column: ColumnData, id: string, retweetCount: number, likeCount: number): boolean {
  let changed = false;
  const apply = (post: Post | null | undefined) => {
    if (post && post.id === id && (post.retweet_count !== retweetCount || post.like_count !== likeCount)) {
      post.retweet_count = retweetCount;
      post.like_count = likeCount;
      changed = true;
    }
  };
  for (const list of [column.shown, column.pending]) {
    for (const post of list) {
      apply(post);
      apply(post.retweeted);
      apply(post.quoted);
    }
  }
  return changed;
}

/** Drops the oldest shown posts beyond `max` so that a column left open for days stays bounded. */
export function trimOldest(column: ColumnData, max: number): number {
  const excess = column.shown.length - max;
  if (excess <= 0) return 0;
  const dropped = column.shown.splice(max, excess);
  for (const post of dropped) column.ids.delete(post.id);
  column.next = column.shown[column.shown.length - 1].cursor;
  column.hasMore = true;
  return excess;
}
