// @vitest-environment jsdom
// VirtualList under prepend, delete, resize and reset, with heights given per
// card (jsdom has no layout): only the window is rendered, in list order, the
// card in view does not move when cards arrive above it, and prepending does
// not shift any existing item's position.

import { describe, expect, it } from 'vitest';
import { VirtualList } from './VirtualList';

interface Item {
  key: string;
  sig?: string;
  height: number;
}

function setup(viewport = 400) {
  const scroller = document.createElement('div');
  document.body.append(scroller);
  let rendered = 0;
  const list = new VirtualList<Item>(
    scroller,
    (item) => {
      rendered++;
      const node = document.createElement('article');
      node.dataset.key = item.key;
      node.dataset.height = String(item.height);
      return node;
    },
    () => undefined,
    () => undefined,
    { estimatePx: 100, overscanPx: 100, measure: (node) => Number(node.dataset.height), viewport: () => viewport },
  );
  const keys = () => [...scroller.querySelectorAll('article')].map((node) => (node as HTMLElement).dataset.key);
  const topOf = (key: string) => {
    const node = scroller.querySelector<HTMLElement>(`article[data-key="${key}"]`);
    return node ? Number(/translateY\((-?[\d.]+)px\)/.exec(node.style.transform)?.[1]) : null;
  };
  const layerTop = () => Number(/translateY\((-?[\d.]+)px\)/.exec((scroller.querySelector('.vlist-layer') as HTMLElement).style.transform)?.[1] ?? 0);
  return { scroller, list, keys, topOf, layerTop, renders: () => rendered };
}

const make = (from: number, to: number, height = 50): Item[] => {
  const items: Item[] = [];
  for (let i = from; i < to; i++) items.push({ key: `k${i}`, height });
  return items;
};

describe('VirtualList', () => {
  it('renders only the window (plus overscan), in list order', () => {
    const { list, keys } = setup();
    list.append(make(0, 1000));
    list.paint();
    // 400 px of viewport + 100 px overscan over 50-px cards, after measuring.
    expect(keys()).toEqual(make(0, 10).map((item) => item.key));
    // Settling heights drew each card once.
    // Measured cards count as measured, the others as estimated.
    expect(list.totalHeight).toBe(10 * 50 + 990 * 100);
    expect(list.length).toBe(1000);
  });

  it('prepends without moving any existing item, and keeps the card in view in place', () => {
    const { scroller, list, keys, topOf, layerTop } = setup();
    list.append(make(100, 400));
    list.paint();
    scroller.scrollTop = 1000;
    scroller.dispatchEvent(new Event('scroll'));
    list.paint();
    const before = topOf('k120');
    expect(before).not.toBeNull();
    const offsetInView = (before as number) + layerTop() - scroller.scrollTop;
    list.prepend(make(90, 100, 80).reverse().reverse());
    list.paint();
    // Its own coordinate did not change …
    expect(topOf('k120')).toBe(before);
    // … and it is still at the same place on screen.
    expect((topOf('k120') as number) + layerTop() - scroller.scrollTop).toBe(offsetInView);
    expect(scroller.scrollTop).toBeGreaterThan(1000 + 10 * 70);
    // DOM order is list order.
    const shown = keys().map((key) => Number(key?.slice(1)));
    expect(shown).toEqual([...shown].sort((a, b) => a - b));
  });

  it('at the very top, new cards appear on top', () => {
    const { scroller, list, keys } = setup();
    list.append(make(10, 100));
    list.paint();
    list.prepend(make(5, 10));
    list.paint();
    expect(scroller.scrollTop).toBe(0);
    expect(keys()[0]).toBe('k5');
    expect(list.offsetOf(0)).toBe(0);
  });

  it('renders a bounded number of cards however many arrive', () => {
    const { list, keys, renders } = setup();
    list.append(make(10_000, 10_010));
    list.paint();
    for (let batch = 0; batch < 60; batch++) {
      list.prepend(make(9_000 - batch * 5, 9_005 - batch * 5));
      list.paint();
      expect(keys().length).toBeLessThanOrEqual(12);
    }
    // Each frame drew the cards that came in view, not the whole list.
    expect(renders()).toBeLessThanOrEqual(10 + 60 * 5);
  }, 30_000);

  it('removes a card above the view without moving the view', () => {
    const { scroller, list, keys, topOf, layerTop } = setup();
    list.append(make(0, 200));
    list.paint();
    scroller.scrollTop = 2000;
    scroller.dispatchEvent(new Event('scroll'));
    list.paint();
    const inView = keys()[5] as string;
    const screen = () => (topOf(inView) as number) + layerTop() - scroller.scrollTop;
    const before = screen();
    list.remove('k3');
    list.paint();
    expect(screen()).toBe(before);
    expect(list.length).toBe(199);
    list.remove(inView);
    list.paint();
    expect(topOf(inView)).toBeNull();
  });

  it('re-measures after a width change and settles estimated heights', () => {
    const { scroller, list, keys } = setup();
    const items = make(0, 50, 120);
    list.append(items);
    list.paint();
    expect(list.offsetOf(3)).toBe(360);
    // Everything rewrapped to 60 px: a reset with new heights (same keys keep their nodes).
    list.rerenderAll();
    list.reset(items.map((item) => ({ ...item, height: 60 })));
    list.paint();
    expect(list.offsetOf(3)).toBe(180);
    expect(keys().length).toBeGreaterThan(5);
    expect(scroller.scrollTop).toBe(0);
  });

  it('an update draws its card again at the next paint, measured anew, and touches no other card', () => {
    const { list, keys, topOf, renders } = setup();
    list.append(make(0, 20));
    list.paint();
    const drawn = renders();
    list.update({ key: 'k2', sig: 'retweeted', height: 90 });
    // Nothing is written before the paint (a column out of view updates without drawing).
    expect(renders()).toBe(drawn);
    list.paint();
    expect(renders() - drawn).toBe(1);
    expect(keys().slice(0, 4)).toEqual(['k0', 'k1', 'k2', 'k3']);
    // The new height was measured: the card below moved down by the 40 px it grew.
    expect(topOf('k3')).toBe(3 * 50 + 40);
  });

  it('a reset right after an update draws the updated card, not the stale one', () => {
    const { scroller, list, renders } = setup();
    list.append(make(0, 20));
    list.paint();
    const drawn = renders();
    const stale = scroller.querySelector('article[data-key="k2"]');
    list.update({ key: 'k2', sig: 'retweeted', height: 50 });
    list.reset([...make(0, 2), { key: 'k2', sig: 'retweeted', height: 50 }, ...make(3, 20)]);
    list.paint();
    const card = scroller.querySelector('article[data-key="k2"]');
    expect(card).not.toBeNull();
    expect(card).not.toBe(stale);
    expect(stale?.isConnected).toBe(false);
    // Only that card was drawn again.
    expect(renders() - drawn).toBe(1);
  });

  it('two resets without a paint between them leave no orphaned card', () => {
    const { scroller, list } = setup();
    list.append(make(0, 20));
    list.paint();
    list.reset(make(5, 20));
    list.reset(make(10, 20));
    list.paint();
    const inLayer = scroller.querySelectorAll('article').length;
    expect(inLayer).toBe(list.renderedNodes().length);
    expect(list.renderedRange[0]).toBe(0);
  });

  it('reset keeps the nodes of keys that stay and drops the others', () => {
    const { list, keys, renders } = setup();
    list.append(make(0, 20));
    list.paint();
    const drawn = renders();
    list.reset(make(1, 20));
    list.paint();
    expect(keys()[0]).toBe('k1');
    // Only the card that entered the window at the bottom was drawn.
    expect(renders() - drawn).toBe(1);
  });
});
