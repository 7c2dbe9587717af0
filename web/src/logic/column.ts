// The column model: history pages over HTTP and live posts over the WebSocket
// merged into one list, deduplicated by id and ordered by cursor (newest
// first), plus the held-back buffer of live posts the reader has not asked to
// see yet. Both are capped; what falls off comes back from the server as an
// older page. An index from post id to the posts that show it makes `counts`
// and `delete` frames cost nothing for the many columns that do not hold the
// post. No DOM and no I/O here, so it is tested as data.

import type { Post } from '../bindings/Post';
import { compareCursors, newerCursor } from './cursor';

/** Held-back live posts kept at most; beyond it the oldest held ones are dropped (and reloaded on show). */
export const MAX_PENDING = 400;

/** The posts of one column. `shown` and `pending` are newest first. */
export interface ColumnData {
  /** Posts on screen. */
  shown: Post[];
  /** Live posts held back behind the "N new posts" control. */
  pending: Post[];
  /** Held-back posts dropped for the cap: shown pending posts then start a fresh list. */
  pendingDropped: number;
  /** Ids of every post in `shown` or `pending`. */
  ids: Set<string>;
  /** Post id → the posts in the column that show it (itself, retweets of it, quotes of it). */
  refs: Map<string, Post[]>;
  /** Cursor for the next (older) history page; null when history is exhausted or not loaded. */
  next: string | null;
  /** Whether older history remains. */
  hasMore: boolean;
  /** The newest cursor seen, shown or pending: where a resumed subscription starts. */
  newest: string | null;
}

/** An empty column. */
export function emptyColumn(): ColumnData {
  return { shown: [], pending: [], pendingDropped: 0, ids: new Set(), refs: new Map(), next: null, hasMore: true, newest: null };
}

function addRef(column: ColumnData, id: string | undefined, post: Post): void {
  if (!id) return;
  const list = column.refs.get(id);
  if (list) {
    if (!list.includes(post)) list.push(post);
  } else column.refs.set(id, [post]);
}

function dropRef(column: ColumnData, id: string | undefined, post: Post): void {
  if (!id) return;
  const list = column.refs.get(id);
  if (!list) return;
  const at = list.indexOf(post);
  if (at >= 0) list.splice(at, 1);
  if (list.length === 0) column.refs.delete(id);
}

function index(column: ColumnData, post: Post): void {
  column.ids.add(post.id);
  addRef(column, post.id, post);
  addRef(column, post.retweeted?.id, post);
  addRef(column, post.quoted?.id, post);
}

function unindex(column: ColumnData, post: Post): void {
  column.ids.delete(post.id);
  dropRef(column, post.id, post);
  dropRef(column, post.retweeted?.id, post);
  dropRef(column, post.quoted?.id, post);
}

/** Inserts a post into a newest-first list at its cursor's place (usually the front); returns where. */
function insertByCursor(list: Post[], post: Post): number {
  // Live posts are nearly always the newest, so check the front first.
  if (list.length === 0 || compareCursors(post.cursor, list[0].cursor) >= 0) {
    list.unshift(post);
    return 0;
  }
  let low = 0;
  let high = list.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (compareCursors(list[mid].cursor, post.cursor) > 0) low = mid + 1;
    else high = mid;
  }
  list.splice(low, 0, post);
  return low;
}

/**
 * Adds the first page of history (or a reload after `resync`): replaces the
 * shown posts and keeps any pending live post that the page does not carry.
 */
export function loadFirstPage(column: ColumnData, posts: Post[], next: string | null): ColumnData {
  const fresh = emptyColumn();
  for (const post of posts) {
    if (fresh.ids.has(post.id)) continue;
    index(fresh, post);
    insertByCursor(fresh.shown, post);
  }
  for (const post of column.pending) {
    if (fresh.ids.has(post.id)) continue;
    index(fresh, post);
    insertByCursor(fresh.pending, post);
  }
  fresh.next = next;
  fresh.hasMore = next !== null;
  fresh.newest = fresh.shown.length > 0 ? fresh.shown[0].cursor : null;
  if (fresh.pending.length > 0) fresh.newest = newerCursor(fresh.newest, fresh.pending[0].cursor);
  return fresh;
}

/**
 * Appends an older page of history at the bottom, skipping posts already
 * present. Returns the posts added (newest first) and whether they all went
 * below the last one shown (else the order changed further up).
 */
export function appendOlder(column: ColumnData, posts: Post[], next: string | null): { added: Post[]; atEnd: boolean } {
  const added: Post[] = [];
  let atEnd = true;
  for (const post of posts) {
    if (column.ids.has(post.id)) continue;
    index(column, post);
    const at = insertByCursor(column.shown, post);
    if (at !== column.shown.length - 1) atEnd = false;
    added.push(post);
    column.newest = newerCursor(column.newest, post.cursor);
  }
  column.next = next;
  column.hasMore = next !== null;
  return { added, atEnd };
}

/**
 * Adds a live post. When `hold` is true (the reader scrolled down or hovers
 * the column) it waits in `pending` (at most MAX_PENDING; older held posts
 * make room); otherwise it goes straight on screen. Returns where it went in
 * its list (0 = on top), or -1 for a duplicate.
 */
export function addLiveAt(column: ColumnData, post: Post, hold: boolean): number {
  if (column.ids.has(post.id)) return -1;
  index(column, post);
  const at = insertByCursor(hold ? column.pending : column.shown, post);
  column.newest = newerCursor(column.newest, post.cursor);
  if (hold && column.pending.length > MAX_PENDING) {
    const dropped = column.pending.pop();
    if (dropped) unindex(column, dropped);
    column.pendingDropped++;
  }
  return at;
}

/** Adds a live post (see `addLiveAt`); false for a duplicate. */
export function addLive(column: ColumnData, post: Post, hold: boolean): boolean {
  return addLiveAt(column, post, hold) >= 0;
}

/** How many new posts wait, counting the ones dropped for the cap. */
export function pendingCount(column: ColumnData): number {
  return column.pending.length + column.pendingDropped;
}

/**
 * Moves every held-back post on screen (the reader pressed "N new posts" or
 * came back to the top). Returns the posts that went on top (newest first)
 * when they simply stack above the shown ones, or null when the shown list
 * was rebuilt (out-of-order posts, or a gap left by the pending cap: then the
 * shown list starts over from the pending posts and older ones reload).
 */
export function flushPendingOnTop(column: ColumnData): Post[] | null {
  const moved = column.pending;
  if (moved.length === 0) return [];
  column.pending = [];
  if (column.pendingDropped > 0) {
    for (const post of column.shown) unindex(column, post);
    column.shown = moved;
    column.pendingDropped = 0;
    column.next = moved[moved.length - 1].cursor;
    column.hasMore = true;
    return null;
  }
  if (column.shown.length === 0 || compareCursors(moved[moved.length - 1].cursor, column.shown[0].cursor) > 0) {
    column.shown = moved.concat(column.shown);
    return moved;
  }
  for (const post of moved) insertByCursor(column.shown, post);
  return null;
}

/** Moves every held-back post on screen; returns how many. */
export function flushPending(column: ColumnData): number {
  const n = column.pending.length;
  flushPendingOnTop(column);
  return n;
}

/** Removes a deleted post, and any retweet of it, from the column. Returns whether anything was removed. */
export function removePost(column: ColumnData, id: string): boolean {
  const holders = column.refs.get(id);
  if (!holders) return false;
  const gone = new Set(holders.filter((post) => post.id === id || post.retweeted?.id === id));
  if (gone.size === 0) return false;
  for (const post of gone) unindex(column, post);
  column.shown = column.shown.filter((post) => !gone.has(post));
  column.pending = column.pending.filter((post) => !gone.has(post));
  return true;
}

/** Applies live counts; returns whether anything changed. */
export function updateCounts(column: ColumnData, id: string, retweetCount: number, likeCount: number): boolean {
  const holders = column.refs.get(id);
  if (!holders) return false;
  let changed = false;
  const apply = (post: Post | null | undefined) => {
    if (post && post.id === id && (post.retweet_count !== retweetCount || post.like_count !== likeCount)) {
      post.retweet_count = retweetCount;
      post.like_count = likeCount;
      changed = true;
    }
  };
  for (const holder of holders) {
    apply(holder);
    apply(holder.retweeted);
    apply(holder.quoted);
  }
  return changed;
}

/** The posts of the column that show post `id` (itself, retweets and quotes of it). */
export function holdersOf(column: ColumnData, id: string): readonly Post[] {
  return column.refs.get(id) ?? [];
}

/** Drops the oldest shown posts beyond `max` so that a column left open for days stays bounded. */
export function trimOldest(column: ColumnData, max: number): number {
  const excess = column.shown.length - max;
  if (excess <= 0) return 0;
  const dropped = column.shown.splice(max, excess);
  for (const post of dropped) unindex(column, post);
  column.next = column.shown[column.shown.length - 1].cursor;
  column.hasMore = true;
  return excess;
}
