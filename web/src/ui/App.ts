// App: the deck page. It owns which deck is open (the library, where it is
// saved: this browser, and the server when signed in), the WebSocket that
// feeds the columns, the keyboard shortcuts (mapped in `logic/shortcuts.ts`),
// the hash routes of deep and mailed links, and the language. The bar above
// the deck is `TopBar`; the row of columns is `DeckView`.

import { ApiError, fetchTimeline } from '../api';
import { clearLocalDecks, deckFromLink, loadLibrary, MAX_DECKS, loadServerLibrary, persistDeck, pushDeckNow, saveLibrary, type DeckConfig, type DeckLibrary } from '../deck';
import { addDeck, freshLibrary, openDeck, removeDeck, renameDeck, storeOpenDeck } from '../logic/library';
import { DecksDialog } from './DecksDialog';
import { applyTheme, initialTheme } from './theme';
import { lang, setLang, t } from '../i18n';
import { parseRoute } from '../logic/routes';
import { shortcutFor } from '../logic/shortcuts';
import { errorText } from '../logic/errors';
import { signedInEmail } from '../session';
import { Stream, type StreamState } from '../stream';
import { AccountDialog } from './AccountDialog';
import { Column, type Preloaded } from './Column';
import type { CardHandlers } from './PostCard';
import { DeckView } from './DeckView';
import { PostDetail } from './PostDetail';
import { Toast } from './Toast';
import { TopBar } from './TopBar';

/** The whole page. */
export class App {
  private library: DeckLibrary;
  private readonly view: DeckView;
  private readonly decksDialog: DecksDialog;
  private readonly stream: Stream;
  private readonly topBar: TopBar;
  private readonly account: AccountDialog;
  private readonly cards: CardHandlers;
  private readonly detail: PostDetail;
  private readonly toast: Toast;
  private streamDetail = '';

  constructor(private readonly root: HTMLElement) {
    this.cards = {
      hashtag: (tag) => this.openQuery(`#${tag}`),
      mention: (handle) => this.openQuery(`from:${handle}`),
      cashtag: (tag) => this.openQuery(`$${tag}`),
      user: (handle) => this.openQuery(`from:${handle}`),
      open: (post, via) => this.detail.open(post, via),
    };
    this.detail = new PostDetail({ find: (id) => this.view.find(id), repliesTo: (id) => this.view.repliesTo(id) }, this.cards);
    this.library = loadLibrary(t.deckName(1)) ?? freshLibrary(t.trends, t.deckName(1));
    applyTheme(initialTheme(), false);

    this.topBar = new TopBar({
      search: (query) => this.search(query),
      switchLang: () => this.switchLang(lang() === 'ko' ? 'en' : 'ko'),
      openDecks: () => this.decksDialog.open(),
      openAccount: () => this.account.open(signedInEmail() ? 'account' : 'login'),
    });
    this.account = new AccountDialog(() => void this.afterLogin(), () => this.afterLogout());
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
        this.view.config.mutes = mutes.length > 0 ? mutes : undefined;
        this.save();
        this.view.mutesChanged();
      },
      importDeck: (deck, name) => this.importDeck(deck, name),
    });
    this.stream = new Stream({
      open: () => this.view.subscribeAll(),
      message: (message) => this.view.dispatch(message),
      state: (state, detail) => this.onStreamState(state, detail),
    });
    this.view = new DeckView(openDeck(this.library), { stream: this.stream, cards: this.cards, toast: this.toast, saved: () => this.save() });
    root.append(this.topBar.el, this.view.el, this.view.switcher.el, this.topBar.helpDialog, this.account.el, this.detail.el, this.decksDialog.el, this.toast.el);
    this.relabel();
    this.stream.start();
    this.save();

    document.addEventListener('keydown', (event) => this.onKey(event));
    window.addEventListener('hashchange', () => this.route());
    setInterval(() => this.view.tick(), 15_000);
    this.route();
    if (signedInEmail()) void this.restoreServerDeck(false);
  }

  /** Focuses the column of `query` when it is open, else adds it. */
  openQuery(query: string, preloaded?: Preloaded): void {
    this.view.openQuery(query, preloaded);
  }

  // ----- decks -----

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

  /** Saves the open deck into the library, in this browser and (signed in) on the server. */
  private save(): void {
    const deck = this.view.config;
    storeOpenDeck(this.library, deck);
    saveLibrary(this.library);
    this.view.updateSwitcher();
    persistDeck(deck, this.library, (error) => {
      if (error instanceof ApiError && error.status === 401) this.refreshAccount();
    });
  }

  /** Replaces every column with another deck (after login, or a switch). */
  private replaceDeck(deck: DeckConfig): void {
    this.view.replace(deck);
    this.save();
  }

  // ----- search -----

  /** Validates a query against the server, then adds it as a column (or shows the error at its position). */
  private async search(query: string): Promise<void> {
    if (this.view.findQuery(query)) {
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

  private onStreamState(state: StreamState, detail: { retryAt?: number; reason?: string }): void {
    this.streamDetail = state === 'offline' && detail.retryAt ? t.retryIn(Math.max(1, Math.round((detail.retryAt - Date.now()) / 1000))) : '';
    this.topBar.showConnection(state, [detail.reason ?? '', this.streamDetail]);
    if (state === 'offline') this.view.offline([detail.reason, this.streamDetail].filter(Boolean).join(', '));
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
        await pushDeckNow(this.view.config, this.library);
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
    for (const config of this.view.config.columns) {
      if (config.filters.kind === 'trends' && config.title === oldTrends) this.view.updateConfig({ ...config, title: t.trends });
    }
    this.relabel();
    this.view.relabel();
    this.account.relabel();
  }

  private relabel(): void {
    const open = this.library.decks.find((deck) => deck.id === this.library.current);
    this.topBar.relabel(open?.name, this.stream.state);
    this.view.updateSwitcher();
    this.refreshAccount();
    document.title = 'Deck';
  }

  // ----- keyboard -----

  private onKey(event: KeyboardEvent): void {
    const target = event.target as HTMLElement;
    const columns = this.view.config.columns;
    const index = this.view.focusedIndex();
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
    const current = this.view.columnAt(index);
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
        if (current) this.view.move(current.config.id, shortcut.delta);
        current?.focus();
        break;
      case 'focus':
        this.view.focus(columns[shortcut.index].id);
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
