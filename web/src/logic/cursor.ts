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
