// PostDetail: a post opened from a column, with the conversation Deck has
// stored around it — the chain of posts it answers (via `reply_to`) above,
// the replies to it below — and a link out to the whole thread on its own
// network. A modal <dialog>: Esc closes it, focus starts on the close
// button, every card inside opens in turn with a click or Enter.
//
// The timeline API has no "post by id" or "thread" query, so the
// conversation comes from the posts the open columns hold plus two
// timeline queries: `from:PARENT_AUTHOR` (to find the parent) and
// `to:AUTHOR` (replies to the author, kept when they answer this post).
// The minimal server query that would serve it directly is
// `GET /api/posts/{id}/thread` (docs/web.md).

import { fetchTimeline } from '../api';
import type { Post } from '../bindings/Post';
import { t } from '../i18n';
import { permalinkOf } from '../logic/media';
import { renderCard, type CardHandlers } from './PostCard';
import { el } from './dom';

/** Where the detail view looks for posts the page already has. */
export interface PostLookup {
  /** A post the open columns hold, by id. */
  find(id: string): Post | undefined;
  /** Posts the open columns hold that answer `id`. */
  repliesTo(id: string): Post[];
}

const MAX_PARENTS = 8;

/** The detail dialog (one per page). */
export class PostDetail {
  readonly el: HTMLDialogElement;
  private generation = 0;

  constructor(
    private readonly lookup: PostLookup,
    private readonly handlers: CardHandlers,
  ) {
    this.el = el('dialog', 'post-detail');
    this.el.addEventListener('click', (event) => {
      // A click on the backdrop (outside the box) closes, as Esc does.
      if (event.target === this.el) this.el.close();
    });
  }

  /** Opens `post` (shown through `via`, the retweet it came in, when given). */
  open(post: Post, via?: Post): void {
    const generation = ++this.generation;
    const handlers: CardHandlers = {
      ...this.handlers,
      hashtag: (tag) => {
        this.el.close();
        this.handlers.hashtag(tag);
      },
      mention: (handle) => {
        this.el.close();
        this.handlers.mention(handle);
      },
      cashtag: (tag) => {
        this.el.close();
        this.handlers.cashtag(tag);
      },
      user: (handle) => {
        this.el.close();
        this.handlers.user(handle);
      },
      open: (next, nextVia) => this.open(next, nextVia),
    };
    const heading = el('h2', 'post-detail-title', t.postDetail);
    heading.id = 'post-detail-title';
    this.el.setAttribute('aria-labelledby', heading.id);
    const close = el('button', 'icon-button dialog-close', '×');
    close.type = 'button';
    close.setAttribute('aria-label', t.close);
    close.addEventListener('click', () => this.el.close());
    const parents = el('section', 'post-detail-parents');
    parents.setAttribute('aria-label', t.inReplyTo);
    const main = renderCard({ key: post.id, post, via, retweeters: via ? [via.author] : [] }, handlers, { mediaSize: 'large' });
    main.classList.add('post-detail-main');
    main.tabIndex = 0;
    const replies = el('section', 'post-detail-replies');
    const repliesHeading = el('h3', undefined, t.replies);
    const repliesList = el('div', 'post-detail-reply-list');
    replies.append(repliesHeading, repliesList);
    const links = el('div', 'dialog-links');
    const permalink = permalinkOf(post);
    if (permalink) {
      const out = el('a', 'post-detail-out', t.openThread);
      out.href = permalink;
      out.target = '_blank';
      out.rel = 'noopener noreferrer';
      links.append(out);
    }
    this.el.replaceChildren(close, heading, parents, main, replies, links);
    if (!this.el.open) this.el.showModal();
    close.focus();

    const card = (p: Post) => renderCard({ key: p.id, post: p, retweeters: [] }, handlers, { mediaSize: 'small' });
    // The parent chain from what the page holds, then from the parent author's timeline.
    const chain: Post[] = [];
    const fillParents = () => {
      parents.replaceChildren(...chain.slice().reverse().map(card));
    };
    const walk = async () => {
      let current: Post = post;
      for (let depth = 0; depth < MAX_PARENTS; depth++) {
        const parentId = current.reply_to?.post_id;
        if (!parentId) return;
        let parent = this.lookup.find(parentId);
        if (!parent && current.reply_to?.handle) {
          const page = await fetchTimeline(`from:${current.reply_to.handle}`, null, 100).catch(() => null);
          if (generation !== this.generation) return;
          parent = page?.posts.find((candidate) => candidate.id === parentId);
        }
        if (!parent) {
          parents.prepend(el('p', 'post-detail-missing', t.parentMissing));
          return;
        }
        chain.push(parent);
        fillParents();
        current = parent;
      }
    };
    void walk();
    // Replies: those the page holds, and replies to the author that answer this post.
    const seen = new Set<string>();
    const addReplies = (found: Post[]) => {
      for (const reply of found) {
        if (seen.has(reply.id) || reply.reply_to?.post_id !== post.id) continue;
        seen.add(reply.id);
        repliesList.append(card(reply));
      }
      repliesList.dataset.count = String(seen.size);
    };
    addReplies(this.lookup.repliesTo(post.id));
    const status = el('p', 'post-detail-status', t.loading);
    repliesList.append(status);
    fetchTimeline(`to:${post.author.handle}`, null, 100).then(
      (page) => {
        if (generation !== this.generation) return;
        status.remove();
        addReplies(page.posts);
        if (seen.size === 0) repliesList.append(el('p', 'post-detail-missing', t.noReplies));
      },
      () => {
        status.remove();
        if (seen.size === 0) repliesList.append(el('p', 'post-detail-missing', t.noReplies));
      },
    );
  }
}
