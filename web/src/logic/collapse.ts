// Retweet collapsing: a post retweeted many times is shown once, with
// "retweeted by N", at the place of its newest retweet, instead of once per
// retweet.

import type { Author } from '../bindings/Author';
import type { Post } from '../bindings/Post';

/** One card in a column. */
export interface DisplayItem {
  /** Stable key: the id of the post shown. */
  key: string;
  /** The post the card shows (a retweet's original when known). */
  post: Post;
  /** The newest retweet carrying it, if the card stands for retweets. */
  via?: Post;
  /** Distinct accounts that retweeted it, newest first. */
  retweeters: Author[];
  /** Changes when the card must be drawn again. */
  sig?: string;
}

/** The post a card shows for `post`: a retweet's original when known. */
export function shownPost(post: Post): Post {
  return post.kind === 'retweet' && post.retweeted ? post.retweeted : post;
}

/**
 * Turns a newest-first list into cards. With `collapse`, every retweet of the
 * same original (and the original itself) becomes one card at the newest
 * position; without it, each post is its own card.
 */
export function toDisplayItems(posts: readonly Post[], collapse: boolean, hidden?: (post: Post) => boolean): DisplayItem[] {
  const items: DisplayItem[] = [];
  if (!collapse) {
    for (const post of posts) {
      if (hidden?.(post)) continue;
      const shown = shownPost(post);
      items.push({ key: post.id, post: shown, via: shown === post ? undefined : post, retweeters: shown === post ? [] : [post.author] });
    }
    return items;
  }
  const byOriginal = new Map<string, DisplayItem>();
  for (const post of posts) {
    if (hidden?.(post)) continue;
    const shown = shownPost(post);
    const existing = byOriginal.get(shown.id);
    if (existing) {
      if (shown !== post && !existing.retweeters.some((a) => a.id === post.author.id)) existing.retweeters.push(post.author);
      continue;
    }
    const item: DisplayItem = { key: shown.id, post: shown, via: shown === post ? undefined : post, retweeters: shown === post ? [] : [post.author] };
    byOriginal.set(shown.id, item);
    items.push(item);
  }
  for (const item of items) item.sig = String(item.retweeters.length);
  return items;
}
