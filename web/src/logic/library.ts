// The reader's library of named decks, as plain data: which deck is open,
// adding (bounded in number and name length), renaming, removing (never the
// last) and writing the page's deck back into its entry. Storage (this
// browser and the server) stays in `deck.ts`; the page (`ui/App.ts`) calls
// these and redraws.

import { defaultDeck, libraryOf, MAX_DECK_NAME, MAX_DECKS, newColumnId, type DeckConfig, type DeckLibrary } from '../deck';
export { MAX_DECK_NAME };

/** A library of one deck, the first screen's. */
export function freshLibrary(trendsTitle: string, name: string): DeckLibrary {
  return libraryOf(defaultDeck(trendsTitle), name);
}

/** A copy of the open deck, for the page to edit (the first deck if the open one is gone). */
export function openDeck(library: DeckLibrary): DeckConfig {
  const entry = library.decks.find((deck) => deck.id === library.current) ?? library.decks[0];
  if (!entry) return { columns: [] };
  return { columns: entry.columns.map((column) => ({ ...column, filters: { ...column.filters } })), ...(entry.mutes ? { mutes: [...entry.mutes] } : {}) };
}

/** Writes the page's deck back into the open entry. */
export function storeOpenDeck(library: DeckLibrary, deck: DeckConfig): void {
  const entry = library.decks.find((candidate) => candidate.id === library.current);
  if (!entry) return;
  entry.columns = deck.columns;
  if (deck.mutes) entry.mutes = deck.mutes;
  else delete entry.mutes;
}

/** Adds a deck (not opened); its id, or `null` when the library is full. */
export function addDeck(library: DeckLibrary, deck: DeckConfig, name: string, id: string = newColumnId()): string | null {
  if (library.decks.length >= MAX_DECKS) return null;
  library.decks.push({ id, name: name.slice(0, MAX_DECK_NAME), columns: deck.columns, ...(deck.mutes ? { mutes: deck.mutes } : {}) });
  return id;
}

/** Renames a deck; whether it exists. */
export function renameDeck(library: DeckLibrary, id: string, name: string): boolean {
  const entry = library.decks.find((deck) => deck.id === id);
  if (entry) entry.name = name.slice(0, MAX_DECK_NAME);
  return entry !== undefined;
}

/**
 * Removes a deck, never the last one. Returns what the page must do: `open`
 * with the deck to open when the open one went, `saved` when another went,
 * `kept` when nothing changed.
 */
export function removeDeck(library: DeckLibrary, id: string): { kind: 'open'; id: string } | { kind: 'saved' } | { kind: 'kept' } {
  if (library.decks.length <= 1 || !library.decks.some((deck) => deck.id === id)) return { kind: 'kept' };
  library.decks = library.decks.filter((deck) => deck.id !== id);
  return library.current === id ? { kind: 'open', id: library.decks[0].id } : { kind: 'saved' };
}
