// Per-column mutes: plain words, /regular expressions/ and @accounts. A muted
// post is hidden on the client (mutes are the reader's, not the query's).

import type { Post } from '../bindings/Post';

/** A compiled mute list. */
export interface Mutes {
  words: string[];
  patterns: RegExp[];
  accounts: Set<string>;
}

/** Compiles mute entries such as `spoiler`, `/(?:giveaway|promo)/i` or `@spambot`. Bad regexes are ignored. */
export function compileMutes(entries: readonly string[]): Mutes {
  const mutes: Mutes = { words: [], patterns: [], accounts: new Set() };
  for (const raw of entries) {
    const entry = raw.trim();
    if (!entry) continue;
    const regex = /^\/(.+)\/([a-z]*)$/.exec(entry);
    if (regex) {
      try {
        const flags = regex[2].includes('i') ? regex[2] : `${regex[2]}i`;
        mutes.patterns.push(new RegExp(regex[1], flags.replace(/[gy]/g, '')));
      } catch {
        // An unfinished pattern mutes nothing rather than breaking the column.
      }
    } else if (entry.startsWith('@') && entry.length > 1) {
      mutes.accounts.add(entry.slice(1).toLowerCase());
    } else {
      mutes.words.push(entry.toLowerCase());
    }
  }
  return mutes;
}

/** Whether nothing is muted. */
export function mutesEmpty(mutes: Mutes): boolean {
  return mutes.words.length === 0 && mutes.patterns.length === 0 && mutes.accounts.size === 0;
}

/** Whether the post (or the original it retweets or the post it quotes) is muted. */
export function isMuted(mutes: Mutes, post: Post): boolean {
  if (mutesEmpty(mutes)) return false;
  const posts = [post, post.retweeted, post.quoted].filter((p): p is Post => p != null);
  for (const p of posts) {
    if (mutes.accounts.has(p.author.handle.toLowerCase())) return true;
    if (p.mentions.some((m) => mutes.accounts.has(m.toLowerCase()))) return true;
    const text = p.text.toLowerCase();
    for (const word of mutes.words) {
      if (containsWord(text, word)) return true;
    }
    for (const pattern of mutes.patterns) {
      if (pattern.test(p.text)) return true;
    }
  }
  return false;
}

/**
 * Whether `word` occurs in `text` as a word (or as a hashtag). Korean words
 * match with a particle attached, so only the start is bounded for them.
 */
function containsWord(text: string, word: string): boolean {
  let from = 0;
  for (;;) {
    const at = text.indexOf(word, from);
    if (at < 0) return false;
    const before = at === 0 ? '' : text[at - 1];
    const after = text[at + word.length] ?? '';
    const startOk = before === '' || !/[\p{L}\p{N}_]/u.test(before) || before === '#';
    const isHangul = /[\uac00-\ud7a3]$/.test(word);
    const endOk = isHangul || after === '' || !/[\p{L}\p{N}_]/u.test(after);
    if (startOk && endOk) return true;
    from = at + 1;
  }
}
