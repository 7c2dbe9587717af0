// The signed-in session: tokens kept in localStorage, the access token
// refreshed with the refresh token a minute before it expires.

import { ApiError, auth, setTokenProvider, type Tokens } from './api';

interface Stored {
  email: string;
  access: string;
  refresh: string;
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
    return raw ? (JSON.parse(raw) as Stored) : null;
  } catch {
    return null;
  }
}

function store(next: Stored | null): void {
  const wasSignedIn = session !== null;
  session = next;
  if (next) localStorage.setItem(KEY, JSON.stringify(next));
  else localStorage.removeItem(KEY);
  schedule();
  if (wasSignedIn !== (next !== null)) for (const listener of listeners) listener();
}

function fromTokens(email: string, tokens: Tokens): Stored {
  return { email, access: tokens.access_token, refresh: tokens.refresh_token, expiresAt: Date.now() + tokens.expires_in * 1000 };
}

function schedule(): void {
  clearTimeout(refreshTimer);
  if (!session) return;
  const delay = Math.max(1_000, session.expiresAt - Date.now() - 60_000);
  refreshTimer = setTimeout(() => void refreshNow(), Math.min(delay, 2 ** 31 - 1));
}

/** Rotates the tokens; a refused refresh token signs the user out. */
async function refreshNow(): Promise<void> {
  if (!session) return;
  if (refreshing) return refreshing;
  const current = session;
  refreshing = (async () => {
    try {
      store(fromTokens(current.email, await auth.refresh(current.refresh)));
    } catch (error) {
      if (error instanceof ApiError && (error.status === 401 || error.status === 403 || error.status === 400)) store(null);
      else schedule();
    } finally {
      refreshing = null;
    }
  })();
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

/** Logs in and keeps the tokens. */
export async function login(email: string, password: string): Promise<void> {
  store(fromTokens(email, await auth.login(email, password)));
}

/** Logs out here and on the server. */
export async function logout(): Promise<void> {
  const current = session;
  if (current) {
    try {
      await auth.logout(current.refresh);
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

/** Calls `listener` whenever the user signs in or out. */
export function onSessionChange(listener: () => void): void {
  listeners.push(listener);
}

setTokenProvider(accessToken);
schedule();
