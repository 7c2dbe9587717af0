// DeckView: the row of columns of the open deck. It mounts, adds, removes
// (with undo), moves and focuses columns, keeps the phone's column switcher
// and the "add column" panel beside them, moves the deck sideways on a
// horizontal wheel, and hands each stream message to the columns it is for.
// What the deck is (its config, where it is saved) belongs to `App`.

import type { Post } from '../bindings/Post';
import type { ServerMessage } from '../bindings/ServerMessage';
import { newColumnId, WIDTHS, type ColumnConfig, type DeckConfig } from '../deck';
import { t } from '../i18n';
import { sameQuery } from '../logic/routes';
import type { Stream } from '../stream';
import { AddColumnPanel } from './AddColumnPanel';
import { Column, type Preloaded } from './Column';
import { ColumnSwitcher } from './ColumnSwitcher';
import { el } from './dom';
import { notifyPost } from './notifications';
import type { CardHandlers } from './PostCard';
import type { Toast } from './Toast';
import { TrendsColumn } from './TrendsColumn';

type AnyColumn = Column | TrendsColumn;

/** What the row of columns needs from the page. */
export interface DeckViewHost {
  readonly stream: Stream;
  readonly cards: CardHandlers;
  readonly toast: Toast;
  /** The deck's columns changed (added, removed, moved, reconfigured): save it. */
  saved(): void;
}

/** The columns of the open deck, in a row. */
export class DeckView {
  readonly el: HTMLElement;
  readonly switcher: ColumnSwitcher;
  readonly addPanel: AddColumnPanel;
  private readonly columns = new Map<string, AnyColumn>();
  private focusedId: string | null = null;

  constructor(
    private deck: DeckConfig,
    private readonly host: DeckViewHost,
  ) {
    this.el = el('main', 'deck');
    this.el.id = 'deck';
    this.el.setAttribute('aria-label', t.columns);
    this.el.tabIndex = -1;
    this.addPanel = new AddColumnPanel({ query: (query) => this.openQuery(query), trends: () => this.addTrends() });
    this.switcher = new ColumnSwitcher(this.el, (id) => {
      this.focus(id);
      this.columns.get(id)?.el.scrollIntoView({ behavior: 'smooth', block: 'nearest', inline: 'start' });
    });
    this.wireSideways();
    this.el.append(this.addPanel.el);
    for (const config of deck.columns) this.mount(config);
  }

  /** The open deck (its columns in order, and its mutes). */
  get config(): DeckConfig {
    return this.deck;
  }

  /** Replaces every column with another deck's. */
  replace(deck: DeckConfig): void {
    for (const column of this.columns.values()) column.destroy();
    this.columns.clear();
    this.deck = deck;
    if (!this.addPanel.el.isConnected) this.el.append(this.addPanel.el);
    for (const config of deck.columns) this.mount(config);
  }

  private mount(config: ColumnConfig, preloaded?: Preloaded, before?: HTMLElement): AnyColumn {
    const host = {
      stream: this.host.stream,
      cards: this.host.cards,
      remove: (id: string) => this.remove(id),
      move: (id: string, delta: number) => this.move(id, delta),
      moveTo: (id: string, targetId: string) => this.moveTo(id, targetId),
      resized: (id: string, width: number) => this.updateConfig({ ...this.configOf(id), width }),
      configChanged: (next: ColumnConfig) => this.updateConfig(next),
      notify: (columnConfig: ColumnConfig, post: Post) => notifyPost(columnConfig.id, this.titleOf(columnConfig), post),
      deckMutes: () => this.deck.mutes ?? [],
    };
    const column = config.filters.kind === 'trends' ? new TrendsColumn(config, host) : new Column(config, host, preloaded);
    this.columns.set(config.id, column);
    column.el.addEventListener('focusin', () => (this.focusedId = config.id));
    // The "add column" panel stays last.
    this.el.insertBefore(column.el, before ?? this.addPanel.el);
    return column;
  }

  private configOf(id: string): ColumnConfig {
    const config = this.deck.columns.find((column) => column.id === id);
    if (!config) throw new Error(`no column ${id}`);
    return config;
  }

  /** The open post column whose base query is `query` (case and spacing aside), if any. */
  findQuery(query: string): ColumnConfig | undefined {
    return this.deck.columns.find((config) => config.filters.kind !== 'trends' && sameQuery(config.query, query));
  }

  /** Focuses the column of `query` when it is open, else adds it. */
  openQuery(query: string, preloaded?: Preloaded): void {
    const open = this.findQuery(query);
    if (open) {
      this.focus(open.id);
      this.columns.get(open.id)?.el.scrollIntoView({ behavior: 'smooth', block: 'nearest', inline: 'nearest' });
      return;
    }
    this.add(query, preloaded);
  }

  /** Adds a post column at the end of the deck and brings it into view. Its title follows its query until renamed. */
  private add(query: string, preloaded?: Preloaded): void {
    const config: ColumnConfig = { id: newColumnId(), title: query.trim(), query: query.trim(), width: WIDTHS.medium, filters: {} };
    this.deck.columns.push(config);
    const column = this.mount(config, preloaded);
    this.host.saved();
    column.el.scrollIntoView({ behavior: 'smooth', block: 'nearest', inline: 'end' });
    this.focusedId = config.id;
  }

  /** Removes a column; the toast's Undo puts it back where it was, with its settings. */
  private remove(id: string): void {
    const column = this.columns.get(id);
    if (!column) return;
    const index = this.deck.columns.findIndex((c) => c.id === id);
    const config = this.deck.columns[index];
    column.destroy();
    this.columns.delete(id);
    this.deck.columns = this.deck.columns.filter((c) => c.id !== id);
    this.host.saved();
    const neighbour = this.deck.columns[Math.min(index, this.deck.columns.length - 1)];
    if (neighbour) this.focus(neighbour.id);
    this.host.toast.show(t.columnRemoved(this.titleOf(config)), t.undo, () => {
      if (this.columns.has(config.id)) return;
      const at = Math.min(index, this.deck.columns.length);
      this.deck.columns.splice(at, 0, config);
      const next = this.deck.columns[at + 1];
      this.mount(config, undefined, next ? this.columns.get(next.id)?.el : undefined);
      this.host.saved();
      this.focus(config.id);
    });
  }

  /** A column's title as its header shows it. */
  private titleOf(config: ColumnConfig): string {
    return this.columns.get(config.id)?.el.getAttribute('aria-label') ?? (config.title || config.query);
  }

  /** Adds the trends column (or focuses the one that is open). */
  private addTrends(): void {
    const open = this.deck.columns.find((config) => config.filters.kind === 'trends');
    if (open) {
      this.focus(open.id);
      return;
    }
    const config: ColumnConfig = { id: newColumnId(), title: t.trends, query: '', width: WIDTHS.medium, filters: { kind: 'trends', window: '1h' } };
    this.deck.columns.push(config);
    this.mount(config);
    this.host.saved();
    this.focus(config.id);
  }

  /**
   * Sideways scrolling anywhere on the deck: a horizontal wheel or trackpad
   * swipe, or Shift+wheel, moves the deck even over a column's posts (whose
   * own scrolling is vertical only and does not chain).
   */
  private wireSideways(): void {
    this.el.addEventListener(
      'wheel',
      (event) => {
        if (event.ctrlKey) return;
        const sideways = Math.abs(event.deltaX) > Math.abs(event.deltaY) ? event.deltaX : event.shiftKey ? event.deltaY || event.deltaX : 0;
        if (sideways === 0) return;
        const scale = event.deltaMode === 1 ? 40 : event.deltaMode === 2 ? this.el.clientWidth : 1;
        event.preventDefault();
        this.el.scrollBy({ left: sideways * scale });
      },
      { passive: false },
    );
  }

  /** Moves a column `delta` places (keyboard or its header's buttons), keeping the focus on the button used. */
  move(id: string, delta: number): void {
    const index = this.deck.columns.findIndex((c) => c.id === id);
    const target = index + delta;
    if (index < 0 || target < 0 || target >= this.deck.columns.length) return;
    this.moveTo(id, this.deck.columns[target].id);
    this.columns.get(id)?.el.querySelector<HTMLElement>(delta < 0 ? '.move-left' : '.move-right')?.focus();
  }

  private moveTo(id: string, targetId: string): void {
    const from = this.deck.columns.findIndex((c) => c.id === id);
    const to = this.deck.columns.findIndex((c) => c.id === targetId);
    if (from < 0 || to < 0 || from === to) return;
    const [config] = this.deck.columns.splice(from, 1);
    this.deck.columns.splice(to, 0, config);
    for (const each of this.deck.columns) {
      const column = this.columns.get(each.id);
      if (column) this.el.append(column.el);
    }
    this.el.append(this.addPanel.el);
    this.host.saved();
  }

  /** Replaces a column's config (title, query, width, filters) and applies it. */
  updateConfig(next: ColumnConfig): void {
    const index = this.deck.columns.findIndex((c) => c.id === next.id);
    if (index < 0) return;
    this.deck.columns[index] = next;
    this.columns.get(next.id)?.applyConfig(next);
    this.host.saved();
  }

  /** The deck-wide mutes changed: every column applies them. */
  mutesChanged(): void {
    for (const column of this.columns.values()) column.applyConfig(column.config);
  }

  /** Names the columns in the phone's switcher. */
  updateSwitcher(): void {
    this.switcher.update(
      this.deck.columns.map((config) => ({ id: config.id, title: this.titleOf(config) })),
      t.columns,
    );
  }

  /** The labels of the row and of every column, in the current language. */
  relabel(): void {
    this.el.setAttribute('aria-label', t.columns);
    for (const column of this.columns.values()) column.relabel();
    this.addPanel.relabel();
    this.updateSwitcher();
  }

  focus(id: string): void {
    this.focusedId = id;
    this.columns.get(id)?.focus();
  }

  /** The index of the focused column (the first when none is). */
  focusedIndex(): number {
    const index = this.deck.columns.findIndex((c) => c.id === this.focusedId);
    return index < 0 ? 0 : index;
  }

  /** The mounted column at `index` of the deck, if any. */
  columnAt(index: number): AnyColumn | undefined {
    const config = this.deck.columns[index];
    return config ? this.columns.get(config.id) : undefined;
  }

  /** A post held by any column (for the detail view). */
  find(id: string): Post | undefined {
    for (const column of this.columns.values()) {
      const found = column instanceof Column ? column.find(id) : undefined;
      if (found) return found;
    }
    return undefined;
  }

  /** The replies to a post that any column holds. */
  repliesTo(id: string): Post[] {
    return [...this.columns.values()].flatMap((column) => (column instanceof Column ? column.repliesTo(id) : []));
  }

  /** Updates the relative times on screen. */
  tick(): void {
    for (const column of this.columns.values()) column.tick();
  }

  /** The socket is open: every column subscribes (again). */
  subscribeAll(): void {
    for (const column of this.columns.values()) column.subscribe();
  }

  /** The socket is down: every column says why. */
  offline(reason: string): void {
    for (const column of this.columns.values()) column.offline(reason);
  }

  /** Hands a stream message to the columns it is for. */
  dispatch(message: ServerMessage): void {
    switch (message.type) {
      case 'subscribed':
      case 'caught_up':
      case 'post':
      case 'resync':
        this.columnFor(message.column)?.handle(message);
        break;
      case 'error':
        if (message.column) this.columnFor(message.column)?.handle(message);
        break;
      case 'delete':
        for (const column of this.columns.values()) if (column instanceof Column) column.deletePost(message.id);
        break;
      case 'counts':
        for (const column of this.columns.values()) if (column instanceof Column) column.counts(message.id, message.retweet_count, message.like_count);
        break;
      case 'trends':
        for (const column of this.columns.values()) if (column instanceof TrendsColumn) column.update(message.trends);
        break;
      default:
        break;
    }
  }

  private columnFor(subscriptionId: string): Column | undefined {
    const id = subscriptionId.slice(0, subscriptionId.lastIndexOf('~'));
    const column = this.columns.get(id);
    return column instanceof Column && column.owns(subscriptionId) ? column : undefined;
  }
}
