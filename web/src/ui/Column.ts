// Column: one post column. History over HTTP plus live posts over the
// WebSocket, merged by the column model (logic/column.ts) and shown through a
// virtual list. New posts wait behind "N new posts" while the reader is
// scrolled down or hovering, so nothing moves under their eyes.

import { ApiError, fetchTimeline } from '../api';
import type { Post } from '../bindings/Post';
import type { ServerMessage } from '../bindings/ServerMessage';
import type { ColumnConfig } from '../deck';
import { lang, t } from '../i18n';
import { errorText } from '../logic/errors';
import { backoffDelay } from '../logic/backoff';
import { shownPost, type DisplayItem } from '../logic/collapse';
import { addLiveAt, appendOlder, emptyColumn, flushPendingOnTop, holdersOf, loadFirstPage, pendingCount, removePost, trimOldest, updateCounts, type ColumnData } from '../logic/column';
import { DisplayList } from '../logic/display';
import { inOverlap, newerCursor, RESUME_OVERLAP_POSTS, resumeCursor } from '../logic/cursor';
import { compileMutes, isMuted, mutesEmpty, type Mutes } from '../logic/mute';
import { effectiveQuery } from '../logic/query';
import { createSlowSampler, type SlowSampler } from '../logic/slow';
import type { Stream } from '../stream';
import { ColumnHeader, type ColumnControls, type ColumnState } from './ColumnHeader';
import { renderSettings } from './ColumnSettings';
import { refreshTimes, renderCard, updateCardCounts, type CardHandlers } from './PostCard';
import { LiveBeat } from './beat';
import { cancelFrame, nextFrame, type FrameTask } from './frame';
import { VirtualList } from './VirtualList';

const PAGE_SIZE = 40;
const TOP_SLACK_PX = 40;
const LOAD_MORE_PX = 1200;
/** Posts kept on screen at most; beyond MAX_SHOWN + TRIM_SLACK the oldest go (and come back as older pages). */
const MAX_SHOWN = 600;
const TRIM_SLACK = 100;
const SUBSCRIBE_TIMEOUT_MS = 15_000;

/** What a column needs from the deck. */
export interface ColumnHost extends Omit<ColumnControls, 'toggleSettings' | 'retry'> {
  stream: Stream;
  cards: CardHandlers;
  configChanged(next: ColumnConfig): void;
  notify(config: ColumnConfig, post: Post): void;
  /** The deck-wide mutes, applied with the column's own. */
  deckMutes(): string[];
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
  private readonly display: DisplayList;
  /** The cards must be rebuilt from the posts at the next frame (a delete, an out-of-order post, a trim). */
  private rebuild = false;
  private readonly deletes = new Set<string>();
  private readonly countUpdates = new Map<string, [number, number]>();
  private readonly frameTask: FrameTask = {
    write: () => this.frameWrite(),
    measure: () => this.list.paintMeasure(),
    place: () => this.framePlace(),
  };
  /**
   * Whether any of the column is in view. Off screen a column keeps its
   * posts up to date (under the same caps) but writes nothing to the DOM
   * until it is back: a deck wider than the window draws only what the
   * reader can see.
   */
  private onScreen = true;
  /** Changes waited off screen for the column to come back into view. */
  private parked = false;
  /** Counts changed off screen, so the cards kept in the DOM are drawn again when it is back. */
  private cardsStale = false;
  /** Posts, deletes or trims wait to go into the list at the next frame (see scheduleRefresh). */
  private changesDue = false;
  private readonly visibility: IntersectionObserver | null;
  private shownPending = -1;
  /** When live posts go on screen (see beat.ts). */
  private readonly beat: LiveBeat;
  private footerText: string | null = null;
  private footerTop = -1;
  private generation = 0;
  private state: ColumnState = 'loading';
  private stateDetail = '';
  private hovering = false;
  private loadingOlder = false;
  private historyLoaded = false;
  private subscribed = false;
  private catchingUp = false;
  /** The newest cursor the column held when it last resumed (the end of the overlap it asked for again). */
  private resumedFrom: string | null = null;
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
    this.beat = new LiveBeat(
      () => this.scheduleRefresh(),
      () => this.list.screenful,
    );
    this.list = new VirtualList<DisplayItem>(this.body, (item) => renderCard(item, host.cards, { mediaSize: this.config.filters.media_size ?? 'large' }), () => this.onScroll(), () => this.scheduleRefresh(false));
    this.body.append(this.footer);
    this.el.append(this.header.el, this.newButton, this.body);
    this.visibility = typeof IntersectionObserver === 'undefined' ? null : new IntersectionObserver((entries) => this.onVisibility(entries));
    this.visibility?.observe(this.el);
    this.el.addEventListener('mouseenter', () => {
      this.hovering = true;
      this.updateState();
    });
    this.el.addEventListener('mouseleave', () => {
      this.hovering = false;
      if (this.atTop()) this.showNew(false);
      this.updateState();
    });
    this.mutes = compileMutes([...(config.filters.mutes ?? []), ...host.deckMutes()]);
    this.display = new DisplayList(this.displayOptions());
    this.sampler = config.filters.slow ? createSlowSampler(config.filters.slow) : null;
    this.start(preloaded);
  }

  private displayOptions(): { collapse: boolean; hidden?: (post: Post) => boolean } {
    const mutes = this.mutes;
    return { collapse: this.config.filters.collapse !== false, hidden: mutesEmpty(mutes) ? undefined : (post: Post) => isMuted(mutes, post) };
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
    return this.list.scrollPosition <= TOP_SLACK_PX;
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
    this.rebuild = true;
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
    const message = error instanceof ApiError ? errorText(error.body.code, error.body.error, lang()) : String(error);
    this.setState('failed', message);
    this.el.setAttribute('aria-busy', 'false');
    // A bad query will not get better by itself; anything else is retried with backoff.
    if (error instanceof ApiError && error.status === 400) return;
    this.failures++;
    this.retryTimer = setTimeout(retry, backoffDelay(this.failures, Math.random(), 1000, 60_000));
  }

  /** Subscribes (or resubscribes after a reconnect) a little before the newest cursor (`resumeCursor`); posts it holds already are dropped. */
  subscribe(): void {
    if (!this.historyLoaded) return;
    clearTimeout(this.subscribeTimer);
    this.subscribed = false;
    const held = [...this.data.pending.slice(0, RESUME_OVERLAP_POSTS), ...this.data.shown.slice(0, RESUME_OVERLAP_POSTS)].map((post) => post.cursor);
    const since = this.data.newest ? resumeCursor(this.data.newest, held) : undefined;
    this.resumedFrom = this.data.newest;
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
        this.setState('failed', errorText(message.code, message.message, lang()));
        break;
      default:
        break;
    }
  }

  private backfillEmpty(): void {
    const generation = this.generation;
    fetchTimeline(this.query, null, PAGE_SIZE).then((page) => {
      if (generation !== this.generation) return;
      for (const post of page.posts) addLiveAt(this.data, post, false);
      this.rebuild = true;
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
    // The overlap a slow-mode column asked for again was sampled already.
    if (!live && this.sampler && inOverlap(post.cursor, this.resumedFrom)) return;
    if (live && this.sampler && !this.sampler.accept(Date.now())) {
      // Not shown, but resuming must still start after it.
      this.data.newest = newerCursor(this.data.newest, post.cursor);
      return;
    }
    const hold = this.holding();
    if (!hold && this.data.pending.length > 0) this.flush();
    const at = addLiveAt(this.data, post, hold);
    if (at < 0) return;
    if (!hold) {
      if (at === 0) this.display.addNewest([post]);
      else this.rebuild = true;
    }
    if (live && this.config.filters.notify && !isMuted(this.mutes, post)) this.host.notify(this.config, post);
    // Held back, it changes only the "new posts" count, which the beat writes as well.
    if (hold) this.beat.request();
    else this.beat.post();
  }

  /** Moves the held-back posts on screen (cards on top, or a rebuild when they do not simply stack). */
  private flush(): void {
    const moved = flushPendingOnTop(this.data);
    if (moved === null) this.rebuild = true;
    else if (moved.length > 0) this.display.addNewest(moved);
  }

  /** Removes a deleted post at the next frame (a post this column does not hold costs one lookup). */
  deletePost(id: string): void {
    if (holdersOf(this.data, id).length === 0) return;
    this.deletes.add(id);
    this.scheduleRefresh();
  }

  /** Applies live counts at the next frame (a post this column does not hold costs one lookup). */
  counts(id: string, retweets: number, likes: number): void {
    if (holdersOf(this.data, id).length === 0) return;
    this.countUpdates.set(id, [retweets, likes]);
    this.scheduleRefresh(false);
  }

  /**
   * Asks for a frame. `changes`: the posts, deletes and trims waiting in the
   * model go into the list at that frame; a frame asked for only by counts,
   * a scroll or a resize leaves them for the next beat, so that a stream of
   * counts does not draw every live post as it comes.
   */
  private scheduleRefresh(changes = true): void {
    if (changes) this.changesDue = true;
    if (this.onScreen) {
      nextFrame(this.frameTask);
      return;
    }
    // Off screen: the drawing waits. Counts go into the posts now (so nothing
    // piles up), and so do posts, trims and deletes when they are what asked
    // (a beat or a delete, never a paint of the list: a frame asked for only
    // to draw, e.g. by cards measured late, must not change the list under it).
    this.parked = true;
    if (this.applyCounts(false)) this.cardsStale = true;
    if (changes) this.applyChanges();
  }

  private onVisibility(entries: IntersectionObserverEntry[]): void {
    const entry = entries[entries.length - 1];
    if (!entry) return;
    const back = entry.isIntersecting && !this.onScreen;
    this.onScreen = entry.isIntersecting;
    this.el.toggleAttribute('data-offscreen', !this.onScreen);
    if (back) refreshTimes(this.body);
    if (!this.onScreen || !this.parked) return;
    this.parked = false;
    if (this.cardsStale) {
      this.cardsStale = false;
      this.list.rerenderAll();
    }
    nextFrame(this.frameTask);
  }

  /** Now rather than at the next frame (first page, a reader's action). */
  private refresh(): void {
    cancelFrame(this.frameTask);
    this.applyChanges();
    this.list.paint();
    this.framePlace(false);
  }

  /** Frame phase 1: batched deletes, trims and card changes into the list, then its DOM writes. */
  private frameWrite(): void {
    if (this.changesDue) this.applyChanges();
    this.list.paintWrite();
  }

  private applyChanges(): void {
    this.changesDue = false;
    for (const id of this.deletes) if (removePost(this.data, id)) this.rebuild = true;
    this.deletes.clear();
    if (!this.holding() && this.data.shown.length > MAX_SHOWN + TRIM_SLACK) {
      trimOldest(this.data, MAX_SHOWN);
      this.rebuild = true;
    }
    if (this.rebuild) {
      this.rebuild = false;
      this.display.reset(this.data.shown);
    }
    for (const op of this.display.takeOps()) {
      switch (op.type) {
        case 'reset':
          this.list.reset(this.display.items);
          break;
        case 'prepend':
          this.list.prepend(op.items);
          break;
        case 'append':
          this.list.append(op.items);
          break;
        case 'remove':
          this.list.remove(op.key);
          break;
        case 'update':
          this.list.update(op.item);
          break;
      }
    }
  }

  /** Frame phase 3: positions, then counts, the "new posts" control, the footer and the state, each written only when it changed. */
  private framePlace(placeList = true): void {
    if (placeList) this.list.paintPlace();
    this.applyCounts(true);
    const pending = pendingCount(this.data);
    if (pending !== this.shownPending) {
      this.shownPending = pending;
      this.newButton.hidden = pending === 0;
      this.newButton.textContent = `↑ ${t.newPosts(pending)}`;
      this.el.dataset.pending = String(pending);
    }
    this.updateFooter();
    this.updateState();
  }

  /** Applies the batched live counts to the posts, and to their cards when `draw`; whether any post changed. */
  private applyCounts(draw: boolean): boolean {
    if (this.countUpdates.size === 0) return false;
    let changed = false;
    const collapse = this.config.filters.collapse !== false;
    for (const [id, [retweets, likes]] of this.countUpdates) {
      if (!updateCounts(this.data, id, retweets, likes)) continue;
      changed = true;
      if (!draw) continue;
      for (const holder of holdersOf(this.data, id)) {
        const key = collapse ? shownPost(holder).id : holder.id;
        const node = this.list.node(key);
        const item = this.display.item(key);
        if (node && item) updateCardCounts(node, item.post);
      }
    }
    this.countUpdates.clear();
    return changed;
  }

  private updateFooter(): void {
    const text = this.loadingOlder ? t.loadingOlder : this.list.length === 0 && this.historyLoaded ? t.empty : !this.data.hasMore && this.historyLoaded ? t.endOfHistory : '';
    if (this.footerText !== text) {
      this.footer.textContent = text;
      this.footerText = text;
    }
    const top = this.list.totalHeight;
    if (this.footerTop !== top) {
      this.footer.style.transform = `translateY(${top}px)`;
      this.footerTop = top;
    }
  }

  /** Shows the held-back posts and goes to the top. */
  showNew(scroll = true): void {
    if (this.data.pending.length === 0) return;
    this.flush();
    if (scroll) this.list.scrollToTop();
    this.refresh();
  }

  private onScroll(): void {
    if (this.atTop() && !this.hovering && this.data.pending.length > 0) this.showNew(false);
    const bottom = this.list.scrollPosition + this.list.viewportHeight;
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
        const { added, atEnd } = appendOlder(this.data, page.posts, page.next);
        if (atEnd) this.display.addOldest(added);
        else this.rebuild = true;
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
      const pending = pendingCount(this.data);
      this.state = this.holding() && (pending > 0 || !this.atTop() || this.hovering) ? 'paused' : 'live';
      this.stateDetail = this.state === 'paused' && pending > 0 ? t.newPosts(pending) : '';
    }
    this.renderState();
  }

  private renderState(): void {
    this.header.setState(this.state, this.stateDetail);
  }

  /** A post this column holds (itself, or shown inside a retweet or quote), by id. */
  find(id: string): Post | undefined {
    for (const holder of holdersOf(this.data, id)) {
      if (holder.id === id) return holder;
      if (holder.retweeted?.id === id) return holder.retweeted;
      if (holder.quoted?.id === id) return holder.quoted;
    }
    return undefined;
  }

  /** Posts this column holds that answer `id`. */
  repliesTo(id: string): Post[] {
    const out: Post[] = [];
    for (const list of [this.data.shown, this.data.pending]) for (const post of list) if (post.reply_to?.post_id === id) out.push(post);
    return out;
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
    this.mutes = compileMutes([...(next.filters.mutes ?? []), ...this.host.deckMutes()]);
    this.display.configure(this.displayOptions(), this.data.shown);
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
    this.rebuild = true;
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
    if (this.onScreen) refreshTimes(this.body);
  }

  /** Stops the column for good. */
  destroy(): void {
    cancelFrame(this.frameTask);
    this.visibility?.disconnect();
    this.beat.stop();
    this.generation++;
    clearTimeout(this.retryTimer);
    clearTimeout(this.subscribeTimer);
    this.abort?.abort();
    this.host.stream.send({ type: 'unsubscribe', column: this.subscriptionId });
    this.el.remove();
  }
}
