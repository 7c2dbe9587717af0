// The picture fields of a post (CONTRACT.md "Post (JSON)": author.avatar_url,
// media, card, sensitive, permalink) read safely, and the box a media grid
// reserves before its images load, so a card's height never changes when a
// picture arrives. Images are served by Deck's own origin (`/media/…`);
// anything else is not loaded into the page.

import type { Card } from '../bindings/Card';
import type { Media } from '../bindings/Media';
import type { Post } from '../bindings/Post';

/** TweetDeck's "media preview size". */
export type MediaSize = 'off' | 'small' | 'large';

/** Only pictures from Deck's own origin are put in the page (the CSP allows `img-src 'self'`). */
export function ownOrigin(url: string | null | undefined): string | null {
  if (!url) return null;
  if (url.startsWith('/') && !url.startsWith('//')) return url;
  try {
    const parsed = new URL(url, location.href);
    return parsed.origin === location.origin ? parsed.pathname + parsed.search : null;
  } catch {
    return null;
  }
}

/** The author's picture (Deck origin), if any. */
export function avatarOf(post: Post): string | null {
  return ownOrigin(post.author.avatar_url);
}

/** The post's media: photos with Deck-origin images; clips keep their outside link (opened in a new tab, never loaded). */
export function mediaOf(post: Post): Media[] {
  const media = post.media;
  if (!Array.isArray(media)) return [];
  const out: Media[] = [];
  for (const item of media) {
    if (!item || typeof item.kind !== 'string') continue;
    const preview = ownOrigin(item.preview_url);
    const url = item.kind === 'photo' ? ownOrigin(item.url) ?? preview : safeLink(item.url);
    if (!url && !preview) continue;
    out.push({ kind: item.kind === 'video' || item.kind === 'gif' ? item.kind : 'photo', url: url ?? '', preview_url: preview, width: positive(item.width), height: positive(item.height), alt: typeof item.alt === 'string' ? item.alt : null });
  }
  return out;
}

/** The link card, with its picture only when Deck serves it. */
export function cardOf(post: Post): Card | null {
  const card = post.card;
  if (!card || typeof card.url !== 'string') return null;
  return { url: card.url, title: card.title ?? '', description: card.description ?? '', image_url: ownOrigin(card.image_url) };
}

/** Whether the source marked the media sensitive. */
export function isSensitive(post: Post): boolean {
  return post.sensitive === true;
}

/** The post on its own network (http or https only). */
export function permalinkOf(post: Post): string | null {
  return safeLink(post.permalink);
}

function safeLink(url: string | null | undefined): string | null {
  if (!url) return null;
  return /^https?:\/\//i.test(url) ? url : null;
}

function positive(value: number | null | undefined): number | null {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : null;
}

/**
 * The aspect ratio (width / height) a media grid reserves: one item keeps
 * its own shape within 1:2 … 2:1 (16:9 when unknown); two to four share a
 * 16:9 box, as on X. Small previews are a flat strip.
 */
export function mediaBoxes(media: readonly Media[], size: MediaSize): { aspect: number } {
  if (size === 'small') return { aspect: Math.min(media.length, 4) * 1.0 + 0.5 * (4 - Math.min(media.length, 4)) };
  if (media.length === 1) {
    const only = media[0];
    const ratio = only.width && only.height ? only.width / only.height : 16 / 9;
    return { aspect: Math.min(2, Math.max(0.5, ratio)) };
  }
  return { aspect: 16 / 9 };
}
