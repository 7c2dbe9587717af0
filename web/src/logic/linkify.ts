// Post text as segments: plain text, #hashtags, @mentions, $cashtags and
// links. The DOM is built from segments with textContent only, so nothing in a
// post can ever become HTML.

import type { Post } from '../bindings/Post';

/** A piece of post text. `value` is the tag/handle without its sigil, or the URL. */
export type Segment =
  | { kind: 'text'; text: string }
  | { kind: 'hashtag'; text: string; value: string }
  | { kind: 'mention'; text: string; value: string }
  | { kind: 'cashtag'; text: string; value: string }
  | { kind: 'url'; text: string; value: string };

const TOKEN = /(https?:\/\/[^\s<>"'\u3000]+)|(?<![\p{L}\p{N}_&/])([#＃])([\p{L}\p{M}\p{N}_]*[\p{L}\p{M}][\p{L}\p{M}\p{N}_]*)|(?<![\p{L}\p{N}_!#$%&*@＠])([@＠])([A-Za-z0-9_.\-]{1,64}[A-Za-z0-9_])|(?<![\p{L}\p{N}_$])\$([A-Za-z]{1,6}(?:[._][A-Za-z]{1,2})?)(?![\p{L}\p{N}_])/gu;

/** Only web links become anchors; anything else (javascript:, data:) stays text. */
export function safeUrl(url: string): string | null {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : null;
  } catch {
    return null;
  }
}

/** Splits text into segments. Entities listed on the post are preferred; the regexes find them otherwise. */
export function segmentText(text: string, entities?: Pick<Post, 'hashtags' | 'mentions' | 'cashtags' | 'urls'>): Segment[] {
  const segments: Segment[] = [];
  const hashtags = entities?.hashtags.length ? new Set(entities.hashtags.map((t) => t.toLowerCase())) : null;
  const mentions = entities?.mentions.length ? new Set(entities.mentions.map((t) => t.toLowerCase())) : null;
  let last = 0;
  const pushText = (end: number) => {
    if (end > last) segments.push({ kind: 'text', text: text.slice(last, end) });
  };
  for (const match of text.matchAll(TOKEN)) {
    const at = match.index ?? 0;
    const whole = match[0];
    let segment: Segment | null = null;
    if (match[1] !== undefined) {
      // Trailing punctuation is usually the sentence's, not the link's.
      const url = match[1].replace(/[.,;:!?)\]}'"…]+$/u, '');
      if (safeUrl(url)) {
        pushText(at);
        segments.push({ kind: 'url', text: url, value: safeUrl(url) as string });
        last = at + url.length;
      }
      continue;
    } else if (match[3] !== undefined) {
      if (!hashtags || hashtags.has(match[3].toLowerCase())) segment = { kind: 'hashtag', text: whole, value: match[3] };
    } else if (match[5] !== undefined) {
      const handle = match[5];
      if (!mentions || mentions.has(handle.toLowerCase())) segment = { kind: 'mention', text: whole, value: handle };
    } else if (match[6] !== undefined) {
      segment = { kind: 'cashtag', text: whole, value: match[6] };
    }
    if (segment) {
      pushText(at);
      segments.push(segment);
      last = at + whole.length;
    }
  }
  pushText(text.length);
  return segments;
}

/** What a link in a post does when clicked. */
export interface LinkHandlers {
  hashtag(tag: string): void;
  mention(handle: string): void;
  cashtag(tag: string): void;
}

/** Builds the DOM of post text with textContent only. */
export function renderSegments(doc: Document, segments: readonly Segment[], handlers: LinkHandlers): DocumentFragment {
  const fragment = doc.createDocumentFragment();
  for (const segment of segments) {
    if (segment.kind === 'text') {
      fragment.append(doc.createTextNode(segment.text));
      continue;
    }
    const link = doc.createElement('a');
    link.textContent = segment.text;
    if (segment.kind === 'url') {
      link.href = segment.value;
      link.target = '_blank';
      link.rel = 'noopener noreferrer nofollow';
      link.className = 'link-url';
    } else {
      const value = segment.value;
      link.href = segment.kind === 'hashtag' ? `#/tag/${encodeURIComponent(value)}` : segment.kind === 'mention' ? `#/user/${encodeURIComponent(value)}` : `#/cashtag/${encodeURIComponent(value)}`;
      link.className = `link-${segment.kind}`;
      link.dataset[segment.kind] = value;
      link.addEventListener('click', (event) => {
        event.preventDefault();
        event.stopPropagation();
        if (segment.kind === 'hashtag') handlers.hashtag(value);
        else if (segment.kind === 'mention') handlers.mention(value);
        else handlers.cashtag(value);
      });
    }
    fragment.append(link);
  }
  return fragment;
}
