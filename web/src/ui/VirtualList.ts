// VirtualList: a scrolling list that keeps only the visible cards (plus an
// overscan) in the DOM, in the same order as on screen.
//
// Work per frame is proportional to the cards on screen, not to the items held:
// - each item has a top in list coordinates whose origin is free, so cards
//   put above the first one get smaller tops and no other item moves; a layer
//   translated by the first item's top keeps the scrollable area at 0;
// - the list changes through operations (prepend, append, remove, update,
//   reset) that touch only the items they name;
// - a paint first writes the fresh cards, then reads all their heights in one
//   go, then writes positions: one forced layout per paint at most;
// - loops run over the rendered cards only (the rare remove and a measured
//   height that differs from its estimate shift plain numbers of the items
//   below; no DOM).
// The first card in view stays where it is when anything above it changes,
// unless the reader is at the very top, where new cards appear.

/** An item of a virtual list: a stable key plus whatever the renderer needs. */
export interface Keyed {
  key: string;
  /** Changes when the item must be rendered again (e.g. a new retweeter). */
  sig?: string;
}

/** Tuning and test seams. */
export interface VirtualListOptions {
  /** Height assumed for a card not yet measured. */
  estimatePx?: number;
  /** Pixels rendered beyond the viewport on each side. */
  overscanPx?: number;
  /** Reads a rendered card's height (tests give one; the page uses offsetHeight). */
  measure?: (node: HTMLElement) => number;
  /** Reads the viewport height (tests give one; the page uses clientHeight, cached per resize). */
  viewport?: () => number;
}

const ESTIMATE_PX = 130;
const OVERSCAN_PX = 300;

/** A virtualized list inside a scroll container. */
export class VirtualList<T extends Keyed> {
  /** The scroll container. */
  readonly scroller: HTMLElement;
  private readonly spacer: HTMLElement;
  private readonly layer: HTMLElement;
  private items: T[] = [];
  private tops: number[] = [];
  private heights: number[] = [];
  /** Measured heights by key (survive moves and resets; cleared when the width changes). */
  private readonly known = new Map<string, number>();
  /** Rendered range [start, end) and its nodes. */
  private start = 0;
  private end = 0;
  private nodes: HTMLElement[] = [];
  private readonly nodeTops = new WeakMap<HTMLElement, number>();
  private viewportPx = 0;
  private layerTop = Number.NaN;
  private spacerPx = -1;
  private lastWidth = 0;
  private readonly estimatePx: number;
  private readonly overscanPx: number;
  private readonly measure: (node: HTMLElement) => number;
  private readonly readViewport: () => number;

  constructor(
    scroller: HTMLElement,
    private readonly render: (item: T) => HTMLElement,
    private readonly onScroll: () => void,
    private readonly schedule: () => void,
    options: VirtualListOptions = {},
  ) {
    this.scroller = scroller;
    this.estimatePx = options.estimatePx ?? ESTIMATE_PX;
    this.overscanPx = options.overscanPx ?? OVERSCAN_PX;
    this.measure = options.measure ?? ((node) => node.offsetHeight);
    this.readViewport = options.viewport ?? (() => this.viewportPx || (this.viewportPx = scroller.clientHeight));
    this.spacer = document.createElement('div');
    this.spacer.className = 'vlist-spacer';
    this.layer = document.createElement('div');
    this.layer.className = 'vlist-layer';
    this.spacer.append(this.layer);
    scroller.append(this.spacer);
    scroller.addEventListener(
      'scroll',
      () => {
        this.scrollPos = scroller.scrollTop;
        this.schedule();
        this.onScroll();
      },
      { passive: true },
    );
    if (typeof ResizeObserver !== 'undefined') {
      new ResizeObserver((entries) => {
        const box = entries[entries.length - 1]?.contentRect;
        if (!box) return;
        this.viewportPx = box.height;
        // A new width rewraps every card: measured heights no longer hold (they stay as estimates).
        if (this.lastWidth !== 0 && Math.abs(box.width - this.lastWidth) >= 1) this.known.clear();
        this.lastWidth = box.width;
        this.schedule();
      }).observe(scroller);
    }
  }

  /** Number of items. */
  get length(): number {
    return this.items.length;
  }

  /** The items, first to last. */
  get all(): readonly T[] {
    return this.items;
  }

  /** The scroll position as last seen (no layout read). */
  get scrollPosition(): number {
    return this.scrollPos;
  }

  /** The viewport's height (cached per resize). */
  get viewportHeight(): number {
    return this.readViewport() || 800;
  }

  /** How many cards of the estimated height fill the viewport. */
  get screenful(): number {
    return Math.max(1, Math.ceil(this.viewportHeight / this.estimatePx));
  }

  /** Total height of the list. */
  get totalHeight(): number {
    const n = this.items.length;
    return n === 0 ? 0 : this.tops[n - 1] + this.heights[n - 1] - this.tops[0];
  }

  /** The rendered card of a key, if it is in the DOM. */
  node(key: string): HTMLElement | undefined {
    for (let i = this.start; i < this.end; i++) if (this.items[i].key === key) return this.nodes[i - this.start];
    return undefined;
  }

  /** Every rendered card, in order. */
  renderedNodes(): readonly HTMLElement[] {
    return this.nodes;
  }

  /** The first rendered index (tests). */
  get renderedRange(): [number, number] {
    return [this.start, this.end];
  }

  /** The top of item `index` in the scrollable area (tests). */
  offsetOf(index: number): number {
    return this.tops[index] - (this.tops[0] ?? 0);
  }

  private heightFor(item: T): number {
    return this.known.get(item.key) ?? this.estimatePx;
  }

  // ----- operations (no DOM reads; the next paint brings the DOM in line) -----

  /** The scroll position as last seen by a scroll event or set here (reading the DOM would force a layout). */
  private scrollPos = 0;
  /** The card in view before the first change since the last paint, and how far below the top it started. */
  private captured: { key: string | null; delta: number; atTop: boolean } | null = null;

  private captureAnchor(): void {
    if (this.captured) return;
    if (this.items.length === 0 || this.scrollPos <= 0) {
      this.captured = { key: null, delta: 0, atTop: this.scrollPos <= 0 };
      return;
    }
    const at = this.indexAt(this.tops[0] + this.scrollPos);
    this.captured = { key: this.items[at].key, delta: this.tops[at] - this.tops[0] - this.scrollPos, atTop: false };
  }

  /** Goes to the top (where new cards appear). */
  scrollToTop(): void {
    this.captured = null;
    this.scrollPos = 0;
    this.scroller.scrollTop = 0;
  }

  /** Puts items above the first one (`added` first to last). */
  prepend(added: readonly T[]): void {
    if (added.length === 0) return;
    this.captureAnchor();
    const heights = added.map((item) => this.heightFor(item));
    const tops = new Array<number>(added.length);
    let y = this.items.length > 0 ? this.tops[0] : 0;
    for (let i = added.length - 1; i >= 0; i--) {
      y -= heights[i];
      tops[i] = y;
    }
    this.items = added.concat(this.items);
    this.heights = heights.concat(this.heights);
    this.tops = tops.concat(this.tops);
    if (this.end > this.start) {
      this.start += added.length;
      this.end += added.length;
    }
  }

  /** Puts items below the last one (`added` first to last). */
  append(added: readonly T[]): void {
    this.captureAnchor();
    const n = this.items.length;
    let y = n > 0 ? this.tops[n - 1] + this.heights[n - 1] : 0;
    for (const item of added) {
      const height = this.heightFor(item);
      this.items.push(item);
      this.heights.push(height);
      this.tops.push(y);
      y += height;
    }
  }

  private indexOfKey(key: string): number {
    for (let i = this.start; i < this.end; i++) if (this.items[i].key === key) return i;
    return this.items.findIndex((item) => item.key === key);
  }

  /** Removes the item with `key`. */
  remove(key: string): void {
    this.captureAnchor();
    const at = this.indexOfKey(key);
    if (at < 0) return;
    const height = this.heights[at];
    if (at >= this.start && at < this.end) {
      this.nodes[at - this.start].remove();
      this.nodes.splice(at - this.start, 1);
      this.end--;
    } else if (at < this.start) {
      this.start--;
      this.end--;
    }
    this.items.splice(at, 1);
    this.heights.splice(at, 1);
    this.tops.splice(at, 1);
    for (let i = at; i < this.tops.length; i++) this.tops[i] -= height;
  }

  /** Replaces the item with the same key; its card is drawn again at the next paint if it is rendered. */
  update(item: T): void {
    const at = this.indexOfKey(item.key);
    if (at < 0) return;
    this.items[at] = item;
    if (at >= this.start && at < this.end) {
      this.redraw.add(item.key);
      this.known.delete(item.key);
    }
  }

  /** Keys of rendered cards to draw again at the next paint (their items changed). */
  private readonly redraw = new Set<string>();

  /** Replaces every item; cards of keys that stay (with the same signature) are kept, heights are remembered. */
  reset(items: readonly T[]): void {
    this.captureAnchor();
    const keep = new Map<string, HTMLElement>();
    for (let i = this.start; i < this.end; i++) {
      const node = this.nodes[i - this.start];
      // A card whose item changed since it was drawn (an update waiting for the paint) is stale: drawn anew.
      if (this.redraw.has(this.items[i].key)) node.remove();
      else keep.set(this.items[i].key + '\u0000' + (this.items[i].sig ?? ''), node);
    }
    // Two resets without a paint between them (a column off screen): cards kept by the first stay candidates.
    for (const [key, node] of this.recycled ?? []) {
      if (keep.has(key)) node.remove();
      else keep.set(key, node);
    }
    const previousTop = this.items.length > 0 ? this.tops[0] : 0;
    this.items = items.slice();
    this.heights = this.items.map((item) => this.heightFor(item));
    this.tops = new Array<number>(this.items.length);
    let y = previousTop;
    for (let i = 0; i < this.items.length; i++) {
      this.tops[i] = y;
      y += this.heights[i];
    }
    this.recycled = keep;
    this.redraw.clear();
    this.start = 0;
    this.end = 0;
    this.nodes = [];
    if (this.known.size > this.items.length * 2 + 200) {
      const present = new Set(this.items.map((item) => item.key));
      for (const key of this.known.keys()) if (!present.has(key)) this.known.delete(key);
    }
  }

  /** Cards kept from before a reset, by key and signature, until the next paint places or drops them. */
  private recycled: Map<string, HTMLElement> | null = null;

  /** Forgets every card (e.g. after a language switch) so the next paint draws them again. */
  rerenderAll(): void {
    this.redraw.clear();
    for (const node of this.nodes) node.remove();
    this.nodes = [];
    this.start = 0;
    this.end = 0;
    this.known.clear();
    if (this.recycled) {
      for (const node of this.recycled.values()) node.remove();
      this.recycled = null;
    }
  }

  /** The card's height changed (an image, a revealed spoiler): measure it again at the next paint. */
  invalidate(key: string): void {
    this.known.delete(key);
  }

  // ----- painting -----

  private renderNode(item: T): HTMLElement {
    const node = this.render(item);
    node.classList.add('vlist-item');
    return node;
  }

  /** Index of the item covering list coordinate `y` (binary search over tops). */
  private indexAt(y: number): number {
    let low = 0;
    let high = this.items.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.tops[mid] <= y) low = mid;
      else high = mid - 1;
    }
    return low;
  }

  /** State of a paint between its phases. */
  private painting: { wantedScroll: number; anchorIndex: number; fresh: number[]; current: number } | null = null;

  private windowAt(scroll: number): [number, number] {
    const n = this.items.length;
    const origin = this.tops[0];
    const viewport = this.readViewport() || 800;
    const first = this.indexAt(origin + Math.max(0, scroll - this.overscanPx));
    let last = first;
    const bottom = origin + scroll + viewport + this.overscanPx;
    while (last < n && this.tops[last] < bottom) last++;
    return [first, Math.max(last, first + 1)];
  }

  /**
   * Phase 1 of a paint (DOM writes only): the cards that entered the window
   * go in at their estimated places, the ones that left go out. The scroll
   * position is the one last seen by a scroll event, so nothing is read.
   */
  paintWrite(): void {
    const n = this.items.length;
    if (n === 0) {
      for (const node of this.nodes) node.remove();
      this.nodes = [];
      this.start = 0;
      this.end = 0;
      this.dropRecycled();
      this.captured = null;
      this.painting = null;
      this.writeFrame(0, this.scrollPos);
      return;
    }
    if (!this.captured) this.captureAnchor();
    const anchor = this.captured ?? { key: null, delta: 0, atTop: true };
    this.captured = null;
    let anchorIndex = -1;
    let wantedScroll = 0;
    if (!anchor.atTop && anchor.key !== null) {
      anchorIndex = this.indexOfKey(anchor.key);
      wantedScroll = anchorIndex >= 0 ? Math.max(0, this.tops[anchorIndex] - this.tops[0] - anchor.delta) : this.scrollPos;
    }
    const [first, last] = this.windowAt(wantedScroll);
    // The range only grows here; what left the window goes in the last phase, so a card is never dropped and drawn again in one paint.
    const overlap = this.end > this.start && first <= this.end && last >= this.start;
    const fresh = overlap ? this.syncRange(Math.min(first, this.start), Math.max(last, this.end)) : this.syncRange(first, last);
    this.painting = { wantedScroll, anchorIndex, fresh, current: this.scrollPos };
  }

  /** Phase 2 (DOM reads only): the heights of the fresh cards, in one layout. */
  paintMeasure(): void {
    const painting = this.painting;
    if (!painting || painting.fresh.length === 0) return;
    const n = this.items.length;
    const measured = painting.fresh.map((index) => this.measure(this.nodes[index - this.start]));
    for (let f = 0; f < painting.fresh.length; f++) {
      const index = painting.fresh[f];
      const height = measured[f];
      if (height <= 0) continue;
      this.known.set(this.items[index].key, height);
      const delta = height - this.heights[index];
      if (delta === 0) continue;
      this.heights[index] = height;
      if (painting.anchorIndex >= 0 && index < painting.anchorIndex) {
        // Above the card in view: grow upwards, so nothing in view moves.
        for (let i = 0; i <= index; i++) this.tops[i] -= delta;
        painting.wantedScroll += delta;
      } else {
        for (let i = index + 1; i < n; i++) this.tops[i] += delta;
      }
    }
    painting.fresh = [];
  }

  /**
   * Phase 3 (DOM writes only): the final window (a card that entered it
   * unmeasured sits in the overscan at its estimated place and is measured at
   * the next frame), positions of the cards that moved, ARIA positions that
   * changed, the layer, the spacer and the scroll position.
   */
  paintPlace(): void {
    const painting = this.painting;
    this.painting = null;
    if (!painting) return;
    const n = this.items.length;
    const [first, last] = this.windowAt(painting.wantedScroll);
    const late = this.syncRange(first, last);
    if (late.length > 0) this.schedule();
    this.dropRecycled();
    const size = String(n);
    for (let i = this.start; i < this.end; i++) {
      const node = this.nodes[i - this.start];
      const top = this.tops[i];
      if (this.nodeTops.get(node) !== top) {
        node.style.transform = `translateY(${top}px)`;
        this.nodeTops.set(node, top);
      }
      const position = String(i + 1);
      if (node.getAttribute('aria-posinset') !== position) node.setAttribute('aria-posinset', position);
      if (node.getAttribute('aria-setsize') !== size) node.setAttribute('aria-setsize', size);
    }
    this.writeFrame(painting.wantedScroll, painting.current);
  }

  /**
   * A whole paint now (first page, a reader's action, tests): the phases in
   * a row, repeated while measured heights open a gap in the window.
   */
  paint(): void {
    for (let pass = 0; pass < 4; pass++) {
      this.paintWrite();
      const fresh = this.painting?.fresh.length ?? 0;
      this.paintMeasure();
      this.paintPlace();
      if (fresh === 0) break;
    }
  }

  private writeFrame(scrollTop: number, current: number): void {
    const origin = this.items.length > 0 ? this.tops[0] : 0;
    if (this.layerTop !== origin) {
      this.layer.style.transform = `translateY(${-origin}px)`;
      this.layerTop = origin;
    }
    const total = this.totalHeight;
    if (this.spacerPx !== total) {
      this.spacer.style.height = `${total}px`;
      this.spacerPx = total;
    }
    if (Math.abs(current - scrollTop) >= 1) this.scroller.scrollTop = scrollTop;
    this.scrollPos = scrollTop;
  }

  private dropRecycled(): void {
    if (!this.recycled) return;
    for (const node of this.recycled.values()) node.remove();
    this.recycled = null;
  }

  /** Makes [first, last) the rendered range, in DOM order; returns the indexes of cards that need measuring. */
  private syncRange(first: number, last: number): number[] {
    const fresh: number[] = [];
    const overlap = this.end > this.start && first <= this.end && last >= this.start;
    if (!overlap) {
      for (const node of this.nodes) node.remove();
      this.nodes = [];
      const fragment = document.createDocumentFragment();
      for (let i = first; i < last; i++) {
        const node = this.takeNode(i, fresh);
        fragment.append(node);
        this.nodes.push(node);
      }
      this.layer.append(fragment);
      this.start = first;
      this.end = last;
      this.redraw.clear();
      return fresh;
    }
    // Drop what left the window at either end.
    while (this.start < first) {
      this.nodes.shift()?.remove();
      this.start++;
    }
    while (this.end > last) {
      this.nodes.pop()?.remove();
      this.end--;
    }
    // Add what entered it, keeping DOM order equal to list order.
    if (first < this.start) {
      const fragment = document.createDocumentFragment();
      const added: HTMLElement[] = [];
      for (let i = first; i < this.start; i++) {
        const node = this.takeNode(i, fresh);
        fragment.append(node);
        added.push(node);
      }
      this.layer.insertBefore(fragment, this.nodes[0] ?? null);
      this.nodes = added.concat(this.nodes);
      this.start = first;
    }
    if (last > this.end) {
      const fragment = document.createDocumentFragment();
      for (let i = this.end; i < last; i++) {
        const node = this.takeNode(i, fresh);
        fragment.append(node);
        this.nodes.push(node);
      }
      const after = this.nodes[this.end - this.start - 1]?.nextSibling ?? null;
      this.layer.insertBefore(fragment, after);
      this.end = last;
    }
    this.redrawChanged();
    for (let i = this.start; i < this.end; i++) {
      if (!this.known.has(this.items[i].key) && !fresh.includes(i)) fresh.push(i);
    }
    return fresh;
  }

  /** Draws again the rendered cards whose items changed (they are measured again as fresh ones). */
  private redrawChanged(): void {
    if (this.redraw.size === 0) return;
    for (let i = this.start; i < this.end; i++) {
      const item = this.items[i];
      if (!this.redraw.has(item.key)) continue;
      const old = this.nodes[i - this.start];
      const node = this.renderNode(item);
      node.style.transform = old.style.transform;
      this.nodeTops.set(node, this.nodeTops.get(old) ?? this.tops[i]);
      old.replaceWith(node);
      this.nodes[i - this.start] = node;
    }
    this.redraw.clear();
  }

  /** A card for item `index`: one kept from before a reset, or a new one (then listed in `fresh`). */
  private takeNode(index: number, fresh: number[]): HTMLElement {
    const item = this.items[index];
    const kept = this.recycled?.get(item.key + '\u0000' + (item.sig ?? ''));
    if (kept) {
      this.recycled?.delete(item.key + '\u0000' + (item.sig ?? ''));
      if (!this.known.has(item.key)) fresh.push(index);
      return kept;
    }
    const node = this.renderNode(item);
    // Placed at its estimated top right away so that it never flashes at 0.
    node.style.transform = `translateY(${this.tops[index]}px)`;
    this.nodeTops.set(node, this.tops[index]);
    fresh.push(index);
    return node;
  }
}
