// The incremental card list against the full rebuild: after any sequence of
// new posts on top and older pages below, the cards equal what
// toDisplayItems makes from the same posts; and the column model's caps.

import { describe, expect, it } from 'vitest';
import type { Post } from '../bindings/Post';
import { toDisplayItems } from './collapse';
import { addLiveAt, emptyColumn, flushPendingOnTop, holdersOf, loadFirstPage, MAX_PENDING, pendingCount, removePost, trimOldest, updateCounts } from './column';
import { DisplayList, type DisplayOp } from './display';
import { makePost, makeRetweet } from './testPosts';

const keys = (items: { key: string }[]) => items.map((item) => item.key);

/** Replays ops onto a plain array, as the virtual list does. */
function replay(list: string[], ops: DisplayOp[], display: DisplayList): string[] {
  let out = list.slice();
  for (const op of ops) {
    if (op.type === 'reset') out = keys(display.items);
    else if (op.type === 'prepend') out = keys(op.items).concat(out);
    else if (op.type === 'append') out = out.concat(keys(op.items));
    else if (op.type === 'remove') out = out.filter((key) => key !== op.key);
  }
  return out;
}

describe('DisplayList', () => {
  for (const collapse of [true, false]) {
    it(`matches the full rebuild (collapse ${collapse})`, () => {
      const originals = [1, 2, 3].map((n) => makePost(`o${n}`, n * 100));
      const posts: Post[] = [];
      for (let i = 0; i < 40; i++) {
        const ms = 1000 + i * 10;
        posts.push(i % 3 === 0 ? makeRetweet(`r${i}`, ms, `fan${i % 5}`, originals[i % 3]) : makePost(`p${i}`, ms));
      }
      const newestFirst = posts.slice().reverse();
      // The middle 10 posts first, then the 15 older ones as a page, then the 15 newer live ones one by one.
      const display = new DisplayList({ collapse });
      display.reset(newestFirst.slice(15, 25));
      let replayed = replay([], display.takeOps(), display);
      display.addOldest(newestFirst.slice(25));
      replayed = replay(replayed, display.takeOps(), display);
      for (let i = 14; i >= 0; i--) display.addNewest([newestFirst[i]]);
      replayed = replay(replayed, display.takeOps(), display);
      const expected = toDisplayItems(newestFirst, collapse);
      expect(keys(display.items)).toEqual(keys(expected));
      expect(replayed).toEqual(keys(expected));
      expect(display.items.map((item) => item.retweeters.length)).toEqual(expected.map((item) => item.retweeters.length));
    });
  }

  it('hides muted posts and rebuilds when options change', () => {
    const posts = [makePost('2', 2000, { text: 'spoiler' }), makePost('1', 1000)];
    const display = new DisplayList({ collapse: true, hidden: (post) => post.text === 'spoiler' });
    display.reset(posts);
    expect(keys(display.items)).toEqual(['1']);
    display.configure({ collapse: true }, posts);
    expect(keys(display.items)).toEqual(['2', '1']);
    expect(display.takeOps()).toEqual([{ type: 'reset' }]);
  });
});

describe('column model caps and index', () => {
  it('caps the held-back posts and starts over from them when shown', () => {
    const column = loadFirstPage(emptyColumn(), [makePost('old', 10)], null);
    for (let i = 0; i < MAX_PENDING + 50; i++) addLiveAt(column, makePost(`n${i}`, 1000 + i), true);
    expect(column.pending.length).toBe(MAX_PENDING);
    expect(pendingCount(column)).toBe(MAX_PENDING + 50);
    expect(flushPendingOnTop(column)).toBeNull();
    expect(column.shown.length).toBe(MAX_PENDING);
    expect(column.shown[0].id).toBe(`n${MAX_PENDING + 49}`);
    // The dropped posts come back from the server as an older page.
    expect(column.hasMore).toBe(true);
    expect(column.next).toBe(column.shown[column.shown.length - 1].cursor);
    expect(column.ids.has('old')).toBe(false);
  });

  it('stacks held-back posts on top when they are all newer', () => {
    const column = loadFirstPage(emptyColumn(), [makePost('1', 1000)], null);
    addLiveAt(column, makePost('2', 2000), true);
    addLiveAt(column, makePost('3', 3000), true);
    expect(flushPendingOnTop(column)?.map((post) => post.id)).toEqual(['3', '2']);
    expect(column.shown.map((post) => post.id)).toEqual(['3', '2', '1']);
  });

  it('finds the holders of a post through the index, and forgets trimmed and deleted ones', () => {
    const original = makePost('o', 100);
    const column = loadFirstPage(emptyColumn(), [makeRetweet('r2', 3000, 'b', original), makeRetweet('r1', 2000, 'a', original), makePost('x', 1000)], null);
    expect(holdersOf(column, 'o').map((post) => post.id)).toEqual(['r2', 'r1']);
    expect(holdersOf(column, 'nope')).toEqual([]);
    expect(updateCounts(column, 'o', 5, 6)).toBe(true);
    expect(updateCounts(column, 'nope', 5, 6)).toBe(false);
    trimOldest(column, 2);
    expect(holdersOf(column, 'x')).toEqual([]);
    expect(removePost(column, 'o')).toBe(true);
    expect(column.shown).toEqual([]);
    expect(holdersOf(column, 'o')).toEqual([]);
  });
});
