// Column filters as query text: the filters a reader sets in a column's
// settings become operators of the column query, so history and live posts
// are filtered by the server the same way.

/** Per-column filters (saved with the deck). */
export type ColumnFilters = {
  /** Show retweets (default true); false adds `-filter:retweets`. */
  retweets?: boolean;
  /** Only posts with media: `filter:media`. */
  media?: boolean;
  /** A language code: `lang:xx`. */
  lang?: string;
  /** `min_retweets:N`. */
  min_retweets?: number;
  /** `min_faves:N`. */
  min_faves?: number;
  /** Words to exclude: `-word` each. */
  exclude?: string[];
};

/** Quotes a word for the query language when it holds spaces or quotes. */
function term(word: string): string {
  return /[\s"]/.test(word) ? `"${word.replace(/"/g, '')}"` : word;
}

/** The full query a column sends: its base query followed by its filters' operators. */
export function effectiveQuery(base: string, filters: ColumnFilters | undefined): string {
  const parts: string[] = [];
  const trimmed = base.trim();
  if (trimmed) parts.push(trimmed);
  if (!filters) return parts.join(' ');
  if (filters.retweets === false) parts.push('-filter:retweets');
  if (filters.media) parts.push('filter:media');
  if (filters.lang && /^[a-z]{2,3}$/i.test(filters.lang.trim())) parts.push(`lang:${filters.lang.trim().toLowerCase()}`);
  if (filters.min_retweets && filters.min_retweets > 0) parts.push(`min_retweets:${Math.floor(filters.min_retweets)}`);
  if (filters.min_faves && filters.min_faves > 0) parts.push(`min_faves:${Math.floor(filters.min_faves)}`);
  for (const word of filters.exclude ?? []) {
    const clean = word.trim().replace(/^-+/, '');
    if (clean) parts.push(`-${term(clean)}`);
  }
  return parts.join(' ');
}

/** A short column title for a query: the query itself, shortened. */
export function titleForQuery(query: string): string {
  const trimmed = query.trim();
  return trimmed.length > 40 ? `${trimmed.slice(0, 39)}…` : trimmed;
}

/** The words an automatic title needs, in the reader's language. */
export interface TitleStrings {
  postsBy(handle: string): string;
  mentionsOf(handle: string): string;
}

/** The automatic title of a query: "Posts by @x" for `from:x`, "Mentions of @x" for `@x`, else the query. */
export function autoTitle(query: string, strings: TitleStrings): string {
  const trimmed = query.trim();
  let match = /^from:([^\s]+)$/i.exec(trimmed);
  if (match) return strings.postsBy(match[1].replace(/^@/, ''));
  match = /^@([^\s@]+)$/.exec(trimmed);
  if (match) return strings.mentionsOf(match[1]);
  return titleForQuery(trimmed);
}

/** A column's title as shown: its own title when the reader renamed it, else the automatic one. */
export function displayTitle(config: { title: string; query: string; filters: { kind?: string } }, strings: TitleStrings & { trends: string }): string {
  if (config.filters.kind === 'trends') return config.title || strings.trends;
  if (!config.title || config.title === config.query.trim()) return autoTitle(config.query, strings);
  return config.title;
}
