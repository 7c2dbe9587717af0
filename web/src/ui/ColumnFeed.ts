// ColumnFeed: a column's conversation with the server, with no DOM. It loads
// the first page over HTTP, subscribes over the socket (resuming a little
// before the newest post the column holds), follows the catch-up, answers
// `resync` with a reload, pages older history, and retries what failed (a
// 429 after its Retry-After, other errors with backoff, never a 400). Each
// start is a new generation: answers and frames of an earlier one are
// ignored. What to do with the posts is the column's (FeedView).

import { ApiError, fetchTimeline } from '../api';
import type { ClientMessage } from '../bindings/ClientMessage';
import type { Post } from '../bindings/Post';
import type { ServerMessage } from '../bindings/ServerMessage';
import type { TimelineResponse } from '../bindings/TimelineResponse';
import { lang, t } from '../i18n';
import { backoffDelay } from '../logic/backoff';
import { inOverlap, resumeCursor } from '../logic/cursor';
import { errorText } from '../logic/errors';
import type { StreamState } from '../stream';
import type { ColumnState } from './ColumnHeader';

export const PAGE_SIZE = 40;
export const SUBSCRIBE_TIMEOUT_MS = 15_000;
/** How long a column waits to subscribe again after the server did not answer. */
export const RESUBSCRIBE_MS = 5_000;

/** The feed's own states: `live` is the column's to show as live or paused. */
export type FeedState = Exclude<ColumnState, 'paused'>;

/** The socket, as a feed uses it. */
export interface FeedStream {
  send(message: ClientMessage): boolean;
  readonly state: StreamState;
}

/** What a feed needs from its column. */
export interface FeedView {
  /** The query sent to the server. */
  query(): string;
  /** The newest cursor the column holds, and the cursors of the posts it holds near it. */
  resumePoint(): { newest: string | null; held: string[] };
  /** The cursor of the next older page, or null at the end of history. */
  olderCursor(): string | null;
  /** Whether the column holds no post. */
  empty(): boolean;
  /** A first page (at start, or after a resync): the column starts over from it. */
  firstPage(posts: Post[], next: string | null): void;
  /** A page older than what the column holds. */
  olderPage(posts: Post[], next: string | null): void;
  /** Posts stored while the first page and the subscription crossed. */
  backfill(posts: Post[], next: string | null): void;
  /** A post from the socket; `live` is false while the subscription catches up. */
  post(post: Post, live: boolean): void;
  /** The state, its detail, or whether older history is loading changed. */
  changed(): void;
}

/** How a feed talks to the server (the real API, or a test's). */
export interface FeedTransport {
  stream: FeedStream;
  fetchPage(q: string, before: string | null, limit: number, signal?: AbortSignal): Promise<TimelineResponse>;
}

/** A first page fetched before the column existed (the search box validates the query that way). */
export interface Preloaded {
  posts: Post[];
  next: string | null;
}

export class ColumnFeed {
  private generation = 0;
  private stateNow: FeedState = 'loading';
  private detailNow = '';
  private historyLoaded = false;
  private subscribed = false;
  private catchingUp = false;
  private loadingOlderNow = false;
  /** The newest cursor the column held when it last resumed (the end of the overlap it asked for again). */
  private resumedFrom: string | null = null;
  private failures = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private subscribeTimer: ReturnType<typeof setTimeout> | undefined;
  private abort: AbortController | null = null;
  private readonly transport: FeedTransport;

  constructor(
    /** The column's id: subscriptions are `${id}~${generation}`. */
    private readonly columnId: string,
    private readonly view: FeedView,
    stream: FeedStream,
    fetchPage: FeedTransport['fetchPage'] = fetchTimeline,
  ) {
    this.transport = { stream, fetchPage };
  }

  get state(): FeedState {
    return this.stateNow;
  }

  get detail(): string {
    return this.detailNow;
  }

  /** Whether the first page is in. */
  get loaded(): boolean {
    return this.historyLoaded;
  }

  /** Whether an older page is on its way. */
  get loadingOlder(): boolean {
    return this.loadingOlderNow;
  }

  /** The subscription id of the current generation (stale frames are ignored). */
  get subscriptionId(): string {
    return `${this.columnId}~${this.generation}`;
  }

  /** Whether a server frame belongs to the current subscription. */
  owns(subscriptionId: string): boolean {
    return subscriptionId === this.subscriptionId;
  }

  /** Whether a frame belongs to any generation of this column. */
  ownsAny(subscriptionId: string): boolean {
    return subscriptionId.startsWith(`${this.columnId}~`);
  }

  /** Whether a post of the catch-up is one the column asked for again when it resumed (see logic/cursor). */
  inResumeOverlap(cursor: string): boolean {
    return inOverlap(cursor, this.resumedFrom);
  }

  private setState(state: FeedState, detail = ''): void {
    this.stateNow = state;
    this.detailNow = detail;
    this.view.changed();
  }

  /** Loads the first page (unless given) and subscribes: a new generation. */
  start(preloaded?: Preloaded): void {
    this.generation++;
    this.subscribed = false;
    this.historyLoaded = false;
    this.catchingUp = false;
    clearTimeout(this.retryTimer);
    clearTimeout(this.subscribeTimer);
    this.abort?.abort();
    this.setState('loading');
    if (preloaded) {
      this.onFirstPage(preloaded.posts, preloaded.next);
      return;
    }
    const generation = this.generation;
    const abort = new AbortController();
    this.abort = abort;
    this.transport.fetchPage(this.view.query(), null, PAGE_SIZE, abort.signal).then(
      (page) => {
        if (generation === this.generation) this.onFirstPage(page.posts, page.next);
      },
      (error) => {
        if (generation === this.generation) this.onHttpError(error, () => this.start());
      },
    );
  }

  private onFirstPage(posts: Post[], next: string | null): void {
    this.failures = 0;
    this.historyLoaded = true;
    this.view.firstPage(posts, next);
    this.subscribe();
  }

  private onHttpError(error: unknown, retry: () => void): void {
    if ((error as Error)?.name === 'AbortError') return;
    clearTimeout(this.retryTimer);
    if (error instanceof ApiError && error.status === 429) {
      const seconds = error.retryAfterSeconds ?? 5;
      this.retryTimer = setTimeout(retry, seconds * 1000);
      this.setState('rate_limited', t.retryIn(seconds));
      return;
    }
    const message = error instanceof ApiError ? errorText(error.body.code, error.body.error, lang()) : String(error);
    // A bad query will not get better by itself; anything else is retried with backoff.
    if (!(error instanceof ApiError && error.status === 400)) {
      this.failures++;
      this.retryTimer = setTimeout(retry, backoffDelay(this.failures, Math.random(), 1000, 60_000));
    }
    this.setState('failed', message);
  }

  /** Subscribes (or resubscribes after a reconnect) a little before the newest cursor (`resumeCursor`); posts the column holds already are dropped. */
  subscribe(): void {
    if (!this.historyLoaded) return;
    clearTimeout(this.subscribeTimer);
    this.subscribed = false;
    const { newest, held } = this.view.resumePoint();
    const since = newest ? resumeCursor(newest, held) : undefined;
    this.resumedFrom = newest;
    const sent = this.transport.stream.send({ type: 'subscribe', column: this.subscriptionId, q: this.view.query(), ...(since ? { since } : {}) });
    if (!sent) {
      this.setState(this.transport.stream.state === 'offline' ? 'offline' : 'connecting');
      return;
    }
    this.catchingUp = since !== undefined;
    const generation = this.generation;
    this.subscribeTimer = setTimeout(() => {
      if (generation === this.generation && (this.stateNow === 'connecting' || this.stateNow === 'catching_up')) {
        this.retryTimer = setTimeout(() => this.subscribe(), RESUBSCRIBE_MS);
        this.setState('failed', 'no answer from the server');
      }
    }, SUBSCRIBE_TIMEOUT_MS);
    this.setState(this.catchingUp ? 'catching_up' : 'connecting');
  }

  /** The stream went down: the feed waits for it, with the reason on show. */
  offline(detail: string): void {
    clearTimeout(this.subscribeTimer);
    this.subscribed = false;
    if (this.historyLoaded || this.stateNow !== 'failed') this.setState('offline', detail);
  }

  /** Handles a frame addressed to the current subscription. */
  handle(message: ServerMessage): void {
    switch (message.type) {
      case 'subscribed':
        this.subscribed = true;
        if (!this.catchingUp) {
          clearTimeout(this.subscribeTimer);
          this.settle();
          // Without `since` (the column was empty) a post stored between the history
          // request and the subscription could fall in the gap: look once more.
          if (this.view.empty()) this.backfillEmpty();
        }
        break;
      case 'caught_up':
        clearTimeout(this.subscribeTimer);
        this.catchingUp = false;
        this.failures = 0;
        this.settle();
        break;
      case 'post':
        this.view.post(message.post, !this.catchingUp);
        break;
      case 'resync':
        this.reload();
        break;
      case 'error':
        clearTimeout(this.subscribeTimer);
        this.setState('failed', errorText(message.code, message.message, lang()));
        break;
      default:
        break;
    }
  }

  /** Live once subscribed and caught up, unless something failed meanwhile (a late answer after a timeout). */
  private settle(): void {
    const waiting = this.stateNow === 'connecting' || this.stateNow === 'catching_up' || this.stateNow === 'live';
    if (waiting && this.subscribed && !this.catchingUp) this.setState('live');
    else this.view.changed();
  }

  private backfillEmpty(): void {
    const generation = this.generation;
    this.transport.fetchPage(this.view.query(), null, PAGE_SIZE).then((page) => {
      if (generation === this.generation) this.view.backfill(page.posts, page.next);
    }, () => undefined);
  }

  /** Reloads from history after `resync` (the column keeps its held-back posts), then subscribes since the newest. */
  reload(): void {
    this.generation++;
    const generation = this.generation;
    this.setState('catching_up');
    this.transport.fetchPage(this.view.query(), null, PAGE_SIZE).then(
      (page) => {
        if (generation === this.generation) this.onFirstPage(page.posts, page.next);
      },
      (error) => {
        if (generation === this.generation) this.onHttpError(error, () => this.reload());
      },
    );
  }

  /** Loads the next older page of history, if there is one and none is on its way. */
  loadOlder(): void {
    const before = this.view.olderCursor();
    if (this.loadingOlderNow || !this.historyLoaded || !before) return;
    this.loadingOlderNow = true;
    this.view.changed();
    const generation = this.generation;
    this.transport.fetchPage(this.view.query(), before, PAGE_SIZE).then(
      (page) => {
        this.loadingOlderNow = false;
        if (generation === this.generation) this.view.olderPage(page.posts, page.next);
        else this.view.changed();
      },
      (error) => {
        this.loadingOlderNow = false;
        if (generation === this.generation) this.onHttpError(error, () => this.loadOlder());
        else this.view.changed();
      },
    );
  }

  /** Leaves the current subscription and starts over (a new query, or Retry): the column has emptied itself. */
  restart(): void {
    this.unsubscribe();
    this.failures = 0;
    this.start();
  }

  private unsubscribe(): void {
    this.transport.stream.send({ type: 'unsubscribe', column: this.subscriptionId });
  }

  /** Stops for good: nothing it started answers any more. */
  stop(): void {
    this.unsubscribe();
    this.generation++;
    clearTimeout(this.retryTimer);
    clearTimeout(this.subscribeTimer);
    this.abort?.abort();
  }
}
