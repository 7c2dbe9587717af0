// PostCard: one post as an <article> — author, relative time, text with safe
// links, "retweeted by" header, quoted post, media indicator, live counts and
// language tag. Built with createElement/textContent only.

import type { Post } from '../bindings/Post';
import type { DisplayItem } from '../logic/collapse';
import { renderSegments, segmentText, type LinkHandlers } from '../logic/linkify';
import { relativeTime } from '../logic/time';
import { lang, t } from '../i18n';

/** What clicks in a card do. */
export interface CardHandlers extends LinkHandlers {
  /** The reader clicked an author. */
  user(handle: string): void;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function authorLine(post: Post, handlers: CardHandlers, withTime: boolean): HTMLElement {
  const line = el('div', 'post-author');
  const link = el('a', 'author-link');
  link.href = `#/user/${encodeURIComponent(post.author.handle)}`;
  link.dataset.user = post.author.handle;
  link.append(el('span', 'author-name', post.author.name || post.author.handle), el('span', 'author-handle', `@${post.author.handle}`));
  link.addEventListener('click', (event) => {
    event.preventDefault();
    event.stopPropagation();
    handlers.user(post.author.handle);
  });
  line.append(link);
  if (withTime) line.append(timeElement(post));
  return line;
}

function timeElement(post: Post): HTMLElement {
  const time = el('time', 'post-time');
  time.dateTime = post.created_at;
  const ms = Date.parse(post.created_at);
  time.dataset.ms = String(ms);
  time.title = new Date(ms).toLocaleString(lang() === 'ko' ? 'ko-KR' : 'en-US');
  time.textContent = relativeTime(ms, Date.now(), lang());
  return time;
}

/** Refreshes every relative time under `root`. */
export function refreshTimes(root: ParentNode): void {
  const now = Date.now();
  const current = lang();
  for (const time of root.querySelectorAll<HTMLElement>('time[data-ms]')) {
    const text = relativeTime(Number(time.dataset.ms), now, current);
    if (time.textContent !== text) time.textContent = text;
  }
}

function textBlock(post: Post, handlers: CardHandlers): HTMLElement {
  const text = el('p', 'post-text');
  text.dir = 'auto';
  if (post.lang) text.lang = post.lang;
  text.append(renderSegments(document, segmentText(post.text, post), handlers));
  return text;
}

function countsLine(post: Post): HTMLElement {
  const line = el('div', 'post-meta');
  const retweets = el('span', 'count count-retweets');
  retweets.dataset.count = 'retweets';
  retweets.title = t.retweets;
  retweets.textContent = `⟲ ${formatCount(post.retweet_count)}`;
  retweets.setAttribute('aria-label', `${t.retweets} ${post.retweet_count}`);
  const likes = el('span', 'count count-likes');
  likes.dataset.count = 'likes';
  likes.title = t.likes;
  likes.textContent = `♥ ${formatCount(post.like_count)}`;
  likes.setAttribute('aria-label', `${t.likes} ${post.like_count}`);
  line.append(retweets, likes);
  if (post.has_media) {
    const media = el('span', 'badge badge-media', `▣ ${t.media}`);
    line.append(media);
  }
  if (post.lang) {
    const tag = el('span', 'badge badge-lang', post.lang);
    tag.title = post.lang;
    line.append(tag);
  }
  line.append(el('span', 'badge badge-source', post.source));
  return line;
}

/** Compact count: 1234 → 1.2K. */
export function formatCount(n: number): string {
  if (n < 1000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}K`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

/** Builds the card of one display item. */
export function renderCard(item: DisplayItem, handlers: CardHandlers): HTMLElement {
  const post = item.post;
  const article = el('article', 'post');
  article.dataset.id = post.id;
  article.tabIndex = -1;
  if (item.retweeters.length > 0) {
    const header = el('div', 'post-retweeted-by');
    const names = item.retweeters.slice(0, 1).map((a) => a.name || `@${a.handle}`).join(', ');
    header.textContent = `⟲ ${t.retweetedBy(names, item.retweeters.length)}`;
    if (item.retweeters.length > 1) {
      header.append(el('span', 'retweeted-count', ` · ${t.retweetedByN(item.retweeters.length)}`));
    }
    article.append(header);
  }
  article.append(authorLine(post, handlers, true));
  if (post.kind === 'reply' && post.reply_to?.handle) article.append(el('div', 'post-reply-to', t.replyingTo(post.reply_to.handle)));
  article.append(textBlock(post, handlers));
  if (post.quoted) {
    const quote = el('blockquote', 'post-quoted');
    quote.setAttribute('aria-label', t.quoted);
    quote.append(authorLine(post.quoted, handlers, true), textBlock(post.quoted, handlers));
    article.append(quote);
  }
  article.append(countsLine(post));
  const label = `${post.author.name} @${post.author.handle}: ${post.text.slice(0, 80)}`;
  article.setAttribute('aria-label', label);
  return article;
}

/** Updates the live counts shown in a rendered card. */
export function updateCardCounts(article: HTMLElement, post: Post): void {
  const retweets = article.querySelector<HTMLElement>(':scope > .post-meta [data-count="retweets"]');
  const likes = article.querySelector<HTMLElement>(':scope > .post-meta [data-count="likes"]');
  if (retweets) {
    retweets.textContent = `⟲ ${formatCount(post.retweet_count)}`;
    retweets.setAttribute('aria-label', `${t.retweets} ${post.retweet_count}`);
  }
  if (likes) {
    likes.textContent = `♥ ${formatCount(post.like_count)}`;
    likes.setAttribute('aria-label', `${t.likes} ${post.like_count}`);
  }
}
