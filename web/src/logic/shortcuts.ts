// Keyboard shortcuts as data: a key press (and where focus is) → what the
// deck does. TweetDeck's keys: / search, ? help, ←/→ or h/l between
// columns, j/k scroll, n shows held-back posts, 1–9 jump to a column and 0
// to the last one, Alt+←/→ move the focused column.

/** What a shortcut does; `index` is a column position in the deck. */
export type Shortcut =
  | { kind: 'search' }
  | { kind: 'help' }
  | { kind: 'move'; delta: -1 | 1 }
  | { kind: 'focus'; index: number }
  | { kind: 'scroll'; by: number }
  | { kind: 'show-new' };

/** A key press, with what matters of where it happened. */
export interface KeyPress {
  key: string;
  altKey: boolean;
  ctrlKey: boolean;
  metaKey: boolean;
  /** In a text field, a select or an editable element. */
  typing: boolean;
  /** On a column's resize handle, where ←/→ resize instead. */
  onResizeHandle: boolean;
}

/** How far j and k scroll a column, in pixels. */
export const SCROLL_STEP = 160;

/**
 * The shortcut a key press means, with `focused` the focused column's
 * position (0 when none) and `columns` the number of columns; `null` when
 * the press is not a shortcut (and the browser keeps it).
 */
export function shortcutFor(press: KeyPress, focused: number, columns: number): Shortcut | null {
  if (press.typing || press.ctrlKey || press.metaKey) return null;
  const { key } = press;
  if (columns === 0 && key !== '/' && key !== '?') return null;
  if (press.altKey) {
    if (key === 'ArrowLeft') return { kind: 'move', delta: -1 };
    if (key === 'ArrowRight') return { kind: 'move', delta: 1 };
    return null;
  }
  switch (key) {
    case '/':
      return { kind: 'search' };
    case '?':
      return { kind: 'help' };
    case 'ArrowLeft':
    case 'h':
      return press.onResizeHandle ? null : { kind: 'focus', index: Math.max(0, focused - 1) };
    case 'ArrowRight':
    case 'l':
      return press.onResizeHandle ? null : { kind: 'focus', index: Math.min(columns - 1, focused + 1) };
    case 'j':
      return { kind: 'scroll', by: SCROLL_STEP };
    case 'k':
      return { kind: 'scroll', by: -SCROLL_STEP };
    case 'n':
      return { kind: 'show-new' };
    default:
      break;
  }
  if (key.length === 1 && key >= '0' && key <= '9') {
    const index = key === '0' ? columns - 1 : Number(key) - 1;
    return index < columns ? { kind: 'focus', index } : null;
  }
  return null;
}
