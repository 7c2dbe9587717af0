// Desktop notifications for columns that ask for them: at most one every few
// seconds, so a busy column cannot flood the desktop.

import type { Post } from '../bindings/Post';

const MIN_GAP_MS = 5_000;
let lastShown = 0;

/** Notifies about `post` in the column titled `title` (when the reader allowed notifications). */
export function notifyPost(columnId: string, title: string, post: Post): void {
  if (typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
  const now = Date.now();
  if (now - lastShown < MIN_GAP_MS) return;
  lastShown = now;
  const shown = post.retweeted ?? post;
  new Notification(`${title} — ${shown.author.name} @${shown.author.handle}`, { body: shown.text, tag: `deck-${columnId}` });
}
