// The cards of a column, maintained incrementally: new posts at the top and
// older pages at the bottom change only the cards they touch, and each change
// is recorded as an operation that the virtual list replays. Rare changes
// (a delete, a trim, new mutes) rebuild the list from the posts at once.
// No DOM here, so it is tested as data.

import type { Post } from '../bindings/Post';
import { shownPost, toDisplayItems, type DisplayItem } from './collapse';

/** A change to the card list, in the order it happened. */
export type DisplayOp =
  | { type: 'reset' }
  /** Cards to put above the current first one, newest first. */
  | { type: 'prepend'; items: DisplayItem[] }
  /** Cards to put below the current last one, newest first. */
  | { type: 'append'; items: DisplayItem[] }
  /** A card that leaves the list. */
  | { type: 'remove'; key: string }
  /** A card whose content changed (a new retweeter): drawn again in place. */
  | { type: 'update'; item: DisplayItem };

/** How cards are made from posts. */
export interface DisplayOptions {
  /** A retweeted post is shown once, with its retweeters. */
  collapse: boolean;
  /** Posts the reader muted. */
  hidden?: (post: Post) => boolean;
}

function retweeterSig(item: DisplayItem): string {
  return String(item.retweeters.length);
}

/** The cards of one column, newest first, and the operations since they were last taken. */
export class DisplayList {
  items: DisplayItem[] = [];
  private readonly byKey = new Map<string, DisplayItem>();
  private ops: DisplayOp[] = [];

  constructor(private options: DisplayOptions) {}

  /** Changes how cards are made; the list is rebuilt from `posts`. */
  configure(options: DisplayOptions, posts: readonly Post[]): void {
    this.options = options;
    this.reset(posts);
  }

  /** Rebuilds every card from the posts (newest first). */
  reset(posts: readonly Post[]): void {
    this.items = toDisplayItems(posts, this.options.collapse, this.options.hidden);
    this.byKey.clear();
    for (const item of this.items) this.byKey.set(item.key, item);
    this.ops = [{ type: 'reset' }];
  }

  /** The operations since the last call (a reset makes earlier ones moot). */
  takeOps(): DisplayOp[] {
    const ops = this.ops;
    this.ops = [];
    return ops;
  }

  /** The card showing `key`, if any. */
  item(key: string): DisplayItem | undefined {
    return this.byKey.get(key);
  }

  private pushPrepend(item: DisplayItem): void {
    const last = this.ops[this.ops.length - 1];
    // Ops list cards newest first; a newer card goes before the ones already queued.
    if (last?.type === 'prepend') last.items.unshift(item);
    else this.ops.push({ type: 'prepend', items: [item] });
  }

  private pushAppend(item: DisplayItem): void {
    const last = this.ops[this.ops.length - 1];
    if (last?.type === 'append') last.items.push(item);
    else this.ops.push({ type: 'append', items: [item] });
  }

  private removeItem(item: DisplayItem): void {
    const index = this.items.indexOf(item);
    if (index >= 0) this.items.splice(index, 1);
    this.byKey.delete(item.key);
    this.ops.push({ type: 'remove', key: item.key });
  }

  /**
   * Adds posts that are newer than every card (given newest first). A new
   * retweet of a post already on show moves its card to the top with the
   * retweeter added, as the collapsed list would have it.
   */
  addNewest(posts: readonly Post[]): void {
    for (let i = posts.length - 1; i >= 0; i--) {
      const post = posts[i];
      if (this.options.hidden?.(post)) continue;
      const shown = shownPost(post);
      const existing = this.options.collapse ? this.byKey.get(shown.id) : undefined;
      if (existing) {
        if (shown === post) continue;
        this.removeItem(existing);
        const retweeters = [post.author, ...existing.retweeters.filter((author) => author.id !== post.author.id)];
        const moved: DisplayItem = { key: existing.key, post: shown, via: post, retweeters };
        moved.sig = retweeterSig(moved);
        this.items.unshift(moved);
        this.byKey.set(moved.key, moved);
        this.pushPrepend(moved);
        continue;
      }
      const key = this.options.collapse ? shown.id : post.id;
      if (this.byKey.has(key)) continue;
      const item: DisplayItem = { key, post: shown, via: shown === post ? undefined : post, retweeters: shown === post ? [] : [post.author] };
      if (this.options.collapse) item.sig = retweeterSig(item);
      this.items.unshift(item);
      this.byKey.set(key, item);
      this.pushPrepend(item);
    }
  }

  /** Adds posts that are older than every card (given newest first), as an older page does. */
  addOldest(posts: readonly Post[]): void {
    for (const post of posts) {
      if (this.options.hidden?.(post)) continue;
      const shown = shownPost(post);
      const existing = this.options.collapse ? this.byKey.get(shown.id) : undefined;
      if (existing) {
        if (shown !== post && !existing.retweeters.some((author) => author.id === post.author.id)) {
          existing.retweeters.push(post.author);
          existing.sig = retweeterSig(existing);
          this.ops.push({ type: 'update', item: existing });
        }
        continue;
      }
      const key = this.options.collapse ? shown.id : post.id;
      if (this.byKey.has(key)) continue;
      const item: DisplayItem = { key, post: shown, via: shown === post ? undefined : post, retweeters: shown === post ? [] : [post.author] };
      if (this.options.collapse) item.sig = retweeterSig(item);
      this.items.push(item);
      this.byKey.set(key, item);
      this.pushAppend(item);
    }
  }
}
