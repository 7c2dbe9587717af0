// VirtualList: a scrolling list that keeps only the visible cards (plus an
// overscan) in the DOM. Heights are measured as cards render and estimated
// otherwise; when heights or items above the viewport change, the scroll
// position is corrected so nothing moves under the reader's eyes.

/** An item of a virtual list: a stable key plus whatever the renderer needs. */
export interface Keyed {
  key: string;
  /** Changes when the item must be rendered again (e.g. a new retweeter). */
  sig?: string;
}

const OVERSCAN_PX = 600;
const ESTIMATE_PX = 130;

/** A virtualized list inside a scroll container. */
export class VirtualList<T extends Keyed> {
  /** The scroll container. */
  readonly scroller: HTMLElement;
  private readonly spacer: HTMLElement;
  private items: T[] = [];
  private offsets: number[] = [0];
  private readonly heights = new Map<string, number>();
  private readonly rendered = new Map<string, HTMLElement>();
  private readonly renderedItems = new Map<string, T>();
  private frame = 0;

  constructor(
    scroller: HTMLElement,
    private readonly render: (item: T) => HTMLElement,
    private readonly onScroll: () => void,
  ) {
    this.scroller = scroller;
    this.spacer = document.createElement('div');
    this.spacer.className = 'vlist-spacer';
    scroller.append(this.spacer);
    scroller.addEventListener('scroll', () => {
      this.schedule();
      this.onScroll();
    }, { passive: true });
    let lastWidth = 0;
    if (typeof ResizeObserver !== 'undefined') {
      new ResizeObserver(() => {
        // A new width rewraps every card: measured heights no longer hold.
        const width = scroller.clientWidth;
        if (lastWidth !== 0 && width !== lastWidth) {
          this.heights.clear();
          for (const key of [...this.rendered.keys()]) this.drop(key);
          this.computeOffsets();
        }
        lastWidth = width;
        this.schedule();
      }).observe(scroller);
    }
  }

  /** Replaces the items (same keys keep their nodes and measured heights), keeping the first visible card in place. */
  setItems(items: T[], rerenderKeys?: Set<string>): void {
    const anchor = this.anchor();
    this.items = items;
    if (rerenderKeys) {
      for (const key of rerenderKeys) this.drop(key);
    }
    // Items whose signature changed (e.g. a new retweeter) are rendered again.
    const present = new Map<string, T>();
    for (const item of items) present.set(item.key, item);
    for (const [key, item] of [...this.renderedItems]) {
      const next = present.get(key);
      if (!next || next.sig !== item.sig) this.drop(key);
    }
    if (this.heights.size > items.length * 2 + 500) {
      for (const key of this.heights.keys()) if (!present.has(key)) this.heights.delete(key);
    }
    this.computeOffsets();
    this.restore(anchor);
    this.paint();
  }

  /** The rendered card of a key, if it is in the DOM. */
  node(key: string): HTMLElement | undefined {
    return this.rendered.get(key);
  }

  /** Every rendered card. */
  nodes(): IterableIterator<HTMLElement> {
    return this.rendered.values();
  }

  /** Total height of the list. */
  get totalHeight(): number {
    return this.offsets[this.items.length];
  }

  private drop(key: string): void {
    this.rendered.get(key)?.remove();
    this.rendered.delete(key);
    this.renderedItems.delete(key);
  }

  private computeOffsets(): void {
    const offsets = new Array<number>(this.items.length + 1);
    let y = 0;
    for (let i = 0; i < this.items.length; i++) {
      offsets[i] = y;
      y += this.heights.get(this.items[i].key) ?? ESTIMATE_PX;
    }
    offsets[this.items.length] = y;
    this.offsets = offsets;
    this.spacer.style.height = `${y}px`;
  }

  /** The first item at or below the top of the viewport, and how far below the top it starts. */
  private anchor(): { key: string; delta: number } | null {
    const top = this.scroller.scrollTop;
    if (top <= 0 || this.items.length === 0) return null;
    const index = this.indexAt(top);
    const item = this.items[index];
    return item ? { key: item.key, delta: this.offsets[index] - top } : null;
  }

  private restore(anchor: { key: string; delta: number } | null): void {
    if (!anchor) return;
    const index = this.items.findIndex((item) => item.key === anchor.key);
    if (index < 0) return;
    const wanted = this.offsets[index] - anchor.delta;
    if (Math.abs(this.scroller.scrollTop - wanted) >= 1) this.scroller.scrollTop = wanted;
  }

  /** Index of the item covering pixel `y` (binary search over offsets). */
  private indexAt(y: number): number {
    let low = 0;
    let high = this.items.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.offsets[mid] <= y) low = mid;
      else high = mid - 1;
    }
    return low;
  }

  /** Renders on the next animation frame. */
  schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.paint();
    });
  }

  /** Renders the visible window now; a few passes settle estimated heights into measured ones. */
  paint(): void {
    if (this.items.length === 0) {
      for (const key of [...this.rendered.keys()]) this.drop(key);
      return;
    }
    for (let pass = 0; pass < 4; pass++) {
      if (!this.paintPass()) break;
      const anchor = this.anchor();
      this.computeOffsets();
      this.restore(anchor);
    }
    // Positions after the last correction.
    for (let i = 0; i < this.items.length; i++) {
      const node = this.rendered.get(this.items[i].key);
      if (node) node.style.transform = `translateY(${this.offsets[i]}px)`;
    }
  }

  /** Renders the cards in the window; returns whether a measured height differed from what was assumed. */
  private paintPass(): boolean {
    const top = this.scroller.scrollTop;
    const viewport = this.scroller.clientHeight || 800;
    const first = this.indexAt(Math.max(0, top - OVERSCAN_PX));
    const wanted = new Set<string>();
    const fresh: [number, HTMLElement][] = [];
    for (let i = first; i < this.items.length && this.offsets[i] < top + viewport + OVERSCAN_PX; i++) {
      const item = this.items[i];
      wanted.add(item.key);
      let node = this.rendered.get(item.key);
      if (!node) {
        node = this.render(item);
        node.classList.add('vlist-item');
        this.rendered.set(item.key, node);
        this.renderedItems.set(item.key, item);
        this.spacer.append(node);
        fresh.push([i, node]);
      } else if (!this.heights.has(item.key)) {
        // Rendered while detached or hidden: measure now that it may have a size.
        fresh.push([i, node]);
      }
      node.style.transform = `translateY(${this.offsets[i]}px)`;
      node.setAttribute('aria-posinset', String(i + 1));
      node.setAttribute('aria-setsize', String(this.items.length));
    }
    for (const key of [...this.rendered.keys()]) if (!wanted.has(key)) this.drop(key);
    let changed = false;
    for (const [i, node] of fresh) {
      const key = this.items[i].key;
      const height = node.offsetHeight;
      if (height > 0 && this.heights.get(key) !== height) {
        this.heights.set(key, height);
        changed = true;
      }
    }
    return changed;
  }

  /** Re-measures a card whose content changed size. */
  remeasure(key: string): void {
    const node = this.rendered.get(key);
    if (!node) return;
    const height = node.offsetHeight;
    if (height > 0 && this.heights.get(key) !== height) {
      this.heights.set(key, height);
      const anchor = this.anchor();
      this.computeOffsets();
      this.restore(anchor);
      this.paint();
    }
  }

  /** Forgets every node (e.g. after a language switch) and renders again. */
  rerenderAll(): void {
    for (const key of [...this.rendered.keys()]) this.drop(key);
    this.paint();
  }
}
