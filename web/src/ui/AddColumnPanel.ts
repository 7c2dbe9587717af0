// AddColumnPanel: the last place on the deck, using the width the columns
// leave free — an "add column" chooser with examples of each kind (search,
// hashtag, user, mentions, trends). The search box adds any query too.

import { t } from '../i18n';

/** What the chooser does. */
export interface AddColumnActions {
  query(query: string): void;
  trends(): void;
}

/** The chooser. */
export class AddColumnPanel {
  readonly el: HTMLElement;

  constructor(private readonly actions: AddColumnActions) {
    this.el = document.createElement('section');
    this.el.className = 'add-column';
    this.relabel();
  }

  /** Draws the panel in the current language. */
  relabel(): void {
    this.el.setAttribute('aria-label', t.addColumn);
    const heading = document.createElement('h2');
    heading.textContent = t.addColumn;
    const hint = document.createElement('p');
    hint.className = 'add-column-hint';
    hint.textContent = t.addColumnHint;
    const list = document.createElement('ul');
    list.className = 'add-column-examples';
    for (const [kind, query, label] of t.addColumnExamples) {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'add-column-example';
      const kindLabel = document.createElement('span');
      kindLabel.className = 'add-column-kind';
      kindLabel.textContent = kind;
      const text = document.createElement('span');
      text.className = 'add-column-query';
      text.textContent = label;
      button.append(kindLabel, text);
      button.addEventListener('click', () => (query ? this.actions.query(query) : this.actions.trends()));
      item.append(button);
      list.append(item);
    }
    this.el.replaceChildren(heading, hint, list);
  }
}
