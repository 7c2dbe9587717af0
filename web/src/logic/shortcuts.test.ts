// Keyboard shortcuts as data: every key of the help list, and the presses
// that must stay the browser's (typing, modifiers, resize handles).

import { describe, expect, it } from 'vitest';
import { SCROLL_STEP, shortcutFor, type KeyPress } from './shortcuts';

const press = (key: string, more: Partial<KeyPress> = {}): KeyPress => ({
  key,
  altKey: false,
  ctrlKey: false,
  metaKey: false,
  typing: false,
  onResizeHandle: false,
  ...more,
});

describe('keyboard shortcuts', () => {
  it('maps every key of the help list', () => {
    expect(shortcutFor(press('/'), 0, 3)).toEqual({ kind: 'search' });
    expect(shortcutFor(press('?'), 0, 3)).toEqual({ kind: 'help' });
    expect(shortcutFor(press('j'), 1, 3)).toEqual({ kind: 'scroll', by: SCROLL_STEP });
    expect(shortcutFor(press('k'), 1, 3)).toEqual({ kind: 'scroll', by: -SCROLL_STEP });
    expect(shortcutFor(press('n'), 1, 3)).toEqual({ kind: 'show-new' });
    expect(shortcutFor(press('ArrowLeft', { altKey: true }), 1, 3)).toEqual({ kind: 'move', delta: -1 });
    expect(shortcutFor(press('ArrowRight', { altKey: true }), 1, 3)).toEqual({ kind: 'move', delta: 1 });
  });

  it('moves the focus between columns, stopping at both ends', () => {
    for (const key of ['ArrowLeft', 'h']) {
      expect(shortcutFor(press(key), 2, 3)).toEqual({ kind: 'focus', index: 1 });
      expect(shortcutFor(press(key), 0, 3)).toEqual({ kind: 'focus', index: 0 });
    }
    for (const key of ['ArrowRight', 'l']) {
      expect(shortcutFor(press(key), 0, 3)).toEqual({ kind: 'focus', index: 1 });
      expect(shortcutFor(press(key), 2, 3)).toEqual({ kind: 'focus', index: 2 });
    }
  });

  it('jumps to a column by number, 0 to the last, and ignores a number past the end', () => {
    expect(shortcutFor(press('1'), 2, 3)).toEqual({ kind: 'focus', index: 0 });
    expect(shortcutFor(press('3'), 0, 3)).toEqual({ kind: 'focus', index: 2 });
    expect(shortcutFor(press('0'), 0, 3)).toEqual({ kind: 'focus', index: 2 });
    expect(shortcutFor(press('4'), 0, 3)).toBeNull();
  });

  it('leaves the key to the browser while typing, with Ctrl or Meta, and on a resize handle', () => {
    expect(shortcutFor(press('j', { typing: true }), 0, 3)).toBeNull();
    expect(shortcutFor(press('/', { typing: true }), 0, 3)).toBeNull();
    expect(shortcutFor(press('l', { ctrlKey: true }), 0, 3)).toBeNull();
    expect(shortcutFor(press('1', { metaKey: true }), 0, 3)).toBeNull();
    expect(shortcutFor(press('ArrowLeft', { onResizeHandle: true }), 1, 3)).toBeNull();
    expect(shortcutFor(press('ArrowRight', { onResizeHandle: true }), 1, 3)).toBeNull();
    expect(shortcutFor(press('j', { altKey: true }), 1, 3)).toBeNull();
    expect(shortcutFor(press('x'), 1, 3)).toBeNull();
  });

  it('offers only search and help on an empty deck', () => {
    expect(shortcutFor(press('/'), 0, 0)).toEqual({ kind: 'search' });
    expect(shortcutFor(press('?'), 0, 0)).toEqual({ kind: 'help' });
    for (const key of ['j', 'ArrowLeft', '0', '1', 'n']) expect(shortcutFor(press(key), 0, 0)).toBeNull();
    expect(shortcutFor(press('ArrowLeft', { altKey: true }), 0, 0)).toBeNull();
  });
});
