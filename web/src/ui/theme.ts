// The colour theme: the reader's choice (kept in this browser), else the system's.

const THEME_KEY = 'deck.theme';

/** A theme. */
export type Theme = 'dark' | 'light';

/** The theme to start with. */
export function initialTheme(): Theme {
  const saved = localStorage.getItem(THEME_KEY);
  if (saved === 'dark' || saved === 'light') return saved;
  return matchMedia('(prefers-color-scheme: light)').matches ? 'light' : 'dark';
}

/** The theme on show. */
export function currentTheme(): Theme {
  return document.documentElement.dataset.theme === 'light' ? 'light' : 'dark';
}

/** Puts a theme on the page (and remembers it when the reader chose it). */
export function applyTheme(theme: Theme, persist: boolean): void {
  document.documentElement.dataset.theme = theme;
  document.documentElement.style.colorScheme = theme;
  if (persist) localStorage.setItem(THEME_KEY, theme);
}
