// Column: one post column. History over HTTP plus live posts over the
// WebSocket, merged by the column model (logic/column.ts) and shown through a
// virtual list. New posts wait behind "N new posts" while the reader is
// scrolled down or hovering, so nothing moves under their eyes.

import { ApiError, fetchTimeline } from '../api';
import type { Post } from '../bindings/Post';
import type { ServerMessage } from '../bindings/ServerMessage';
import type { ColumnConfig } from '../deck';
import { t } from '../i18n';
import { backoffDelay } from '../logic/backoff';
import { toDisplayItems, type DisplayItem } from '../logic/collapse';
import { addLive, appendOlder, emptyColumn, flushPending, loadFirstPage, removePost, trimOldest, updateCounts, type ColumnData } from '../logic/column';
import { newerCursor } from '../logic/cursor';
import { compileMutes, isMuted, mutesEmpty, type Mutes } from '../logic/mute';
import { effectiveQuery } from '../logic/query';
import { createSlowSampler, type SlowSampler } from '../logic/slow';
import type { Stream } from '../stream';
import { ColumnHeader, type ColumnControls, type ColumnState } from './ColumnHeader';
import { renderSettings } from './ColumnSettings';
import { refreshTimes, renderCard, updateCardCounts, type CardHandlers } from './PostCard';
import { VirtualList } from './VirtualList';

const PAGE_SIZE = 40;
const TOP_SLACK_PX = 40;
const LOAD_MORE_PX = 1200;
const MAX_SHOWN = 10_000;
const SUBSCRIBE_TIMEOUT_MS = 15_000;

/** What a column needs from the deck. */
export interface ColumnHost extends Omit<ColumnControls, 'toggleSettings' | 'retry'> {
  stream: Stream;
  cards: CardHandlers;
  configChanged(next: ColumnConfig): void;
  notify(config: ColumnConfig, post: Post): void;
}

/** A first page fetched before the column existed (the search box validates the query that way). */
export interface Preloaded {
  posts: Post[];
  next: string | null;
}

/** A live post column. */
export class Column {
  readonly el: HTMLElement;
  private readonly header: ColumnHeader;
  private readonly body: HTMLElement;
  private readonly newButton: HTMLButtonElement;
  private readonly footer: HTMLElement;
  private settings: HTMLElement | null = null;
  private readonly list: VirtualList<DisplayItem>;
  private data: ColumnData = emptyColumn();
  private items: DisplayItem[] = [];
  private generation = 0;
  private state: ColumnState = 'loading';
  private stateDetail = '';
  private hovering = false;
  private loadingOlder = false;
  private historyLoaded = false;
  private subscribed = false;
  private catchingUp = false;
  private refreshFrame = 0;
  private failures = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private subscribeTimer: ReturnType<typeof setTimeout> | undefined;
  private mutes: Mutes;
  private sampler: SlowSampler | null;
  private abort: AbortController | null = null;

  constructor(
    public config: ColumnConfig,
    private readonly host: ColumnHost,
    preloaded?: Preloaded,
  ) {
    this.el = document.createElement('section');
    this.el.className = 'column';
    this.el.setAttribute('role', 'feed');
    this.el.setAttribute('aria-busy', 'true');
    this.el.dataset.columnId = config.id;
    this.el.style.setProperty('--column-width', `${config.width}px`);
    this.header = new ColumnHeader(this.el, config, {
      ...host,
      toggleSettings: () => this.toggleSettings(),
      retry: () => this.restart(),
    });
    this.newButton = document.createElement('button');
    this.newButton.type = 'button';
    this.newButton.className = 'new-posts';
    this.newButton.hidden = true;
    this.newButton.addEventListener('click', () => this.showNew());
    this.body = document.createElement('div');
    this.body.className = 'column-body';
    this.footer = document.createElement('div');
    this.footer.className = 'column-footer';
    this.list = new VirtualList<DisplayItem>(this.body, (item) => renderCard(item, host.cards), () => this.onScroll());
    this.body.append(this.footer);
    this.el.append(this.header.el, this.newButton, this.body);
    this.el.addEventListener('mouseenter', () => {
      this.hovering = true;
      this.updateState();
    });
    this.el.addEventListener('mouseleave', () => {
      this.hovering = false;
      if (this.atTop()) this.showNew(false);
      this.updateState();
    });
    this.mutes = compileMutes(config.filters.mutes ?? []);
    this.sampler = config.filters.slow ? createSlowSampler(config.filters.slow) : null;
    this.start(preloaded);
  }

  /** The query sent to the server: the base query plus the filters. */
  get query(): string {
    return effectiveQuery(this.config.query, this.config.filters);
  }

  /** The subscription id of the current generation (stale frames are ignored). */
  private get subscriptionId(): string {
    return `${this.config.id}~${this.generation}`;
  }

  /** Whether a server frame belongs to this column's current subscription. */
  owns(subscriptionId: string): boolean {
    return subscriptionId === this.subscriptionId;
  }

  /** Whether a frame belongs to any generation of this column. */
  ownsAny(subscriptionId: string): boolean {
    return subscriptionId.startsWith(`${this.config.id}~`);
  }

  private atTop(): boolean {
    return this.body.scrollTop <= TOP_SLACK_PX;
  }

  private holding(): boolean {
    return this.hovering || !this.atTop() || this.settings !== null;
  }

  /** Loads the first page (unless given) and subscribes. */
  private start(preloaded?: Preloaded): void {
    this.generation++;
    this.subscribed = false;
    this.historyLoaded = false;
    this.catchingUp = false;
    clearTimeout(this.retryTimer);
    this.abort?.abort();
    this.setState('loading');
    if (preloaded) {
      this.onFirstPage(preloaded.posts, preloaded.next);
      return;
    }
    const generation = this.generation;
    const abort = new AbortController();
    this.abort = abort;
    fetchTimeline(this.query, null, PAGE_SIZE, abort.signal).then(
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
    this.data = loadFirstPage(this.data, posts, next);
    this.historyLoaded = true;
    this.el.setAttribute('aria-busy', 'false');
    this.refresh();
    this.subscribe();
  }

  private onHttpError(error: unknown, retry: () => void): void {
    if ((error as Error)?.name === 'AbortError') return;
    clearTimeout(this.retryTimer);
    if (error instanceof ApiError && error.status === 429) {
      const seconds = error.retryAfterSeconds ?? 5;
      this.setState('rate_limited', t.retryIn(seconds));
      this.retryTimer = setTimeout(retry, seconds * 1000);
      return;
    }
    const message = error instanceof ApiError ? error.body.error : String(error);
    this.setState('failed', message);
    this.el.setAttribute('aria-busy', 'false');
    // A bad query will not get better by itself; anything else is retried with backoff.
    if (error instanceof ApiError && error.status === 400) return;
    this.failures++;
    this.retryTimer = setTimeout(retry, backoffDelay(this.failures, Math.random(), 1000, 60_000));
  }

  /** Subscribes (or resubscribes after a reconnect) since the newest cursor. */
  subscribe(): void {
    if (!this.historyLoaded) return;
    clearTimeout(this.subscribeTimer);
    this.subscribed = false;
    const since = this.data.newest ?? undefined;
    const sent = this.host.stream.send({ type: 'subscribe', column: this.subscriptionId, q: this.query, ...(since ? { since } : {}) });
    if (!sent) {
      this.setState(this.host.stream.state === 'offline' ? 'offline' : 'connecting');
      return;
    }
    this.catchingUp = since !== undefined;
    this.setState(this.catchingUp ? 'catching_up' : 'connecting');
    const generation = this.generation;
    this.subscribeTimer = setTimeout(() => {
      if (generation === this.generation && (this.state === 'connecting' || this.state === 'catching_up')) {
        this.setState('failed', 'no answer from the server');
        this.retryTimer = setTimeout(() => this.subscribe(), 5_000);
      }
    }, SUBSCRIBE_TIMEOUT_MS);
  }

  /** The stream went down: the column waits for it, with the reason on show. */
  offline(detail: string): void {
    clearTimeout(this.subscribeTimer);
    this.subscribed = false;
    if (this.historyLoaded || this.state !== 'failed') this.setState('offline', detail);
  }

  /** Handles a frame addressed to this column. */
  handle(message: ServerMessage): void {
    switch (message.type) {
      case 'subscribed':
        this.subscribed = true;
        if (!this.catchingUp) {
          clearTimeout(this.subscribeTimer);
          this.updateState();
          // Without `since` (the column was empty) a post stored between the history
          // request and the subscription could fall in the gap: look once more.
          if (this.data.shown.length === 0 && this.data.pending.length === 0) this.backfillEmpty();
        }
        break;
      case 'caught_up':
        clearTimeout(this.subscribeTimer);
        this.catchingUp = false;
        this.failures = 0;
        this.updateState();
        break;
      case 'post':
        this.onLivePost(message.post);
        break;
      case 'resync':
        this.reload();
        break;
      case 'error':
        clearTimeout(this.subscribeTimer);
        this.setState('failed', message.message);
        break;
      default:
        break;
    }
  }

  private backfillEmpty(): void {
    const generation = this.generation;
    fetchTimeline(this.query, null, PAGE_SIZE).then((page) => {
      if (generation !== this.generation) return;
      for (const post of page.posts) addLive(this.data, post, false);
      if (this.data.next === null) {
        this.data.next = page.next;
        this.data.hasMore = page.next !== null;
      }
      this.refresh();
    }, () => undefined);
  }

  /** Reloads from history after `resync`, keeping held-back posts, then resubscribes since the newest. */
  reload(): void {
    this.generation++;
    const generation = this.generation;
    this.setState('catching_up');
    fetchTimeline(this.query, null, PAGE_SIZE).then(
      (page) => {
        if (generation !== this.generation) return;
        this.onFirstPage(page.posts, page.next);
      },
      (error) => {
        if (generation === this.generation) this.onHttpError(error, () => this.reload());
      },
    );
  }

  private onLivePost(post: Post): void {
    const live = !this.catchingUp;
    if (live && this.sampler && !this.sampler.accept(Date.now())) {
      // Not shown, but resuming must still start after it.
      this.data.newest = newerCursor(this.data.newest, post.cursor);
      return;
    }
    const hold = this.holding();
    if (!hold && this.data.pending.length > 0) flushPending(this.data);
    if (!addLive(this.data, post, hold)) return;
    if (live && this.config.filters.notify && !isMuted(this.mutes, post)) this.host.notify(this.config, post);
    this.scheduleRefresh();
  }

  /** Removes a deleted post. */
  deletePost(id: string): void {
    if (removePost(this.data, id)) this.scheduleRefresh();
  }

  /** Applies live counts. */
  counts(id: string, retweets: number, likes: number): void {
    if (!updateCounts(this.data, id, retweets, likes)) return;
    const node = this.list.node(id);
    if (!node) return;
    const item = this.items.find((candidate) => candidate.key === id);
    if (item) updateCardCounts(node, item.post);
  }

  private scheduleRefresh(): void {
    if (this.refreshFrame) return;
    this.refreshFrame = requestAnimationFrame(() => {
      this.refreshFrame = 0;
      this.refresh();
    });
  }

  /** Recomputes the cards from the model and renders. */
  private refresh(): void {
    if (!this.holding() && this.data.shown.length > MAX_SHOWN) trimOldest(this.data, MAX_SHOWN);
    const hidden = mutesEmpty(this.mutes) ? undefined : (post: Post) => isMuted(this.mutes, post);
    this.items = toDisplayItems(this.data.shown, this.config.filters.collapse !== false, hidden);
    this.list.setItems(this.items);
    const pending = this.data.pending.length;
    this.newButton.hidden = pending === 0;
    this.newButton.textContent = `↑ ${t.newPosts(pending)}`;
    this.el.dataset.pending = String(pending);
    this.updateFooter();
    this.updateState();
  }

  private updateFooter(): void {
    const text = this.loadingOlder ? t.loadingOlder : this.items.length === 0 && this.historyLoaded ? t.empty : !this.data.hasMore && this.historyLoaded ? t.endOfHistory : '';
    if (this.footer.textContent !== text) this.footer.textContent = text;
    this.footer.style.transform = `translateY(${this.list.totalHeight}px)`;
  }

  /** Shows the held-back posts and goes to the top. */
  showNew(scroll = true): void {
    if (this.data.pending.length === 0) return;
    flushPending(this.data);
    if (scroll) this.body.scrollTop = 0;
    this.refresh();
  }

  private onScroll(): void {
    if (this.atTop() && !this.hovering && this.data.pending.length > 0) this.showNew(false);
    const bottom = this.body.scrollTop + this.body.clientHeight;
    if (bottom > this.list.totalHeight - LOAD_MORE_PX) this.loadOlder();
    this.updateState();
  }

  /** Loads the next older page of history. */
  loadOlder(): void {
    if (this.loadingOlder || !this.historyLoaded || !this.data.hasMore || !this.data.next) return;
    this.loadingOlder = true;
    this.updateFooter();
    const generation = this.generation;
    fetchTimeline(this.query, this.data.next, PAGE_SIZE).then(
      (page) => {
        this.loadingOlder = false;
        if (generation !== this.generation) return;
        appendOlder(this.data, page.posts, page.next);
        this.refresh();
      },
      (error) => {
        this.loadingOlder = false;
        if (generation === this.generation) this.onHttpError(error, () => this.loadOlder());
      },
    );
  }

  private setState(state: ColumnState, detail = ''): void {
    this.state = state;
    this.stateDetail = detail;
    this.renderState();
  }

  /** Recomputes live/paused from the reader's position. */
  private updateState(): void {
    const settled = this.state === 'live' || this.state === 'paused' || this.state === 'connecting' || this.state === 'catching_up';
    if (settled && this.subscribed && !this.catchingUp) {
      this.state = this.holding() && (this.data.pending.length > 0 || !this.atTop() || this.hovering) ? 'paused' : 'live';
      this.stateDetail = this.state === 'paused' && this.data.pending.length > 0 ? t.newPosts(this.data.pending.length) : '';
    }
    this.renderState();
  }

  private renderState(): void {
    this.header.setState(this.state, this.stateDetail);
  }

  /** Scrolls by a step (j/k). */
  scrollBy(pixels: number): void {
    this.body.scrollBy({ top: pixels });
  }

  /** Focuses the column for the keyboard. */
  focus(): void {
    this.el.tabIndex = -1;
    this.el.focus({ preventScroll: true });
    this.el.scrollIntoView({ block: 'nearest', inline: 'nearest' });
  }

  private toggleSettings(): void {
    if (this.settings) {
      this.settings.remove();
      this.settings = null;
      this.header.settingsButton.setAttribute('aria-expanded', 'false');
      return;
    }
    this.settings = renderSettings(this.config, false, (next) => this.host.configChanged(next), () => this.toggleSettings());
    this.header.el.after(this.settings);
    this.header.settingsButton.setAttribute('aria-expanded', 'true');
    this.settings.querySelector('input')?.focus();
  }

  /** Applies a new configuration; a changed query starts the column afresh. */
  applyConfig(next: ColumnConfig): void {
    const queryChanged = effectiveQuery(next.query, next.filters) !== this.query;
    this.config = next;
    this.el.style.setProperty('--column-width', `${next.width}px`);
    this.header.setConfig(next);
    this.mutes = compileMutes(next.filters.mutes ?? []);
    this.sampler = next.filters.slow ? createSlowSampler(next.filters.slow) : null;
    if (this.settings) this.toggleSettings();
    if (queryChanged) this.restart();
    else this.list.rerenderAll();
    this.refresh();
  }

  /** Starts over from the first page (after a change of query, or Retry). */
  restart(): void {
    this.host.stream.send({ type: 'unsubscribe', column: this.subscriptionId });
    this.data = emptyColumn();
    this.failures = 0;
    this.refresh();
    this.start();
  }

  /** Redraws after a language switch. */
  relabel(): void {
    this.header.relabel();
    if (this.settings) this.toggleSettings();
    this.list.rerenderAll();
    this.refresh();
  }

  /** Updates relative times of the visible cards. */
  tick(): void {
    refreshTimes(this.body);
  }

  /** Stops the column for good. */
  destroy(): void {
    this.generation++;
    clearTimeout(this.retryTimer);
    clearTimeout(this.subscribeTimer);
    this.abort?.abort();
    this.host.stream.send({ type: 'unsubscribe', column: this.subscriptionId });
    this.el.remove();
  }
}
