// TrendsColumn: the hashtag ranking, the fastest-rising tags and the most
// retweeted posts of a window, fetched over HTTP and then kept live by
// `subscribe_trends` frames.

import { ApiError, fetchTrends } from '../api';
import type { TrendsResponse } from '../bindings/TrendsResponse';
import type { ColumnConfig } from '../deck';
import { t } from '../i18n';
import { ColumnHeader, type ColumnControls, type ColumnState } from './ColumnHeader';
import { renderSettings } from './ColumnSettings';
import { formatCount, refreshTimes, renderCard, type CardHandlers } from './PostCard';
import type { Stream } from '../stream';
import { readTrend, trendText } from '../logic/trends';

/** What the trends column needs from the deck. */
export interface TrendsHost extends Omit<ColumnControls, 'toggleSettings' | 'retry'> {
  stream: Stream;
  cards: CardHandlers;
  configChanged(next: ColumnConfig): void;
}

const WINDOWS = ['5m', '1h', '24h'];

/** The trends column. */
export class TrendsColumn {
  readonly el: HTMLElement;
  private readonly header: ColumnHeader;
  private readonly body: HTMLElement;
  private readonly windowPicker: HTMLElement;
  private settings: HTMLElement | null = null;
  private trends: TrendsResponse | null = null;
  private state: ColumnState = 'loading';
  private detail = '';
  private hovering = false;
  private deferred: TrendsResponse | null = null;

  constructor(
    public config: ColumnConfig,
    private readonly host: TrendsHost,
  ) {
    this.el = document.createElement('section');
    this.el.className = 'column column-trends';
    this.el.setAttribute('role', 'feed');
    this.el.setAttribute('aria-busy', 'true');
    this.el.dataset.columnId = config.id;
    this.el.style.setProperty('--column-width', `${config.width}px`);
    this.header = new ColumnHeader(this.el, config, { ...host, toggleSettings: () => this.toggleSettings(), retry: () => this.load() });
    this.windowPicker = document.createElement('div');
    this.windowPicker.className = 'trends-windows';
    this.windowPicker.setAttribute('role', 'group');
    this.body = document.createElement('div');
    this.body.className = 'column-body trends-body';
    this.el.append(this.header.el, this.windowPicker, this.body);
    // A ranking that reorders under the pointer is hard to click: wait until the pointer leaves.
    this.el.addEventListener('mouseenter', () => (this.hovering = true));
    this.el.addEventListener('mouseleave', () => {
      this.hovering = false;
      if (this.deferred) this.show(this.deferred);
    });
    this.renderWindows();
    this.load();
  }

  /** The window this column shows. */
  get window(): string {
    return this.config.filters.window ?? '1h';
  }

  private renderWindows(): void {
    this.windowPicker.replaceChildren();
    const label = document.createElement('span');
    label.textContent = `${t.window}:`;
    this.windowPicker.append(label);
    for (const window of WINDOWS) {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = window;
      button.setAttribute('aria-pressed', String(window === this.window));
      button.addEventListener('click', () => this.host.configChanged({ ...this.config, filters: { ...this.config.filters, window } }));
      this.windowPicker.append(button);
    }
  }

  /** Fetches the ranking over HTTP, then asks the socket for updates. */
  load(): void {
    this.setState('loading');
    const window = this.window;
    fetchTrends(window).then(
      (trends) => {
        if (window !== this.window) return;
        this.show(trends);
        this.subscribe();
      },
      (error) => {
        const message = error instanceof ApiError ? error.body.error : String(error);
        this.setState(error instanceof ApiError && error.status === 429 ? 'rate_limited' : 'failed', message);
        setTimeout(() => this.load(), 10_000);
      },
    );
  }

  /** (Re)subscribes to ranking updates. */
  subscribe(): void {
    if (this.host.stream.send({ type: 'subscribe_trends', window: this.window })) this.setState('live');
    else this.setState('offline');
  }

  /** The stream went down. */
  offline(detail: string): void {
    this.setState('offline', detail);
  }

  /** A live ranking. */
  update(trends: TrendsResponse): void {
    if (trends.window && trends.window !== this.window) return;
    if (this.state !== 'live') this.setState('live');
    if (this.hovering) this.deferred = trends;
    else this.show(trends);
  }

  private show(trends: TrendsResponse): void {
    this.deferred = null;
    this.trends = trends;
    this.el.setAttribute('aria-busy', 'false');
    this.body.replaceChildren();
    const hashtags = document.createElement('section');
    hashtags.className = 'trends-section';
    const heading = document.createElement('h3');
    heading.textContent = t.hashtags;
    const list = document.createElement('ol');
    list.className = 'trends-hashtags';
    for (const row of trends.hashtags.slice(0, 15)) {
      const item = document.createElement('li');
      const link = document.createElement('a');
      link.href = `#/tag/${encodeURIComponent(row.tag)}`;
      link.className = 'link-hashtag';
      link.dataset.hashtag = row.tag;
      link.textContent = `#${row.tag}`;
      link.addEventListener('click', (event) => {
        event.preventDefault();
        this.host.cards.hashtag(row.tag);
      });
      const count = document.createElement('span');
      count.className = 'trend-count';
      count.textContent = t.postsCount(formatCount(row.count));
      item.append(link, count);
      list.append(item);
    }
    hashtags.append(heading, list);
    this.body.append(hashtags);
    if (trends.trending.length > 0) {
      const rising = document.createElement('section');
      rising.className = 'trends-section';
      const risingHeading = document.createElement('h3');
      risingHeading.textContent = t.trending;
      const risingList = document.createElement('ol');
      risingList.className = 'trends-rising';
      for (const row of trends.trending.slice(0, 8)) {
        const item = document.createElement('li');
        const link = document.createElement('a');
        link.href = `#/tag/${encodeURIComponent(row.tag)}`;
        link.className = 'link-hashtag';
        link.textContent = `#${row.tag}`;
        link.addEventListener('click', (event) => {
          event.preventDefault();
          this.host.cards.hashtag(row.tag);
        });
        const reading = readTrend(row);
        const score = document.createElement('span');
        score.className = `trend-count trend-${reading.kind}`;
        score.textContent = trendText(reading, t, formatCount);
        item.append(link, score);
        risingList.append(item);
      }
      rising.append(risingHeading, risingList);
      this.body.append(rising);
    }
    const top = document.createElement('section');
    top.className = 'trends-section';
    const topHeading = document.createElement('h3');
    topHeading.textContent = t.topRetweeted;
    top.append(topHeading);
    for (const row of trends.top_retweeted.slice(0, 10)) {
      const card = renderCard({ key: row.post.id, post: row.post, retweeters: [] }, this.host.cards);
      const badge = document.createElement('div');
      badge.className = 'post-retweeted-by';
      badge.textContent = `⟲ ${t.retweetsCount(formatCount(row.count))}`;
      card.prepend(badge);
      top.append(card);
    }
    this.body.append(top);
  }

  private setState(state: ColumnState, detail = ''): void {
    this.state = state;
    this.detail = detail;
    this.header.setState(state, detail);
  }

  private toggleSettings(): void {
    if (this.settings) {
      this.settings.remove();
      this.settings = null;
      this.header.settingsButton.setAttribute('aria-expanded', 'false');
      return;
    }
    this.settings = renderSettings(this.config, true, (next) => this.host.configChanged(next), () => this.toggleSettings());
    this.header.el.after(this.settings);
    this.header.settingsButton.setAttribute('aria-expanded', 'true');
  }

  /** Applies a new configuration. */
  applyConfig(next: ColumnConfig): void {
    const windowChanged = (next.filters.window ?? '1h') !== this.window;
    this.config = next;
    this.el.style.setProperty('--column-width', `${next.width}px`);
    this.header.setConfig(next);
    if (this.settings) this.toggleSettings();
    this.renderWindows();
    if (windowChanged) this.load();
  }

  /** Redraws after a language switch. */
  relabel(): void {
    this.header.relabel();
    if (this.settings) this.toggleSettings();
    this.renderWindows();
    this.header.setState(this.state, this.detail);
    if (this.trends) this.show(this.trends);
  }

  /** Updates relative times. */
  tick(): void {
    refreshTimes(this.body);
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

  /** Stops the column for good. */
  destroy(): void {
    this.el.remove();
  }
}
