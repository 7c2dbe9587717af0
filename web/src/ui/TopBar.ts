// TopBar: the bar above the deck (brand, search box, connection state, and
// the decks, language, theme, help and account buttons) and the help
// dialog listing the keyboard shortcuts.

import { lang, t } from '../i18n';
import type { StreamState } from '../stream';
import { SearchBox } from './SearchBox';
import { applyTheme, currentTheme } from './theme';
import { el } from './dom';

/** What the bar's controls ask of the page. */
export interface TopBarHandlers {
  search(query: string): Promise<void>;
  switchLang(): void;
  openDecks(): void;
  openAccount(): void;
}

export class TopBar {
  readonly el: HTMLElement;
  readonly searchBox: SearchBox;
  /** Shows the shortcuts; the page mounts it beside the deck. */
  readonly helpDialog: HTMLDialogElement;
  private readonly connection: HTMLElement;
  private readonly decksButton: HTMLButtonElement;
  private readonly langButton: HTMLButtonElement;
  private readonly themeButton: HTMLButtonElement;
  private readonly accountButton: HTMLButtonElement;

  constructor(handlers: TopBarHandlers) {
    this.el = el('header', 'topbar');
    const brand = el('h1', 'brand', 'Deck');
    this.searchBox = new SearchBox((query) => handlers.search(query));
    this.connection = el('div', 'connection');
    this.connection.setAttribute('role', 'status');
    this.decksButton = this.button('top-button decks-button', () => handlers.openDecks());
    this.langButton = this.button('top-button lang-button', () => handlers.switchLang());
    this.themeButton = this.button('top-button theme-button', () => {
      applyTheme(currentTheme() === 'dark' ? 'light' : 'dark', true);
      this.relabelTheme();
    });
    const helpButton = this.button('top-button help-button', () => this.showHelp());
    helpButton.textContent = '?';
    this.accountButton = this.button('top-button account-button', () => handlers.openAccount());
    const tools = el('div', 'tools');
    tools.append(this.connection, this.decksButton, this.langButton, this.themeButton, helpButton, this.accountButton);
    this.el.append(brand, this.searchBox.el, tools);
    this.helpDialog = el('dialog', 'help-dialog');
    this.helpDialog.addEventListener('click', () => this.helpDialog.close());
  }

  private button(className: string, onClick: () => void): HTMLButtonElement {
    const button = el('button', className);
    button.type = 'button';
    button.addEventListener('click', onClick);
    return button;
  }

  /** Every label, in the current language. */
  relabel(deckName: string | undefined, stream: StreamState): void {
    this.searchBox.relabel();
    this.langButton.textContent = lang() === 'ko' ? 'English' : '한국어';
    this.langButton.setAttribute('aria-label', lang() === 'ko' ? 'Switch to English' : '한국어로 보기');
    this.langButton.lang = lang() === 'ko' ? 'en' : 'ko';
    this.relabelTheme();
    this.decksButton.textContent = `▦ ${deckName ?? t.decks}`;
    this.decksButton.title = t.decks;
    this.connection.textContent = connectionLabel(stream);
  }

  private relabelTheme(): void {
    this.themeButton.textContent = currentTheme() === 'dark' ? `☀ ${t.light}` : `☾ ${t.dark}`;
  }

  /** The connection indicator; `why` (the reason, the retry) goes in its tooltip. */
  showConnection(state: StreamState, why: string[]): void {
    const label = connectionLabel(state);
    this.connection.dataset.state = state;
    this.connection.textContent = label;
    this.connection.title = [label, ...why].filter(Boolean).join(' — ');
  }

  /** The account button: the signed-in user's name, or "sign in". */
  showAccount(email: string | null): void {
    this.accountButton.textContent = email ? email.split('@')[0] : t.signIn;
    this.accountButton.title = email ? t.signedInAs(email) : t.signIn;
  }

  showHelp(): void {
    const heading = el('h2', undefined, t.help);
    const list = el('dl', 'shortcut-list');
    for (const [keys, what] of t.shortcuts) list.append(el('dt', undefined, keys), el('dd', undefined, what));
    this.helpDialog.replaceChildren(heading, list);
    if (!this.helpDialog.open) this.helpDialog.showModal();
  }
}

function connectionLabel(state: StreamState): string {
  return state === 'open' ? t.connected : state === 'connecting' ? t.connecting : t.disconnected;
}
