// @vitest-environment jsdom
// The library of named decks: the page edits a copy of the open deck, adds
// no more than MAX_DECKS with names of bounded length, never removes the
// last deck, and says which deck to open when the open one is removed.

import { describe, expect, it } from 'vitest';
import { MAX_DECKS, sanitizeLibrary, type DeckConfig } from '../deck';
import { addDeck, freshLibrary, MAX_DECK_NAME, openDeck, removeDeck, renameDeck, storeOpenDeck } from './library';

const oneColumn = (query: string): DeckConfig => ({ columns: [{ id: query, title: query, query, width: 340, filters: {} }] });

describe('library', () => {
  it('starts with the first screen, and the page edits a copy of the open deck', () => {
    const library = freshLibrary('Trends', 'Deck 1');
    expect(library.decks).toHaveLength(1);
    const deck = openDeck(library);
    expect(deck.columns.map((column) => column.query)).toEqual(['BTS', '']);
    deck.columns[0].filters.lang = 'ko';
    deck.columns.pop();
    expect(library.decks[0].columns).toHaveLength(2);
    expect(library.decks[0].columns[0].filters.lang).toBeUndefined();
    storeOpenDeck(library, { ...deck, mutes: ['spoiler'] });
    expect(library.decks[0].columns).toHaveLength(1);
    expect(library.decks[0].mutes).toEqual(['spoiler']);
    storeOpenDeck(library, deck);
    expect(library.decks[0].mutes).toBeUndefined();
  });

  it('adds decks up to the limit, with names cut to their bound', () => {
    const library = freshLibrary('Trends', 'Deck 1');
    const id = addDeck(library, oneColumn('#kpop'), 'k'.repeat(500), 'd2');
    expect(id).toBe('d2');
    expect(library.decks[1].name).toHaveLength(MAX_DECK_NAME);
    // Adding does not open it.
    expect(library.current).toBe('d1');
    for (let n = library.decks.length; n < MAX_DECKS; n++) expect(addDeck(library, oneColumn(`q${n}`), `Deck ${n + 1}`)).not.toBeNull();
    expect(addDeck(library, oneColumn('one too many'), 'Deck 21')).toBeNull();
    expect(library.decks).toHaveLength(MAX_DECKS);
  });

  it('renames with the same bound, and removes any deck but the last', () => {
    const library = freshLibrary('Trends', 'Deck 1');
    addDeck(library, oneColumn('#kpop'), 'K-pop', 'd2');
    expect(renameDeck(library, 'd2', '케이팝'.repeat(40))).toBe(true);
    expect(library.decks[1].name).toHaveLength(MAX_DECK_NAME);
    expect(renameDeck(library, 'nope', 'x')).toBe(false);
    expect(removeDeck(library, 'd2')).toEqual({ kind: 'saved' });
    expect(removeDeck(library, 'd1')).toEqual({ kind: 'kept' });
    expect(library.decks).toHaveLength(1);
    addDeck(library, oneColumn('#kpop'), 'K-pop', 'd3');
    // Removing the open deck says which one to open instead.
    expect(removeDeck(library, 'd1')).toEqual({ kind: 'open', id: 'd3' });
    expect(removeDeck(library, 'missing')).toEqual({ kind: 'kept' });
  });
});

describe('a library read from untrusted JSON (this browser or the server)', () => {
  const column = (id: string) => ({ id, title: 'BTS', query: 'BTS', width: 340, filters: {} });

  it('keeps the well-formed decks, each id once, at most MAX_DECKS, and an open deck that exists', () => {
    const raw = {
      current: 'gone',
      decks: [
        { id: 'd1', name: '  Comeback  ', columns: [column('a')], mutes: ['spoiler', 7, ''] },
        { id: 'd1', name: 'again', columns: [column('b')] },
        { id: 3, name: 'no id', columns: [] },
        { id: 'd2', name: '', columns: [column('c')] },
        'junk',
        ...Array.from({ length: 30 }, (_, n) => ({ id: `x${n}`, name: `X${n}`, columns: [] })),
      ],
    };
    const library = sanitizeLibrary(raw, 'Deck 1');
    expect(library?.decks.map((deck) => deck.id).slice(0, 3)).toEqual(['d1', 'd2', 'x0']);
    expect(library?.decks.length).toBeLessThanOrEqual(MAX_DECKS);
    expect(library?.decks[0]).toMatchObject({ name: 'Comeback', mutes: ['spoiler'] });
    expect(library?.decks[1].name).toBe('Deck 1');
    expect(library?.current).toBe('d1');
  });

  it('is null when nothing usable is left', () => {
    expect(sanitizeLibrary(null, 'Deck 1')).toBeNull();
    expect(sanitizeLibrary({ current: 'd1', decks: 'no' }, 'Deck 1')).toBeNull();
    expect(sanitizeLibrary({ current: 'd1', decks: [{ name: 'no id', columns: [] }] }, 'Deck 1')).toBeNull();
  });
});
