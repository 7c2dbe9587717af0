// PostCard: one post as an <article> — avatar, author, the time (a link to
// the post on its own network), text with safe links, "retweeted by" with the
// retweet's own time, quoted post, photos / video posters / link card (sizes
// reserved before they load, blurred when sensitive), live counts and
// language tag. Built with createElement/textContent only.

import type { Post } from '../bindings/Post';
import type { DisplayItem } from '../logic/collapse';
import { renderSegments, segmentText, type LinkHandlers } from '../logic/linkify';
import { cardOf, mediaBoxes, mediaOf, permalinkOf, avatarOf, isSensitive, type MediaSize } from '../logic/media';
import { relativeTime } from '../logic/time';
import { lang, t } from '../i18n';
import { el } from './dom';

/** What clicks in a card do. */
export interface CardHandlers extends LinkHandlers {
  /** The reader clicked an author. */
  user(handle: string): void;
  /** The reader opened a post (click or Enter on the card). */
  open?(post: Post, via?: Post): void;
}

/** How a column draws its cards. */
export interface CardOptions {
  /** Media preview size (TweetDeck's setting): none, small thumbnails or full width. */
  mediaSize: MediaSize;
}

const DEFAULT_OPTIONS: CardOptions = { mediaSize: 'large' };

function avatar(post: Post): HTMLElement {
  const url = avatarOf(post);
  const label = t.avatarOf(post.author.handle);
  if (url) {
    const img = el('img', 'avatar');
    img.src = url;
    img.alt = label;
    img.width = 36;
    img.height = 36;
    img.loading = 'lazy';
    img.decoding = 'async';
    // A picture that cannot be had (gone from its network, the proxy refused it) becomes the initial.
    img.addEventListener('error', () => img.replaceWith(initialAvatar(post)), { once: true });
    return img;
  }
  return initialAvatar(post);
}

/** No picture: the first letter on a colour of the handle, so faces are told apart at a glance. */
function initialAvatar(post: Post): HTMLElement {
  const initial = el('span', 'avatar avatar-initial', [...(post.author.name || post.author.handle || '?')][0]?.toUpperCase() ?? '?');
  let hash = 0;
  for (const ch of post.author.handle) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  initial.style.setProperty('--avatar-hue', String(hash % 360));
  initial.setAttribute('aria-hidden', 'true');
  return initial;
}

function authorLine(post: Post, handlers: CardHandlers, withTime: boolean, secondaryTime = false): HTMLElement {
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
  if (withTime) line.append(timeLink(post, secondaryTime));
  return line;
}

function timeElement(iso: string, className = 'post-time'): HTMLElement {
  const time = el('time', className);
  time.dateTime = iso;
  const ms = Date.parse(iso);
  time.dataset.ms = String(ms);
  // The full date is formatted when the pointer first comes by: toLocaleString is slow for every card drawn.
  time.addEventListener('pointerenter', () => (time.title ||= new Date(ms).toLocaleString(lang() === 'ko' ? 'ko-KR' : 'en-US')), { once: true });
  time.textContent = relativeTime(ms, Date.now(), lang());
  return time;
}

/** The post's time, linking to the post on its own network (new tab) where it has one. */
function timeLink(post: Post, secondary: boolean): HTMLElement {
  const time = timeElement(post.created_at, secondary ? 'post-time post-time-secondary' : 'post-time');
  const permalink = permalinkOf(post);
  if (!permalink) return time;
  const link = el('a', 'post-permalink');
  link.href = permalink;
  link.target = '_blank';
  link.rel = 'noopener noreferrer';
  link.title = t.openOriginal(post.source);
  link.append(time);
  link.addEventListener('click', (event) => event.stopPropagation());
  return link;
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

/** Photos (grid of 1–4), video and GIF posters with a play badge, each with its space reserved before it loads. */
function mediaBlock(post: Post, size: MediaSize, sensitive: boolean): HTMLElement | null {
  const media = mediaOf(post);
  if (media.length === 0 || size === 'off') return null;
  const grid = el('div', `post-media post-media-${size} post-media-n${Math.min(media.length, 4)}`);
  const boxes = mediaBoxes(media, size);
  grid.style.aspectRatio = String(boxes.aspect);
  media.slice(0, 4).forEach((item, index) => {
    const link = el('a', `media-item media-${item.kind}`);
    link.href = item.url || item.preview_url || '#';
    link.target = '_blank';
    link.rel = 'noopener noreferrer';
    link.addEventListener('click', (event) => event.stopPropagation());
    const still = item.preview_url ?? (item.kind === 'photo' ? item.url : null);
    const alt = item.alt?.trim() || t.mediaAlt(item.kind, post.author.handle, index + 1, media.length);
    if (still) {
      const img = el('img');
      img.src = still;
      img.alt = alt;
      if (item.width && item.height) {
        img.width = item.width;
        img.height = item.height;
      }
      img.loading = 'lazy';
      img.decoding = 'async';
      // A picture that does not load leaves its box (no jump) with its description in it.
      img.addEventListener('error', () => img.replaceWith(el('span', 'media-missing', alt)), { once: true });
      link.append(img);
    } else {
      link.append(el('span', 'media-missing', alt));
    }
    link.setAttribute('aria-label', item.kind === 'photo' ? alt : `${t.play(item.kind)}: ${alt}`);
    if (item.kind !== 'photo') link.append(el('span', 'play-badge', item.kind === 'gif' ? 'GIF' : '▶'));
    if (item.alt?.trim()) link.append(el('span', 'alt-badge', 'ALT'));
    grid.append(link);
  });
  return sensitive ? sensitiveWrap(grid) : grid;
}

/** Sensitive media: blurred under a button that reveals it (the size does not change). */
function sensitiveWrap(content: HTMLElement): HTMLElement {
  const wrap = el('div', 'sensitive');
  wrap.append(content);
  const reveal = el('button', 'sensitive-reveal', t.sensitiveShow);
  reveal.type = 'button';
  reveal.addEventListener('click', (event) => {
    event.stopPropagation();
    wrap.classList.add('revealed');
    reveal.remove();
  });
  wrap.append(reveal);
  return wrap;
}

/** The link preview: picture (space reserved), title, description and the site's host. */
function linkCard(post: Post, size: MediaSize): HTMLElement | null {
  const card = cardOf(post);
  if (!card || !/^https?:\/\//i.test(card.url)) return null;
  const link = el('a', `link-card link-card-${size === 'large' ? 'large' : 'small'}`);
  link.href = card.url;
  link.target = '_blank';
  link.rel = 'noopener noreferrer nofollow';
  link.addEventListener('click', (event) => event.stopPropagation());
  if (card.image_url && size !== 'off') {
    const img = el('img', 'link-card-image');
    img.src = card.image_url;
    img.alt = card.title || t.linkPreview;
    img.loading = 'lazy';
    img.decoding = 'async';
    img.addEventListener('error', () => img.replaceWith(el('span', 'link-card-image link-card-image-missing')), { once: true });
    link.append(img);
  }
  const text = el('span', 'link-card-text');
  let host = '';
  try {
    host = new URL(card.url).host;
  } catch {
    host = card.url;
  }
  text.append(el('span', 'link-card-host', host));
  if (card.title) text.append(el('span', 'link-card-title', card.title));
  if (card.description && size === 'large') text.append(el('span', 'link-card-description', card.description));
  link.append(text);
  return link;
}

function countsLine(post: Post, withMediaBadge: boolean): HTMLElement {
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
  if (withMediaBadge && post.has_media) line.append(el('span', 'badge badge-media', `▣ ${t.media}`));
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

/** The "⟲ Nong retweeted · 2m" line: who, how many (said once), and when the newest retweet was made. */
function retweetLine(item: DisplayItem): HTMLElement {
  const header = el('div', 'post-retweeted-by');
  const first = item.retweeters[0];
  const name = first.name || `@${first.handle}`;
  header.append(`⟲ ${t.retweetedBy(name, item.retweeters.length)}`);
  if (item.via) {
    header.append(' · ');
    header.append(timeElement(item.via.created_at, 'retweet-time'));
  }
  return header;
}

/** Builds the card of one display item. */
export function renderCard(item: DisplayItem, handlers: CardHandlers, options: CardOptions = DEFAULT_OPTIONS): HTMLElement {
  const post = item.post;
  const article = el('article', 'post');
  article.dataset.id = post.id;
  article.tabIndex = -1;
  if (item.retweeters.length > 0) article.append(retweetLine(item));
  const row = el('div', 'post-row');
  row.append(avatar(post));
  const main = el('div', 'post-main');
  main.append(authorLine(post, handlers, true, item.via !== undefined));
  if (post.kind === 'reply' && post.reply_to?.handle) main.append(el('div', 'post-reply-to', t.replyingTo(post.reply_to.handle)));
  main.append(textBlock(post, handlers));
  // X marks a retweet sensitive when the retweeting account flags its media, while
  // the original it carries may not be: either mark blurs the pictures.
  const media = mediaBlock(post, options.mediaSize, isSensitive(post) || (item.via !== undefined && isSensitive(item.via)));
  if (media) main.append(media);
  const card = linkCard(post, options.mediaSize);
  if (card) main.append(card);
  if (post.quoted) {
    const quote = el('blockquote', 'post-quoted');
    quote.setAttribute('aria-label', t.quoted);
    quote.append(authorLine(post.quoted, handlers, true), textBlock(post.quoted, handlers));
    const quotedMedia = mediaBlock(post.quoted, options.mediaSize === 'large' ? 'small' : options.mediaSize, isSensitive(post.quoted));
    if (quotedMedia) quote.append(quotedMedia);
    main.append(quote);
  }
  // No pictures drawn (none Deck can show, or previews off): the badge says the post has some.
  main.append(countsLine(post, media === null));
  row.append(main);
  article.append(row);
  const label = `${post.author.name} @${post.author.handle}: ${post.text.slice(0, 80)}`;
  article.setAttribute('aria-label', label);
  if (handlers.open) {
    const open = handlers.open;
    article.addEventListener('click', (event) => {
      const target = event.target as HTMLElement;
      // Links, buttons and a selection in progress keep their own meaning.
      if (target.closest('a, button, input, textarea, select')) return;
      if (window.getSelection()?.toString()) return;
      open(post, item.via);
    });
    article.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && event.target === article) {
        event.preventDefault();
        open(post, item.via);
      }
    });
  }
  return article;
}

/** Updates the live counts shown in a rendered card. */
export function updateCardCounts(article: HTMLElement, post: Post): void {
  const retweets = article.querySelector<HTMLElement>('.post-main > .post-meta [data-count="retweets"]');
  const likes = article.querySelector<HTMLElement>('.post-main > .post-meta [data-count="likes"]');
  if (retweets) {
    retweets.textContent = `⟲ ${formatCount(post.retweet_count)}`;
    retweets.setAttribute('aria-label', `${t.retweets} ${post.retweet_count}`);
  }
  if (likes) {
    likes.textContent = `♥ ${formatCount(post.like_count)}`;
    likes.setAttribute('aria-label', `${t.likes} ${post.like_count}`);
  }
}
