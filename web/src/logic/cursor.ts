// Cursor ordering. Cursors are opaque base64url strings of big-endian sort keys;
// comparing them as text would be wrong (base64's alphabet is not in ASCII
// order), so each character is mapped to its 6-bit value before comparing.

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) VALUE[ALPHABET.charCodeAt(i)] = i;

/** Compares two cursors: negative when `a` is older than `b`, 0 when equal, positive when newer. */
export function compareCursors(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const va = VALUE[a.charCodeAt(i) & 127];
    const vb = VALUE[b.charCodeAt(i) & 127];
    if (va !== vb) return va - vb;
  }
  return a.length - b.length;
}

/** The newer of two cursors (either may be null). */
export function newerCursor(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return compareCursors(a, b) >= 0 ? a : b;
}

/** The time (ms since the epoch) a cursor sorts at, or null when it is not one of the server's. */
export function cursorTime(cursor: string): number | null {
  try {
    const binary = atob(cursor.replace(/-/g, '+').replace(/_/g, '/'));
    if (binary.length < 10) return null;
    const bytes = Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
    const raw = new DataView(bytes.buffer).getBigUint64(0) ^ (1n << 63n);
    return Number(BigInt.asIntN(64, raw));
  } catch {
    return null;
  }
}

/**
 * Live posts reach a feed node in the order they were processed, which across
 * Kafka partitions is not quite their order in time: a partition that lags
 * delivers posts older than ones already shown. So a column resumes this long
 * before its newest post, and drops the posts it already holds...
 */
export const RESUME_OVERLAP_MS = 10_000;
/** ...but never further back than this many of its newest posts, so a busy column's catch-up stays small. */
export const RESUME_OVERLAP_POSTS = 50;

/**
 * Where a column resumes: RESUME_OVERLAP_MS before its newest post, or its
 * RESUME_OVERLAP_POSTS-th newest post if that is later (`held`: the cursors
 * of the posts it holds, any order). The newest cursor itself when it cannot
 * be read.
 */
export function resumeCursor(newest: string, held: readonly string[] = []): string {
  const ms = cursorTime(newest);
  if (ms === null) return newest;
  const byTime = makeCursor(ms - RESUME_OVERLAP_MS, '');
  const newestFirst = [...held].sort((a, b) => compareCursors(b, a));
  const byCount = newestFirst[Math.min(RESUME_OVERLAP_POSTS, newestFirst.length) - 1];
  return byCount !== undefined && compareCursors(byCount, byTime) > 0 && compareCursors(byCount, newest) < 0 ? byCount : byTime;
}

/**
 * Whether a post a resumed column receives while catching up lies in the
 * overlap it asked for again: at or before `resumedFrom`, the newest cursor
 * it held when it resumed. A slow-mode column drops those (it had sampled
 * them already); any other column keeps what it does not hold.
 */
export function inOverlap(cursor: string, resumedFrom: string | null): boolean {
  return resumedFrom !== null && compareCursors(cursor, resumedFrom) <= 0;
}

/** Builds a cursor the way the server does (8-byte time with the sign bit flipped, 2-byte id length, id); used by tests. */
export function makeCursor(createdMs: number, id: string): string {
  const idBytes = new TextEncoder().encode(id);
  const bytes = new Uint8Array(10 + idBytes.length);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, BigInt.asUintN(64, BigInt(createdMs)) ^ (1n << 63n));
  view.setUint16(8, idBytes.length);
  bytes.set(idBytes, 10);
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
