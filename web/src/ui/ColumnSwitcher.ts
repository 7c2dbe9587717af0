// ColumnSwitcher: on a phone, where one column fills the screen, a row of
// tabs under the deck names every column and shows which one is in view;
// a tap brings that column in, and a swipe on the deck (scroll snapping)
// moves to the next one and updates the tabs.

/** The switcher. */
export class ColumnSwitcher {
  readonly el: HTMLElement;
  private ids: string[] = [];
  private currentIndex = -1;

  constructor(
    private readonly deck: HTMLElement,
    private readonly go: (id: string) => void,
  ) {
    this.el = document.createElement('nav');
    this.el.className = 'column-switcher';
    deck.addEventListener('scroll', () => this.follow(), { passive: true });
  }

  /** Names the columns (in deck order). */
  update(columns: { id: string; title: string }[], label: string): void {
    this.el.setAttribute('aria-label', label);
    this.ids = columns.map((column) => column.id);
    this.el.replaceChildren(
      ...columns.map((column, index) => {
        const tab = document.createElement('button');
        tab.type = 'button';
        tab.className = 'switcher-tab';
        tab.textContent = column.title;
        tab.addEventListener('click', () => this.go(column.id));
        tab.setAttribute('aria-current', String(index === this.currentIndex));
        return tab;
      }),
    );
    this.follow();
  }

  /** Marks the column in view (the deck scrolls one screen per column on a phone). */
  private follow(): void {
    const width = this.deck.clientWidth;
    if (width === 0 || this.ids.length === 0) return;
    const index = Math.min(this.ids.length - 1, Math.max(0, Math.round(this.deck.scrollLeft / width)));
    if (index === this.currentIndex) return;
    this.currentIndex = index;
    this.el.querySelectorAll('.switcher-tab').forEach((tab, at) => {
      tab.setAttribute('aria-current', String(at === index));
      if (at === index) (tab as HTMLElement).scrollIntoView({ block: 'nearest', inline: 'nearest' });
    });
  }
}
