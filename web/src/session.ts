// The signed-in session. The refresh token lives in an HttpOnly cookie that
// no script can read (scoped to /api/auth); this module keeps only the
// short-lived access token, shared by the tabs through localStorage, and
// refreshes it a minute before it expires. Tabs take turns refreshing (a Web
// Lock), and the server also forgives two refreshes at the same moment.

import { ApiError, auth, setTokenProvider } from './api';
import type { SessionTokens } from './bindings/SessionTokens';

interface Stored {
  email: string;
  access: string;
  expiresAt: number;
}

const KEY = 'deck.session';
let session: Stored | null = load();
let refreshTimer: ReturnType<typeof setTimeout> | undefined;
let refreshing: Promise<void> | null = null;
const listeners: (() => void)[] = [];

function load(): Stored | null {
  try {
    const raw = localStorage.getItem(KEY);
    if (!raw) return null;
    const parsed = JSON.parse(raw) as Partial<Stored> & { refresh?: unknown };
    // A session saved by an older client kept its refresh token here; it is dropped.
    if ('refresh' in parsed) {
      localStorage.removeItem(KEY);
      return null;
    }
    return typeof parsed.email === 'string' && typeof parsed.access === 'string' && typeof parsed.expiresAt === 'number'
      ? { email: parsed.email, access: parsed.access, expiresAt: parsed.expiresAt }
      : null;
  } catch {
    return null;
  }
}

function notify(wasSignedIn: boolean): void {
  if (wasSignedIn !== (session !== null)) for (const listener of listeners) listener();
}

function store(next: Stored | null): void {
  const wasSignedIn = session !== null;
  session = next;
  if (next) localStorage.setItem(KEY, JSON.stringify(next));
  else localStorage.removeItem(KEY);
  schedule();
  notify(wasSignedIn);
}

function fromTokens(email: string, tokens: SessionTokens): Stored {
  return { email, access: tokens.access_token, expiresAt: Date.now() + tokens.expires_in * 1000 };
}

function schedule(): void {
  clearTimeout(refreshTimer);
  if (!session) return;
  const delay = Math.max(1_000, session.expiresAt - Date.now() - 60_000);
  refreshTimer = setTimeout(() => void refreshNow(), Math.min(delay, 2 ** 31 - 1));
}

/** Runs `work` while no other tab of this origin refreshes (where Web Locks exist). */
function oneTabAtATime(work: () => Promise<void>): Promise<void> {
  return navigator.locks ? navigator.locks.request('deck.session.refresh', () => work()).then(() => undefined) : work();
}

/** Rotates the tokens; a refused refresh cookie signs the user out. */
async function refreshNow(): Promise<void> {
  if (!session) return;
  if (refreshing) return refreshing;
  const current = session;
  refreshing = oneTabAtATime(async () => {
    // Another tab may have refreshed while this one waited for the lock.
    const latest = load();
    if (latest && latest.email === current.email && latest.access !== current.access && latest.expiresAt - Date.now() > 60_000) {
      session = latest;
      schedule();
      return;
    }
    try {
      store(fromTokens(current.email, await auth.refresh()));
    } catch (error) {
      if (error instanceof ApiError && (error.status === 401 || error.status === 403 || error.status === 400)) store(null);
      else schedule();
    }
  }).finally(() => {
    refreshing = null;
  });
  return refreshing;
}

/** A valid access token, refreshing first when it is about to expire; null when signed out. */
export async function accessToken(): Promise<string | null> {
  if (session && session.expiresAt - Date.now() < 30_000) await refreshNow();
  return session?.access ?? null;
}

/** The signed-in e-mail, or null. */
export function signedInEmail(): string | null {
  return session?.email ?? null;
}

/** Logs in; the refresh token comes back as an HttpOnly cookie. */
export async function login(email: string, password: string): Promise<void> {
  store(fromTokens(email, await auth.login(email, password)));
}

/** Logs out here and on the server (which also clears the cookie). */
export async function logout(): Promise<void> {
  if (session) {
    try {
      await auth.logout();
    } catch {
      // Signing out locally matters more than telling the server.
    }
  }
  store(null);
}

/** Ends every session of the account on the server, then this one here. */
export async function logoutEverywhere(): Promise<void> {
  await auth.logoutEverywhere();
  store(null);
}

/** Calls `listener` whenever the user signs in or out (in this tab or another). */
export function onSessionChange(listener: () => void): void {
  listeners.push(listener);
}

// Another tab signed in, out or refreshed: follow it.
window.addEventListener('storage', (event) => {
  if (event.key !== KEY && event.key !== null) return;
  const wasSignedIn = session !== null;
  session = load();
  schedule();
  notify(wasSignedIn);
});

setTokenProvider(accessToken);
schedule();
