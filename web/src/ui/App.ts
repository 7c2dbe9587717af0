// App: the deck page — the row of columns and the deck they belong to, the
// WebSocket that feeds them, keyboard shortcuts (mapped in
// `logic/shortcuts.ts`), and the hash routes of deep and mailed links. The
// bar above the deck is `TopBar`.

import { ApiError, fetchTimeline } from '../api';
import type { Post } from '../bindings/Post';
import type { ServerMessage } from '../bindings/ServerMessage';
import { clearLocalDecks, deckFromLink, loadLibrary, MAX_DECKS, loadServerLibrary, newColumnId, persistDeck, pushDeckNow, saveLibrary, WIDTHS, type ColumnConfig, type DeckConfig, type DeckLibrary } from '../deck';
import { addDeck, freshLibrary, openDeck, removeDeck, renameDeck, storeOpenDeck } from '../logic/library';
import { DecksDialog } from './DecksDialog';
import { notifyPost } from './notifications';
import { applyTheme, initialTheme } from './theme';
import { ColumnSwitcher } from './ColumnSwitcher';
import { lang, setLang, t } from '../i18n';
import { parseRoute, sameQuery } from '../logic/routes';
import { shortcutFor } from '../logic/shortcuts';
import { errorText } from '../logic/errors';
import { signedInEmail } from '../session';
import { Stream, type StreamState } from '../stream';
import { AccountDialog } from './AccountDialog';
import { Column, type Preloaded } from './Column';
import type { CardHandlers } from './PostCard';
import { TrendsColumn } from './TrendsColumn';
import { PostDetail } from './PostDetail';
import { AddColumnPanel } from './AddColumnPanel';
import { Toast } from './Toast';
import { TopBar } from './TopBar';
import { el } from './dom';

type AnyColumn = Column | TrendsColumn;

/** The whole page. */
export class App {
  private deck: DeckConfig;
  private library: DeckLibrary;
  private readonly decksDialog: DecksDialog;
  private readonly switcher: ColumnSwitcher;
  private readonly columns = new Map<string, AnyColumn>();
  private readonly stream: Stream;
  private readonly deckEl: HTMLElement;
  private readonly topBar: TopBar;
  private readonly account: AccountDialog;
  private readonly cards: CardHandlers;
  private readonly detail: PostDetail;
  private readonly addPanel: AddColumnPanel;
  private readonly toast: Toast;
  private focusedId: string | null = null;
  private streamDetail = '';

  constructor(private readonly root: HTMLElement) {
    this.cards = {
      hashtag: (tag) => this.openQuery(`#${tag}`),
      mention: (handle) => this.openQuery(`from:${handle}`),
      cashtag: (tag) => this.openQuery(`$${tag}`),
      user: (handle) => this.openQuery(`from:${handle}`),
      open: (post, via) => this.detail.open(post, via),
    };
    this.detail = new PostDetail(
      {
        find: (id) => {
          for (const column of this.columns.values()) {
            const found = column instanceof Column ? column.find(id) : undefined;
            if (found) return found;
          }
          return undefined;
        },
        repliesTo: (id) => [...this.columns.values()].flatMap((column) => (column instanceof Column ? column.repliesTo(id) : [])),
      },
      this.cards,
    );
    this.library = loadLibrary(t.deckName(1)) ?? freshLibrary(t.trends, t.deckName(1));
    this.deck = openDeck(this.library);
    applyTheme(initialTheme(), false);

    this.topBar = new TopBar({
      search: (query) => this.search(query),
      switchLang: () => this.switchLang(lang() === 'ko' ? 'en' : 'ko'),
      openDecks: () => this.decksDialog.open(),
      openAccount: () => this.account.open(signedInEmail() ? 'account' : 'login'),
    });

    this.deckEl = el('main', 'deck');
    this.deckEl.id = 'deck';
    this.deckEl.setAttribute('aria-label', t.columns);
    this.deckEl.tabIndex = -1;
    this.account = new AccountDialog(() => void this.afterLogin(), () => this.afterLogout());
    this.addPanel = new AddColumnPanel({ query: (query) => this.openQuery(query), trends: () => this.addTrends() });
    this.toast = new Toast();
    this.decksDialog = new DecksDialog({
      library: () => this.library,
      switchTo: (id) => this.switchDeck(id),
      create: (name) => this.importDeck({ columns: [] }, name),
      rename: (id, name) => {
        if (!renameDeck(this.library, id, name)) return;
        saveLibrary(this.library);
        this.relabel();
      },
      remove: (id) => {
        const removed = removeDeck(this.library, id);
        if (removed.kind === 'open') this.switchDeck(removed.id);
        else if (removed.kind === 'saved') saveLibrary(this.library);
      },
      setMutes: (mutes) => {
        this.deck.mutes = mutes.length > 0 ? mutes : undefined;
        this.save();
        for (const column of this.columns.values()) column.applyConfig(column.config);
      },
      importDeck: (deck, name) => this.importDeck(deck, name),
    });
    this.switcher = new ColumnSwitcher(this.deckEl, (id) => {
      this.focusColumn(id);
      this.columns.get(id)?.el.scrollIntoView({ behavior: 'smooth', block: 'nearest', inline: 'start' });
    });
    root.append(this.topBar.el, this.deckEl, this.switcher.el, this.topBar.helpDialog, this.account.el, this.detail.el, this.decksDialog.el, this.toast.el);
    this.wireSideways();

    this.stream = new Stream({
      open: () => this.onStreamOpen(),
      message: (message) => this.onMessage(message),
      state: (state, detail) => this.onStreamState(state, detail),
    });
    this.deckEl.append(this.addPanel.el);
    this.relabel();
    for (const config of this.deck.columns) this.mountColumn(config);
    this.stream.start();
    this.save();

    document.addEventListener('keydown', (event) => this.onKey(event));
    window.addEventListener('hashchange', () => this.route());
    setInterval(() => {
      for (const column of this.columns.values()) column.tick();
    }, 15_000);
    this.route();
    if (signedInEmail()) void this.restoreServerDeck(false);
  }

  // ----- columns -----

  private mountColumn(config: ColumnConfig, preloaded?: Preloaded, before?: HTMLElement): AnyColumn {
    const host = {
      stream: this.stream,
      cards: this.cards,
      remove: (id: string) => this.removeColumn(id),
      move: (id: string, delta: number) => this.moveColumn(id, delta),
      moveTo: (id: string, targetId: string) => this.moveColumnTo(id, targetId),
      resized: (id: string, width: number) => this.updateConfig({ ...this.configOf(id), width }),
      configChanged: (next: ColumnConfig) => this.updateConfig(next),
      notify: (columnConfig: ColumnConfig, post: Post) => this.notify(columnConfig, post),
      deckMutes: () => this.deck.mutes ?? [],
    };
    const column = config.filters.kind === 'trends' ? new TrendsColumn(config, host) : new Column(config, host, preloaded);
    this.columns.set(config.id, column);
    column.el.addEventListener('focusin', () => (this.focusedId = config.id));
    // The "add column" panel stays last.
    this.deckEl.insertBefore(column.el, before ?? this.addPanel.el);
    return column;
  }

  private configOf(id: string): ColumnConfig {
    const config = this.deck.columns.find((column) => column.id === id);
    if (!config) throw new Error(`no column ${id}`);
    return config;
  }

  /** The open post column whose base query is `query` (case and spacing aside), if any. */
  private findColumn(query: string): ColumnConfig | undefined {
    return this.deck.columns.find((config) => config.filters.kind !== 'trends' && sameQuery(config.query, query));
  }

  /** Focuses the column of `query` when it is open, else adds it. */
  openQuery(query: string, preloaded?: Preloaded): void {
    const open = this.findColumn(query);
    if (open) {
      this.focusColumn(open.id);
      this.columns.get(open.id)?.el.scrollIntoView({ behavior: 'smooth', block: 'nearest', inline: 'nearest' });
      return;
    }
    this.addColumn(query, preloaded);
  }

  /** Adds a post column at the end of the deck and brings it into view. Its title follows its query until renamed. */
  addColumn(query: string, preloaded?: Preloaded): void {
    const config: ColumnConfig = { id: newColumnId(), title: query.trim(), query: query.trim(), width: WIDTHS.medium, filters: {} };
    this.deck.columns.push(config);
    const column = this.mountColumn(config, preloaded);
    this.save();
    column.el.scrollIntoView({ behavior: 'smooth', block: 'nearest', inline: 'end' });
    this.focusedId = config.id;
  }

  private removeColumn(id: string): void {
    const column = this.columns.get(id);
    if (!column) return;
    const index = this.deck.columns.findIndex((c) => c.id === id);
    const config = this.deck.columns[index];
    column.destroy();
    this.columns.delete(id);
    this.deck.columns = this.deck.columns.filter((c) => c.id !== id);
    this.save();
    const neighbour = this.deck.columns[Math.min(index, this.deck.columns.length - 1)];
    if (neighbour) this.focusColumn(neighbour.id);
    // Undo puts the column back where it was, with its settings.
    this.toast.show(t.columnRemoved(this.columnTitle(config)), t.undo, () => {
      if (this.columns.has(config.id)) return;
      const at = Math.min(index, this.deck.columns.length);
      this.deck.columns.splice(at, 0, config);
      const next = this.deck.columns[at + 1];
      this.mountColumn(config, undefined, next ? this.columns.get(next.id)?.el : undefined);
      this.save();
      this.focusColumn(config.id);
    });
  }

  private columnTitle(config: ColumnConfig): string {
    return this.columns.get(config.id)?.el.getAttribute('aria-label') ?? (config.title || config.query);
  }

  /** Adds the trends column (or focuses the one that is open). */
  private addTrends(): void {
    const open = this.deck.columns.find((config) => config.filters.kind === 'trends');
    if (open) {
      this.focusColumn(open.id);
      return;
    }
    const config: ColumnConfig = { id: newColumnId(), title: t.trends, query: '', width: WIDTHS.medium, filters: { kind: 'trends', window: '1h' } };
    this.deck.columns.push(config);
    this.mountColumn(config);
    this.save();
    this.focusColumn(config.id);
  }

  /**
   * Sideways scrolling anywhere on the deck: a horizontal wheel or trackpad
   * swipe, or Shift+wheel, moves the deck even over a column's posts (whose
   * own scrolling is vertical only and does not chain).
   */
  private wireSideways(): void {
    this.deckEl.addEventListener(
      'wheel',
      (event) => {
        if (event.ctrlKey) return;
        const sideways = Math.abs(event.deltaX) > Math.abs(event.deltaY) ? event.deltaX : event.shiftKey ? event.deltaY || event.deltaX : 0;
        if (sideways === 0) return;
        const scale = event.deltaMode === 1 ? 40 : event.deltaMode === 2 ? this.deckEl.clientWidth : 1;
        event.preventDefault();
        this.deckEl.scrollBy({ left: sideways * scale });
      },
      { passive: false },
    );
  }

  private moveColumn(id: string, delta: number): void {
    const index = this.deck.columns.findIndex((c) => c.id === id);
    const target = index + delta;
    if (index < 0 || target < 0 || target >= this.deck.columns.length) return;
    this.moveColumnTo(id, this.deck.columns[target].id);
    this.columns.get(id)?.el.querySelector<HTMLElement>(delta < 0 ? '.move-left' : '.move-right')?.focus();
  }

  private moveColumnTo(id: string, targetId: string): void {
    const from = this.deck.columns.findIndex((c) => c.id === id);
    const to = this.deck.columns.findIndex((c) => c.id === targetId);
    if (from < 0 || to < 0 || from === to) return;
    const [config] = this.deck.columns.splice(from, 1);
    this.deck.columns.splice(to, 0, config);
    this.reorderDom();
    this.save();
  }

  private reorderDom(): void {
    for (const config of this.deck.columns) {
      const column = this.columns.get(config.id);
      if (column) this.deckEl.append(column.el);
    }
  }

  private updateConfig(next: ColumnConfig): void {
    const index = this.deck.columns.findIndex((c) => c.id === next.id);
    if (index < 0) return;
    this.deck.columns[index] = next;
    this.columns.get(next.id)?.applyConfig(next);
    this.save();
  }

  private updateSwitcher(): void {
    if (!this.switcher) return;
    this.switcher.update(
      this.deck.columns.map((config) => ({ id: config.id, title: this.columnTitle(config) })),
      t.columns,
    );
  }

  /** Opens another deck of the library. */
  private switchDeck(id: string): void {
    if (!this.library.decks.some((deck) => deck.id === id)) return;
    this.library.current = id;
    this.replaceDeck(openDeck(this.library));
    this.relabel();
  }

  /** Adds a deck (new, a shared link or an imported file) to the library and opens it; false when the library is full. */
  private importDeck(deck: DeckConfig, name: string): boolean {
    const id = addDeck(this.library, deck, name);
    if (id === null) return false;
    this.switchDeck(id);
    return true;
  }

  private save(): void {
    storeOpenDeck(this.library, this.deck);
    saveLibrary(this.library);
    this.updateSwitcher();
    persistDeck(this.deck, this.library, (error) => {
      if (error instanceof ApiError && error.status === 401) this.refreshAccount();
    });
  }

  /** Replaces every column with another deck (after login). */
  private replaceDeck(deck: DeckConfig): void {
    for (const column of this.columns.values()) column.destroy();
    this.columns.clear();
    this.deck = deck;
    if (!this.addPanel.el.isConnected) this.deckEl.append(this.addPanel.el);
    for (const config of deck.columns) this.mountColumn(config);
    this.save();
  }

  // ----- search -----

  /** Validates a query against the server, then adds it as a column (or shows the error at its position). */
  private async search(query: string): Promise<void> {
    if (this.findColumn(query)) {
      this.openQuery(query);
      this.topBar.searchBox.done();
      return;
    }
    try {
      const page = await fetchTimeline(query, null, 40);
      this.openQuery(query, { posts: page.posts, next: page.next });
      this.topBar.searchBox.done();
    } catch (error) {
      if (error instanceof ApiError && error.status === 400) {
        this.topBar.searchBox.showQueryError(query, errorText(error.body.code, error.body.error, lang()), error.body.position);
      } else {
        this.topBar.searchBox.showError(error instanceof ApiError ? errorText(error.body.code, error.body.error, lang()) : t.error);
      }
    }
  }

  // ----- stream -----

  private onStreamOpen(): void {
    for (const column of this.columns.values()) column.subscribe();
  }

  private onStreamState(state: StreamState, detail: { retryAt?: number; reason?: string }): void {
    this.streamDetail = state === 'offline' && detail.retryAt ? t.retryIn(Math.max(1, Math.round((detail.retryAt - Date.now()) / 1000))) : '';
    this.topBar.showConnection(state, [detail.reason ?? '', this.streamDetail]);
    if (state === 'offline') {
      for (const column of this.columns.values()) column.offline([detail.reason, this.streamDetail].filter(Boolean).join(', '));
    }
  }

  private onMessage(message: ServerMessage): void {
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

  private notify(config: ColumnConfig, post: Post): void {
    notifyPost(config.id, this.columnTitle(config), post);
  }

  // ----- accounts -----

  private async afterLogin(): Promise<void> {
    this.refreshAccount();
    this.stream.reconnectNow();
    await this.restoreServerDeck(true);
  }

  /** Restores the signed-in user's decks (the library, and the deck it has open); a user without any gets this browser's saved. */
  private async restoreServerDeck(pushIfNone: boolean): Promise<void> {
    try {
      const saved = await loadServerLibrary(t.deckName(1));
      if (saved) {
        this.library = saved;
        saveLibrary(this.library);
        this.replaceDeck(openDeck(this.library));
        this.relabel();
      } else if (pushIfNone) {
        await pushDeckNow(this.deck, this.library);
      }
    } catch {
      // The deck in this browser stays; the next change tries the server again.
    }
  }

  /** Logging out leaves nothing of the reader's decks and mutes on this machine. */
  private afterLogout(): void {
    clearLocalDecks();
    this.library = freshLibrary(t.trends, t.deckName(1));
    this.replaceDeck(openDeck(this.library));
    this.refreshAccount();
    this.relabel();
    this.stream.reconnectNow();
  }

  private refreshAccount(): void {
    const email = signedInEmail();
    this.topBar.showAccount(email);
    this.root.dataset.signedIn = String(email !== null);
  }

  /**
   * Follows the location hash: deep links open (or focus) a column
   * (`#/tag/X`, `#/user/x`, `#/search?q=…`), mailed links open the account
   * dialogs (`#/verify?token=…`, `#/reset?token=…`).
   */
  private route(): void {
    const route = parseRoute(location.hash);
    switch (route.kind) {
      case 'column':
        this.openQuery(route.query);
        break;
      case 'verify':
        this.account.open('verify', route.token);
        history.replaceState(null, '', location.pathname);
        break;
      case 'reset':
        this.account.open('reset-confirm', route.token);
        history.replaceState(null, '', location.pathname);
        break;
      case 'login':
      case 'signup':
        this.account.open(route.kind);
        break;
      case 'deck': {
        const shared = deckFromLink(route.data);
        history.replaceState(null, '', location.pathname);
        // A full library cannot take it: the decks dialog says so.
        if (shared && !this.importDeck(shared, t.sharedDeck)) this.decksDialog.open(t.decksFull(MAX_DECKS));
        break;
      }
      default:
        break;
    }
  }

  // ----- language and theme -----

  private switchLang(next: 'en' | 'ko'): void {
    const oldTrends = t.trends;
    setLang(next, true);
    // The default trends title follows the language; a renamed one stays.
    for (const config of this.deck.columns) {
      if (config.filters.kind === 'trends' && config.title === oldTrends) this.updateConfig({ ...config, title: t.trends });
    }
    this.relabel();
    for (const column of this.columns.values()) column.relabel();
    this.account.relabel();
    this.addPanel.relabel();
  }

  private relabel(): void {
    const open = this.library.decks.find((deck) => deck.id === this.library.current);
    this.topBar.relabel(open?.name, this.stream.state);
    this.deckEl.setAttribute('aria-label', t.columns);
    this.updateSwitcher();
    this.refreshAccount();
    document.title = 'Deck';
  }

  // ----- keyboard -----

  private focusColumn(id: string): void {
    this.focusedId = id;
    this.columns.get(id)?.focus();
  }

  private focusedIndex(): number {
    const index = this.deck.columns.findIndex((c) => c.id === this.focusedId);
    return index < 0 ? 0 : index;
  }

  private onKey(event: KeyboardEvent): void {
    const target = event.target as HTMLElement;
    const columns = this.deck.columns;
    const index = this.focusedIndex();
    const shortcut = shortcutFor(
      {
        key: event.key,
        altKey: event.altKey,
        ctrlKey: event.ctrlKey,
        metaKey: event.metaKey,
        typing: target.closest('input, textarea, select, [contenteditable="true"]') !== null,
        onResizeHandle: target.closest('.resize-handle') !== null,
      },
      index,
      columns.length,
    );
    if (!shortcut) return;
    const current = columns[index] ? this.columns.get(columns[index].id) : undefined;
    // `n` leaves the key to the page too, as it always did.
    if (shortcut.kind !== 'show-new') event.preventDefault();
    switch (shortcut.kind) {
      case 'search':
        this.topBar.searchBox.input.focus();
        break;
      case 'help':
        this.topBar.showHelp();
        break;
      case 'move':
        if (current) this.moveColumn(current.config.id, shortcut.delta);
        current?.focus();
        break;
      case 'focus':
        this.focusColumn(columns[shortcut.index].id);
        break;
      case 'scroll':
        current?.scrollBy(shortcut.by);
        break;
      case 'show-new':
        if (current instanceof Column) current.showNew();
        break;
    }
  }
}
