// Column: one post column. History over HTTP plus live posts over the
// WebSocket (ColumnFeed, which talks to the server), merged by the column
// model (logic/column.ts) and shown through a virtual list. New posts wait
// behind "N new posts" while the reader is scrolled down or hovering, so
// nothing moves under their eyes.

import type { Post } from '../bindings/Post';
import type { ServerMessage } from '../bindings/ServerMessage';
import type { ColumnConfig } from '../deck';
import { t } from '../i18n';
import { shownPost, type DisplayItem } from '../logic/collapse';
import { addLiveAt, appendOlder, emptyColumn, flushPendingOnTop, holdersOf, loadFirstPage, pendingCount, removePost, trimOldest, updateCounts, type ColumnData } from '../logic/column';
import { DisplayList } from '../logic/display';
import { newerCursor, RESUME_OVERLAP_POSTS } from '../logic/cursor';
import { compileMutes, isMuted, mutesEmpty, type Mutes } from '../logic/mute';
import { effectiveQuery } from '../logic/query';
import { createSlowSampler, type SlowSampler } from '../logic/slow';
import type { Stream } from '../stream';
import { ColumnFeed, type FeedView, type Preloaded } from './ColumnFeed';
import { ColumnHeader, type ColumnControls, type ColumnState } from './ColumnHeader';
import { renderSettings } from './ColumnSettings';
import { refreshTimes, renderCard, updateCardCounts, type CardHandlers } from './PostCard';
import { LiveBeat } from './beat';
import { cancelFrame, nextFrame, type FrameTask } from './frame';
import { VirtualList } from './VirtualList';

export type { Preloaded } from './ColumnFeed';

const TOP_SLACK_PX = 40;
const LOAD_MORE_PX = 1200;
/** Posts kept on screen at most; beyond MAX_SHOWN + TRIM_SLACK the oldest go (and come back as older pages). */
const MAX_SHOWN = 600;
const TRIM_SLACK = 100;

/** What a column needs from the deck. */
export interface ColumnHost extends Omit<ColumnControls, 'toggleSettings' | 'retry'> {
  stream: Stream;
  cards: CardHandlers;
  configChanged(next: ColumnConfig): void;
  notify(config: ColumnConfig, post: Post): void;
  /** The deck-wide mutes, applied with the column's own. */
  deckMutes(): string[];
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
  private shownState: ColumnState | null = null;
  private shownDetail = '';
  private hovering = false;
  private mutes: Mutes;
  private sampler: SlowSampler | null;
  /** The conversation with the server: first page, subscription, catch-up, resync, older pages. */
  private readonly feed: ColumnFeed;

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
    this.feed = new ColumnFeed(config.id, this.feedView(), host.stream);
    this.feed.start(preloaded);
  }

  /** What the feed hands the column, and asks of it. */
  private feedView(): FeedView {
    return {
      query: () => this.query,
      resumePoint: () => ({
        newest: this.data.newest,
        held: [...this.data.pending.slice(0, RESUME_OVERLAP_POSTS), ...this.data.shown.slice(0, RESUME_OVERLAP_POSTS)].map((post) => post.cursor),
      }),
      olderCursor: () => (this.data.hasMore ? this.data.next : null),
      empty: () => this.data.shown.length === 0 && this.data.pending.length === 0,
      firstPage: (posts, next) => {
        this.data = loadFirstPage(this.data, posts, next);
        this.rebuild = true;
        this.refresh();
      },
      olderPage: (posts, next) => {
        const { added, atEnd } = appendOlder(this.data, posts, next);
        if (atEnd) this.display.addOldest(added);
        else this.rebuild = true;
        this.refresh();
      },
      backfill: (posts, next) => {
        for (const post of posts) addLiveAt(this.data, post, false);
        this.rebuild = true;
        if (this.data.next === null) {
          this.data.next = next;
          this.data.hasMore = next !== null;
        }
        this.refresh();
      },
      post: (post, live) => this.onLivePost(post, live),
      changed: () => {
        this.updateFooter();
        this.updateState();
      },
    };
  }

  private displayOptions(): { collapse: boolean; hidden?: (post: Post) => boolean } {
    const mutes = this.mutes;
    return { collapse: this.config.filters.collapse !== false, hidden: mutesEmpty(mutes) ? undefined : (post: Post) => isMuted(mutes, post) };
  }

  /** The query sent to the server: the base query plus the filters. */
  get query(): string {
    return effectiveQuery(this.config.query, this.config.filters);
  }

  /** Whether a server frame belongs to this column's current subscription. */
  owns(subscriptionId: string): boolean {
    return this.feed.owns(subscriptionId);
  }

  /** Whether a frame belongs to any generation of this column. */
  ownsAny(subscriptionId: string): boolean {
    return this.feed.ownsAny(subscriptionId);
  }

  private atTop(): boolean {
    return this.list.scrollPosition <= TOP_SLACK_PX;
  }

  private holding(): boolean {
    return this.hovering || !this.atTop() || this.settings !== null;
  }

  /** Subscribes again (after the stream reconnected). */
  subscribe(): void {
    this.feed.subscribe();
  }

  /** The stream went down: the column waits for it, with the reason on show. */
  offline(detail: string): void {
    this.feed.offline(detail);
  }

  /** Handles a frame addressed to this column. */
  handle(message: ServerMessage): void {
    this.feed.handle(message);
  }

  /** Reloads from history (as after `resync`), keeping held-back posts, then resubscribes since the newest. */
  reload(): void {
    this.feed.reload();
  }

  private onLivePost(post: Post, live: boolean): void {
    // The overlap a slow-mode column asked for again was sampled already.
    if (!live && this.sampler && this.feed.inResumeOverlap(post.cursor)) return;
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
    const loaded = this.feed.loaded;
    const text = this.feed.loadingOlder ? t.loadingOlder : this.list.length === 0 && loaded ? t.empty : !this.data.hasMore && loaded ? t.endOfHistory : '';
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
    this.feed.loadOlder();
  }

  /** Shows the feed's state, as paused while the reader holds new posts back. */
  private updateState(): void {
    let state: ColumnState = this.feed.state;
    let detail = this.feed.detail;
    if (state === 'live') {
      const pending = pendingCount(this.data);
      if (this.holding() && (pending > 0 || !this.atTop() || this.hovering)) {
        state = 'paused';
        detail = pending > 0 ? t.newPosts(pending) : '';
      }
    }
    if (state === this.shownState && detail === this.shownDetail) return;
    this.el.setAttribute('aria-busy', String(state === 'loading'));
    this.shownState = state;
    this.shownDetail = detail;
    this.header.setState(state, detail);
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
    this.data = emptyColumn();
    this.rebuild = true;
    this.refresh();
    this.feed.restart();
  }

  /** Redraws after a language switch. */
  relabel(): void {
    this.header.relabel();
    this.shownState = null;
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
    this.feed.stop();
    this.el.remove();
  }
}
