// Relative times ("now", "5m", "3h", "2d", then a date), in English or Korean.

/** A UI language. */
export type Lang = 'en' | 'ko';

/** How long ago `thenMs` was, as shown on a post. */
export function relativeTime(thenMs: number, nowMs: number, lang: Lang): string {
  const seconds = Math.max(0, Math.floor((nowMs - thenMs) / 1000));
  const ko = lang === 'ko';
  if (seconds < 5) return ko ? '방금' : 'now';
  if (seconds < 60) return ko ? `${seconds}초` : `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return ko ? `${minutes}분` : `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return ko ? `${hours}시간` : `${hours}h`;
  const days = Math.floor(hours / 24);
  if (days < 7) return ko ? `${days}일` : `${days}d`;
  const date = new Date(thenMs);
  return ko
    ? `${date.getUTCFullYear()}년 ${date.getUTCMonth() + 1}월 ${date.getUTCDate()}일`
    : `${date.toLocaleString('en', { month: 'short', timeZone: 'UTC' })} ${date.getUTCDate()}, ${date.getUTCFullYear()}`;
}
