// The deck: the reader's columns, in order, with their settings. Signed-out
// decks live in localStorage; signed-in decks are also saved to the server
// (PUT /api/me/deck) and restored from it on login on any device.

import { fetchSavedDeck, saveDeck } from './api';
import type { Deck } from './bindings/Deck';
import type { DeckColumn } from './bindings/DeckColumn';
import type { DeckLibrary as WireDeckLibrary } from './bindings/DeckLibrary';
import type { NamedDeck as WireNamedDeck } from './bindings/NamedDeck';
import type { ColumnFilters } from './logic/query';
import { signedInEmail } from './session';

/** Settings of one column that are not part of its query (the server keeps them as given). */
export type ColumnExtras = ColumnFilters & {
  /** `trends` for the trends column; absent for post columns. */
  kind?: 'trends';
  /** Trends window (`5m`, `1h`, `24h`). */
  window?: string;
  /** Mute entries: words, /regex/, @account. */
  mutes?: string[];
  /** Slow mode: at most this many posts a minute (0 or absent = off). */
  slow?: number;
  /** Show a retweeted post once with "retweeted by N" (default true). */
  collapse?: boolean;
  /** Desktop notifications for this column. */
  notify?: boolean;
  /** Media preview size (default large). */
  media_size?: 'off' | 'small' | 'large';
};

/** One column as saved: the wire's `DeckColumn` (generated from the server's type), whose `filters` the client types. */
export type ColumnConfig = Omit<DeckColumn, 'filters'> & { filters: ColumnExtras };

/** The open deck (the body of GET|PUT /api/me/deck without the library). */
export type DeckConfig = Omit<Deck, 'columns' | 'library'> & { columns: ColumnConfig[] };

/** A named deck of the reader's library. */
export type NamedDeck = Omit<WireNamedDeck, 'columns'> & { columns: ColumnConfig[] };

/** Every deck of the reader (this browser's, and the account's when signed in), and which one is open. */
export type DeckLibrary = Omit<WireDeckLibrary, 'decks'> & { decks: NamedDeck[] };

const LIBRARY_KEY = 'deck.library';
/** Decks a library holds at most (`loadLibrary` keeps no more; `logic/library.ts` adds no more). */
export const MAX_DECKS = 20;
/** Characters of a deck's name kept. */
export const MAX_DECK_NAME = 60;

/** A library of one deck, open, under `name`. */
export function libraryOf(deck: DeckConfig, name: string): DeckLibrary {
  return { current: 'd1', decks: [{ ...deck, id: 'd1', name: name.slice(0, MAX_DECK_NAME) }] };
}

const LOCAL_KEY = 'deck.columns';
/** Column widths a reader can pick from; drag-resizing gives any width in between. */
export const WIDTHS = { narrow: 280, medium: 340, wide: 440 } as const;
export const MIN_WIDTH = 240;
export const MAX_WIDTH = 720;

/** A fresh column id. */
export function newColumnId(): string {
  return `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 7)}`;
}

/** The first screen: a BTS keyword column and the trends column. */
export function defaultDeck(trendsTitle: string): DeckConfig {
  return {
    columns: [
      { id: 'bts', title: 'BTS', query: 'BTS', width: WIDTHS.medium, filters: {} },
      { id: 'trends', title: trendsTitle, query: '', width: WIDTHS.medium, filters: { kind: 'trends', window: '1h' } },
    ],
  };
}

/** Keeps only well-formed columns from untrusted JSON (localStorage or server). */
export function sanitizeDeck(value: unknown): DeckConfig | null {
  if (!value || typeof value !== 'object' || !Array.isArray((value as DeckConfig).columns)) return null;
  const columns: ColumnConfig[] = [];
  const seen = new Set<string>();
  for (const raw of (value as DeckConfig).columns) {
    if (!raw || typeof raw !== 'object') continue;
    const id = typeof raw.id === 'string' && raw.id ? raw.id : newColumnId();
    if (seen.has(id)) continue;
    seen.add(id);
    const filters = raw.filters && typeof raw.filters === 'object' ? raw.filters : {};
    const query = typeof raw.query === 'string' ? raw.query : '';
    if (!query && filters.kind !== 'trends') continue;
    const width = typeof raw.width === 'number' && Number.isFinite(raw.width) ? Math.min(MAX_WIDTH, Math.max(MIN_WIDTH, raw.width)) : WIDTHS.medium;
    columns.push({ id, title: typeof raw.title === 'string' && raw.title ? raw.title : query, query, width, filters });
  }
  const rawMutes = (value as DeckConfig).mutes;
  const mutes = Array.isArray(rawMutes) ? rawMutes.filter((mute): mute is string => typeof mute === 'string' && mute.trim() !== '').slice(0, 200) : [];
  return mutes.length > 0 ? { columns, mutes } : { columns };
}

/** Keeps only well-formed decks of a library from untrusted JSON (localStorage or server); null when none is left. */
export function sanitizeLibrary(value: unknown, fallbackName: string): DeckLibrary | null {
  const parsed = value as DeckLibrary | null;
  if (!parsed || typeof parsed !== 'object' || !Array.isArray(parsed.decks)) return null;
  const decks: NamedDeck[] = [];
  for (const entry of parsed.decks.slice(0, MAX_DECKS)) {
    const deck = sanitizeDeck(entry);
    if (!deck || typeof entry.id !== 'string' || !entry.id || decks.some((other) => other.id === entry.id)) continue;
    decks.push({ ...deck, id: entry.id, name: typeof entry.name === 'string' && entry.name.trim() ? entry.name.trim().slice(0, MAX_DECK_NAME) : fallbackName });
  }
  if (decks.length === 0) return null;
  return { current: decks.some((deck) => deck.id === parsed.current) ? parsed.current : decks[0].id, decks };
}

/** The library kept in this browser; a browser from before named decks gets its one deck as "Deck". */
export function loadLibrary(fallbackName: string): DeckLibrary | null {
  try {
    const raw = localStorage.getItem(LIBRARY_KEY);
    const library = raw ? sanitizeLibrary(JSON.parse(raw), fallbackName) : null;
    if (library) return library;
  } catch {
    // A broken library falls back to the single deck below.
  }
  const single = loadLocalDeck();
  return single ? libraryOf(single, fallbackName) : null;
}

/** Keeps the library in this browser (the open deck also under the old single-deck key). */
export function saveLibrary(library: DeckLibrary): void {
  localStorage.setItem(LIBRARY_KEY, JSON.stringify(library));
}

/** Forgets every deck and mute kept in this browser (log out). */
export function clearLocalDecks(): void {
  localStorage.removeItem(LIBRARY_KEY);
  localStorage.removeItem(LOCAL_KEY);
}

/** A deck as a link: `#/deck?d=` + base64url of its JSON (no mutes: they are the reader's own). */
export function deckLink(deck: DeckConfig): string {
  const json = JSON.stringify({ columns: deck.columns });
  const bytes = new TextEncoder().encode(json);
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return `#/deck?d=${btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')}`;
}

/** The deck in a `#/deck?d=` link, or null when it is not one. */
export function deckFromLink(data: string): DeckConfig | null {
  try {
    const binary = atob(data.replace(/-/g, '+').replace(/_/g, '/'));
    const bytes = Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
    return sanitizeDeck(JSON.parse(new TextDecoder().decode(bytes)));
  } catch {
    return null;
  }
}

/** The deck kept in this browser, if any. */
export function loadLocalDeck(): DeckConfig | null {
  try {
    const raw = localStorage.getItem(LOCAL_KEY);
    return raw ? sanitizeDeck(JSON.parse(raw)) : null;
  } catch {
    return null;
  }
}

let saveTimer: ReturnType<typeof setTimeout> | undefined;

/**
 * What the server keeps (`PUT /api/me/deck`, docs/api.md): the open deck's
 * columns and mutes, and the whole library of named decks with theirs.
 */
function serverSnapshot(deck: DeckConfig, library: DeckLibrary): Deck {
  const body: Deck = { columns: deck.columns, ...(deck.mutes?.length ? { mutes: deck.mutes } : {}), library: { current: library.current, decks: library.decks } };
  // A copy: the debounced save sends the deck as it was now.
  return JSON.parse(JSON.stringify(body)) as Deck;
}

/** Saves the deck here at once and, when signed in, the library to the server shortly after (debounced). */
export function persistDeck(deck: DeckConfig, library: DeckLibrary, onServerError?: (error: unknown) => void): void {
  localStorage.setItem(LOCAL_KEY, JSON.stringify(deck));
  if (!signedInEmail()) return;
  clearTimeout(saveTimer);
  const snapshot = serverSnapshot(deck, library);
  saveTimer = setTimeout(() => {
    saveDeck(snapshot).catch((error) => onServerError?.(error));
  }, 400);
}

/** Saves the deck and library to the server now (after login, when the server has none). */
export async function pushDeckNow(deck: DeckConfig, library: DeckLibrary): Promise<void> {
  clearTimeout(saveTimer);
  await saveDeck(serverSnapshot(deck, library));
}

/**
 * The signed-in user's saved decks, or null when they have none yet: the
 * library when the server has one, else (saved before named decks) the one
 * deck as a library of one named `fallbackName`.
 */
export async function loadServerLibrary(fallbackName: string): Promise<DeckLibrary | null> {
  // Typed by the wire, but checked like any outside input.
  const saved: unknown = await fetchSavedDeck();
  const library = saved && typeof saved === 'object' && 'library' in saved ? sanitizeLibrary(saved.library, fallbackName) : null;
  if (library) return library;
  const deck = sanitizeDeck(saved);
  return deck && deck.columns.length > 0 ? libraryOf(deck, fallbackName) : null;
}
