// DecksDialog: the reader's named decks — switch, create, rename, delete —
// plus the open deck's deck-wide mute list, export and import as JSON, and a
// link that shares the deck's columns.

import type { DeckConfig, DeckLibrary } from '../deck';
import { deckLink, MAX_DECKS, sanitizeDeck } from '../deck';
import { t } from '../i18n';
import { el } from './dom';

/** What the dialog asks of the deck. */
export interface DecksActions {
  library(): DeckLibrary;
  switchTo(id: string): void;
  /** Adds and opens a deck; false when the library is full. */
  create(name: string): boolean;
  rename(id: string, name: string): void;
  remove(id: string): void;
  setMutes(mutes: string[]): void;
  /** Adds and opens a deck; false when the library is full. */
  importDeck(deck: DeckConfig, name: string): boolean;
}

function button(text: string, onClick: () => void, className = ''): HTMLButtonElement {
  const node = el('button', className, text);
  node.type = 'button';
  node.addEventListener('click', onClick);
  return node;
}

/** The decks dialog. */
export class DecksDialog {
  readonly el: HTMLDialogElement;

  constructor(private readonly actions: DecksActions) {
    this.el = el('dialog', 'decks-dialog');
    this.el.addEventListener('keydown', (event) => event.stopPropagation());
  }

  /** Opens (or redraws) the dialog, with `message` in its status line. */
  open(message = ''): void {
    this.draw(message);
    if (!this.el.open) this.el.showModal();
  }

  private draw(message = ''): void {
    const library = this.actions.library();
    const current = library.decks.find((deck) => deck.id === library.current) ?? library.decks[0];
    const heading = el('h2', undefined, t.decks);
    const close = button('×', () => this.el.close(), 'icon-button dialog-close');
    close.setAttribute('aria-label', t.close);
    const status = el('p', 'decks-status');
    status.setAttribute('role', 'status');
    status.textContent = message;

    const list = el('ul', 'decks-list');
    for (const deck of library.decks) {
      const item = el('li', deck.id === library.current ? 'decks-item current' : 'decks-item');
      const open = button(deck.name, () => {
        this.actions.switchTo(deck.id);
        this.draw();
      }, 'decks-open');
      open.setAttribute('aria-current', String(deck.id === library.current));
      const count = el('span', 'decks-count', t.nColumns(deck.columns.length));
      const rename = button(t.renameDeck, () => {
        const name = window.prompt(t.renameDeck, deck.name)?.trim();
        if (name) {
          this.actions.rename(deck.id, name);
          this.draw();
        }
      });
      const remove = button(t.deleteDeck, () => {
        if (library.decks.length <= 1 || !window.confirm(t.deleteDeckConfirm(deck.name))) return;
        this.actions.remove(deck.id);
        this.draw();
      });
      remove.disabled = library.decks.length <= 1;
      item.append(open, count, rename, remove);
      list.append(item);
    }
    const create = button(t.newDeck, () => {
      const name = window.prompt(t.newDeck, t.deckName(library.decks.length + 1))?.trim();
      if (name) this.draw(this.actions.create(name) ? '' : t.decksFull(MAX_DECKS));
    }, 'primary');

    const mutesLabel = el('label', 'decks-label', t.deckMutes);
    const mutes = el('textarea', 'decks-mutes');
    mutes.id = 'deck-mutes';
    mutesLabel.htmlFor = mutes.id;
    mutes.rows = 3;
    mutes.value = (current?.mutes ?? []).join('\n');
    const saveMutes = button(t.apply, () => {
      this.actions.setMutes(mutes.value.split('\n').map((line) => line.trim()).filter(Boolean));
      status.textContent = t.deckSaved;
    });

    const share = button(t.shareDeck, () => {
      const url = `${location.origin}${location.pathname}${deckLink(current)}`;
      const done = () => (status.textContent = t.linkCopied);
      if (navigator.clipboard?.writeText) navigator.clipboard.writeText(url).then(done, () => window.prompt(t.shareDeck, url));
      else window.prompt(t.shareDeck, url);
    });
    const exportButton = button(t.exportDeck, () => {
      const blob = new Blob([JSON.stringify({ name: current.name, columns: current.columns, mutes: current.mutes ?? [] }, null, 2)], { type: 'application/json' });
      const link = el('a');
      link.href = URL.createObjectURL(blob);
      link.download = `${current.name.replace(/[^\p{L}\p{N}_-]+/gu, '-') || 'deck'}.json`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 1000);
    });
    const file = el('input');
    file.type = 'file';
    file.accept = 'application/json,.json';
    file.hidden = true;
    file.addEventListener('change', async () => {
      const chosen = file.files?.[0];
      if (!chosen) return;
      try {
        const parsed = JSON.parse(await chosen.text()) as { name?: unknown };
        const deck = sanitizeDeck(parsed);
        if (!deck) throw new Error('not a deck');
        const added = this.actions.importDeck(deck, typeof parsed.name === 'string' && parsed.name.trim() ? parsed.name.trim() : chosen.name.replace(/\.json$/i, ''));
        this.draw(added ? '' : t.decksFull(MAX_DECKS));
      } catch {
        status.textContent = t.importFailed;
      }
    });
    const importButton = button(t.importDeck, () => file.click());
    const tools = el('div', 'dialog-links');
    tools.append(share, exportButton, importButton, file);
    this.el.replaceChildren(close, heading, list, create, mutesLabel, mutes, saveMutes, tools, status);
  }
}
