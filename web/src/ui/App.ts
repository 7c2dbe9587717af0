// App: the deck page — the top bar (search box, connection indicator,
// language, theme, account), the row of columns, the WebSocket that feeds
// them, keyboard shortcuts, and the hash routes of mailed links.

import { ApiError, fetchTimeline } from '../api';
import type { Post } from '../bindings/Post';
import type { ServerMessage } from '../bindings/ServerMessage';
import { defaultDeck, loadLocalDeck, loadServerDeck, newColumnId, persistDeck, pushDeckNow, WIDTHS, type ColumnConfig, type DeckConfig } from '../deck';
import { lang, setLang, t } from '../i18n';
import { parseRoute, sameQuery } from '../logic/routes';
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

type AnyColumn = Column | TrendsColumn;

const THEME_KEY = 'deck.theme';

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The whole page. */
export class App {
  private deck: DeckConfig;
  private readonly columns = new Map<string, AnyColumn>();
  private readonly stream: Stream;
  private readonly deckEl: HTMLElement;
  private readonly searchInput: HTMLInputElement;
  private readonly searchError: HTMLElement;
  private readonly searchHelp: HTMLElement;
  private readonly connection: HTMLElement;
  private readonly accountButton: HTMLButtonElement;
  private readonly langButton: HTMLButtonElement;
  private readonly themeButton: HTMLButtonElement;
  private readonly helpDialog: HTMLDialogElement;
  private readonly account: AccountDialog;
  private readonly cards: CardHandlers;
  private readonly detail: PostDetail;
  private readonly addPanel: AddColumnPanel;
  private readonly toast: Toast;
  private focusedId: string | null = null;
  private lastNotification = 0;
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
    this.deck = loadLocalDeck() ?? defaultDeck(t.trends);
    this.applyTheme((localStorage.getItem(THEME_KEY) as 'dark' | 'light' | null) ?? (matchMedia('(prefers-color-scheme: light)').matches ? 'light' : 'dark'), false);

    const top = el('header', 'topbar');
    const brand = el('h1', 'brand', 'Deck');
    const searchForm = el('form', 'search');
    searchForm.setAttribute('role', 'search');
    this.searchInput = el('input', 'search-input');
    this.searchInput.type = 'search';
    this.searchInput.setAttribute('role', 'searchbox');
    this.searchInput.autocomplete = 'off';
    this.searchInput.spellcheck = false;
    this.searchInput.setAttribute('aria-describedby', 'search-help search-error');
    this.searchError = el('div', 'search-error');
    this.searchError.id = 'search-error';
    this.searchError.setAttribute('role', 'alert');
    this.searchHelp = el('div', 'search-help');
    this.searchHelp.id = 'search-help';
    searchForm.append(this.searchInput, this.searchHelp, this.searchError);
    searchForm.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.search(this.searchInput.value);
    });
    this.searchInput.addEventListener('input', () => {
      this.searchError.replaceChildren();
      this.searchInput.removeAttribute('aria-invalid');
    });
    this.searchInput.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') this.searchInput.blur();
    });

    this.connection = el('div', 'connection');
    this.connection.setAttribute('role', 'status');
    this.langButton = el('button', 'top-button lang-button');
    this.langButton.type = 'button';
    this.langButton.addEventListener('click', () => this.switchLang(lang() === 'ko' ? 'en' : 'ko'));
    this.themeButton = el('button', 'top-button theme-button');
    this.themeButton.type = 'button';
    this.themeButton.addEventListener('click', () => this.applyTheme(document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark', true));
    const helpButton = el('button', 'top-button help-button', '?');
    helpButton.type = 'button';
    helpButton.addEventListener('click', () => this.showHelp());
    this.accountButton = el('button', 'top-button account-button');
    this.accountButton.type = 'button';
    this.accountButton.addEventListener('click', () => this.account.open(signedInEmail() ? 'account' : 'login'));
    const tools = el('div', 'tools');
    tools.append(this.connection, this.langButton, this.themeButton, helpButton, this.accountButton);
    top.append(brand, searchForm, tools);

    this.deckEl = el('main', 'deck');
    this.deckEl.id = 'deck';
    this.deckEl.setAttribute('aria-label', t.columns);
    this.deckEl.tabIndex = -1;
    this.helpDialog = el('dialog', 'help-dialog');
    this.helpDialog.addEventListener('click', () => this.helpDialog.close());
    this.account = new AccountDialog(() => void this.afterLogin(), () => this.afterLogout());
    this.addPanel = new AddColumnPanel({ query: (query) => this.openQuery(query), trends: () => this.addTrends() });
    this.toast = new Toast();
    root.append(top, this.deckEl, this.helpDialog, this.account.el, this.detail.el, this.toast.el);
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

  private save(): void {
    persistDeck(this.deck, (error) => {
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
  private async search(raw: string): Promise<void> {
    const query = raw.trim();
    if (!query) return;
    this.searchError.replaceChildren();
    if (this.findColumn(query)) {
      this.openQuery(query);
      this.searchInput.value = '';
      return;
    }
    try {
      const page = await fetchTimeline(query, null, 40);
      this.openQuery(query, { posts: page.posts, next: page.next });
      this.searchInput.value = '';
    } catch (error) {
      if (error instanceof ApiError && error.status === 400) {
        this.showQueryError(query, errorText(error.body.code, error.body.error, lang()), error.body.position);
      } else {
        this.searchError.textContent = error instanceof ApiError ? errorText(error.body.code, error.body.error, lang()) : t.error;
      }
    }
  }

  private showQueryError(query: string, message: string, position: number | null | undefined): void {
    this.searchInput.setAttribute('aria-invalid', 'true');
    const text = el('span', 'search-error-message', `${t.badQuery}: ${message}`);
    this.searchError.replaceChildren(text);
    if (position !== undefined && position !== null) {
      const chars = [...query];
      const at = Math.min(Math.max(0, position), chars.length);
      const shown = el('code', 'search-error-query');
      shown.append(chars.slice(0, at).join(''));
      const mark = el('mark', 'search-error-position', chars[at] ?? ' ');
      shown.append(mark, chars.slice(at + 1).join(''));
      this.searchError.append(shown);
      this.searchInput.focus();
      // Put the caret where the mistake is.
      const utf16 = chars.slice(0, at).join('').length;
      this.searchInput.setSelectionRange(utf16, utf16 + (chars[at]?.length ?? 0));
    }
  }

  // ----- stream -----

  private onStreamOpen(): void {
    for (const column of this.columns.values()) column.subscribe();
  }

  private onStreamState(state: StreamState, detail: { retryAt?: number; reason?: string }): void {
    this.connection.dataset.state = state;
    const label = state === 'open' ? t.connected : state === 'connecting' ? t.connecting : t.disconnected;
    this.streamDetail = state === 'offline' && detail.retryAt ? t.retryIn(Math.max(1, Math.round((detail.retryAt - Date.now()) / 1000))) : '';
    this.connection.textContent = label;
    this.connection.title = [label, detail.reason, this.streamDetail].filter(Boolean).join(' — ');
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

  // ----- notifications -----

  private notify(config: ColumnConfig, post: Post): void {
    if (typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
    const now = Date.now();
    // One notification every few seconds at most: a busy column must not flood the desktop.
    if (now - this.lastNotification < 5_000) return;
    this.lastNotification = now;
    const shown = post.retweeted ?? post;
    new Notification(`${config.title} — ${shown.author.name} @${shown.author.handle}`, { body: shown.text, tag: `deck-${config.id}` });
  }

  // ----- accounts -----

  private async afterLogin(): Promise<void> {
    this.refreshAccount();
    this.stream.reconnectNow();
    await this.restoreServerDeck(true);
  }

  /** Restores the signed-in user's deck; a user without one gets the current deck saved. */
  private async restoreServerDeck(pushIfNone: boolean): Promise<void> {
    try {
      const saved = await loadServerDeck();
      if (saved) this.replaceDeck(saved);
      else if (pushIfNone) await pushDeckNow(this.deck);
    } catch {
      // The deck in this browser stays; the next change tries the server again.
    }
  }

  private afterLogout(): void {
    this.refreshAccount();
    this.stream.reconnectNow();
  }

  private refreshAccount(): void {
    const email = signedInEmail();
    this.accountButton.textContent = email ? email.split('@')[0] : t.signIn;
    this.accountButton.title = email ? t.signedInAs(email) : t.signIn;
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
    this.searchInput.placeholder = t.searchPlaceholder;
    this.searchInput.setAttribute('aria-label', t.search);
    this.searchHelp.textContent = t.searchHelp;
    this.langButton.textContent = lang() === 'ko' ? 'English' : '한국어';
    this.langButton.setAttribute('aria-label', lang() === 'ko' ? 'Switch to English' : '한국어로 보기');
    this.langButton.lang = lang() === 'ko' ? 'en' : 'ko';
    this.themeButton.textContent = document.documentElement.dataset.theme === 'dark' ? `☀ ${t.light}` : `☾ ${t.dark}`;
    this.deckEl.setAttribute('aria-label', t.columns);
    this.connection.textContent = this.stream.state === 'open' ? t.connected : this.stream.state === 'connecting' ? t.connecting : t.disconnected;
    this.refreshAccount();
    document.title = 'Deck';
  }

  private applyTheme(theme: 'dark' | 'light', persist: boolean): void {
    document.documentElement.dataset.theme = theme;
    document.documentElement.style.colorScheme = theme;
    if (persist) localStorage.setItem(THEME_KEY, theme);
    if (this.themeButton) this.themeButton.textContent = theme === 'dark' ? `☀ ${t.light}` : `☾ ${t.dark}`;
  }

  // ----- keyboard -----

  private showHelp(): void {
    const heading = el('h2', undefined, t.help);
    const list = el('dl', 'shortcut-list');
    for (const [keys, what] of t.shortcuts) list.append(el('dt', undefined, keys), el('dd', undefined, what));
    this.helpDialog.replaceChildren(heading, list);
    if (!this.helpDialog.open) this.helpDialog.showModal();
  }

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
    const typing = target.closest('input, textarea, select, [contenteditable="true"]') !== null;
    if (typing || event.ctrlKey || event.metaKey) return;
    const columns = this.deck.columns;
    if (columns.length === 0 && event.key !== '/' && event.key !== '?') return;
    const index = this.focusedIndex();
    const current = columns[index] ? this.columns.get(columns[index].id) : undefined;
    if (event.altKey && (event.key === 'ArrowLeft' || event.key === 'ArrowRight')) {
      event.preventDefault();
      if (current) this.moveColumn(current.config.id, event.key === 'ArrowLeft' ? -1 : 1);
      current?.focus();
      return;
    }
    if (event.altKey) return;
    switch (event.key) {
      case '/':
        event.preventDefault();
        this.searchInput.focus();
        break;
      case '?':
        event.preventDefault();
        this.showHelp();
        break;
      case 'ArrowLeft':
      case 'h':
        if (target.closest('.resize-handle')) return;
        event.preventDefault();
        this.focusColumn(columns[Math.max(0, index - 1)].id);
        break;
      case 'ArrowRight':
      case 'l':
        if (target.closest('.resize-handle')) return;
        event.preventDefault();
        this.focusColumn(columns[Math.min(columns.length - 1, index + 1)].id);
        break;
      case 'j':
        event.preventDefault();
        current?.scrollBy(160);
        break;
      case 'k':
        event.preventDefault();
        current?.scrollBy(-160);
        break;
      case 'n':
        if (current instanceof Column) current.showNew();
        break;
      case '1': case '2': case '3': case '4': case '5': case '6': case '7': case '8': case '9': case '0': {
        // As in TweetDeck: 1–9 jump to that column, 0 to the last one.
        const at = event.key === '0' ? columns.length - 1 : Number(event.key) - 1;
        if (at >= columns.length) return;
        event.preventDefault();
        this.focusColumn(columns[at].id);
        break;
      }
      default:
        break;
    }
  }
}
