// Builders of Post values for the unit tests.

import type { Post } from '../bindings/Post';
import { makeCursor } from './cursor';

/** A post with sensible defaults; `ms` is its creation time. */
export function makePost(id: string, ms: number, overrides: Partial<Post> = {}): Post {
  return {
    id,
    kind: 'post',
    text: `post ${id}`,
    lang: 'en',
    created_at: new Date(ms).toISOString(),
    author: { id: `a${id}`, handle: `user${id}`, name: `User ${id}`, avatar_url: null },
    hashtags: [],
    mentions: [],
    cashtags: [],
    urls: [],
    retweet_count: 0,
    like_count: 0,
    reply_count: 0,
    quote_count: 0,
    has_media: false,
    media: [],
    card: null,
    sensitive: false,
    permalink: null,
    source: 'demo',
    reply_to: null,
    retweeted: null,
    quoted: null,
    cursor: makeCursor(ms, id),
    ...overrides,
  };
}

/** A retweet by `handle` of `original`. */
export function makeRetweet(id: string, ms: number, handle: string, original: Post): Post {
  return makePost(id, ms, {
    kind: 'retweet',
    text: `RT @${original.author.handle}: ${original.text}`,
    author: { id: `a-${handle}`, handle, name: handle, avatar_url: null },
    retweeted: original,
  });
}
