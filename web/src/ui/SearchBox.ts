// SearchBox: the top bar's query field (role searchbox). Enter hands the
// query to the deck; a bad query comes back with the server's message in
// the reader's language and the offending character marked.

import { t } from '../i18n';
import { el } from './dom';

/** The search box. */
export class SearchBox {
  readonly el: HTMLFormElement;
  readonly input: HTMLInputElement;
  private readonly error: HTMLElement;
  private readonly help: HTMLElement;

  /** `submit` adds (or focuses) the query's column; it rejects to show an error. */
  constructor(submit: (query: string) => Promise<void>) {
    this.el = el('form', 'search');
    this.el.setAttribute('role', 'search');
    this.input = el('input', 'search-input');
    this.input.type = 'search';
    this.input.setAttribute('role', 'searchbox');
    this.input.autocomplete = 'off';
    this.input.spellcheck = false;
    this.input.setAttribute('aria-describedby', 'search-help search-error');
    this.error = el('div', 'search-error');
    this.error.id = 'search-error';
    this.error.setAttribute('role', 'alert');
    this.help = el('div', 'search-help');
    this.help.id = 'search-help';
    this.el.append(this.input, this.help, this.error);
    this.el.addEventListener('submit', (event) => {
      event.preventDefault();
      const query = this.input.value.trim();
      if (!query) return;
      this.error.replaceChildren();
      void submit(query);
    });
    this.input.addEventListener('input', () => this.clearError());
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') this.input.blur();
    });
  }

  /** The query went in: the box empties. */
  done(): void {
    this.input.value = '';
    this.clearError();
  }

  private clearError(): void {
    this.error.replaceChildren();
    this.input.removeAttribute('aria-invalid');
  }

  /** Shows a plain error (not about the query's text). */
  showError(message: string): void {
    this.error.textContent = message;
  }

  /** Shows a bad query's message and marks the character at `position`, with the caret on it. */
  showQueryError(query: string, message: string, position: number | null | undefined): void {
    this.input.setAttribute('aria-invalid', 'true');
    const text = el('span', 'search-error-message', `${t.badQuery}: ${message}`);
    this.error.replaceChildren(text);
    if (position === undefined || position === null) return;
    const chars = [...query];
    const at = Math.min(Math.max(0, position), chars.length);
    const shown = el('code', 'search-error-query');
    shown.append(chars.slice(0, at).join(''));
    const mark = el('mark', 'search-error-position', chars[at] ?? ' ');
    shown.append(mark, chars.slice(at + 1).join(''));
    this.error.append(shown);
    this.input.focus();
    const utf16 = chars.slice(0, at).join('').length;
    this.input.setSelectionRange(utf16, utf16 + (chars[at]?.length ?? 0));
  }

  /** Labels in the current language. */
  relabel(): void {
    this.input.placeholder = t.searchPlaceholder;
    this.input.setAttribute('aria-label', t.search);
    this.help.textContent = t.searchHelp;
  }
}
