// HTTP calls to Deck's API. Every answer is typed with the wire types
// generated from the Rust `api` crate (src/bindings).

import type { Deck } from './bindings/Deck';
import type { EmailRequest } from './bindings/EmailRequest';
import type { ErrorResponse } from './bindings/ErrorResponse';
import type { LoginRequest } from './bindings/LoginRequest';
import type { PasswordChangeRequest } from './bindings/PasswordChangeRequest';
import type { RefreshRequest } from './bindings/RefreshRequest';
import type { ResetConfirmRequest } from './bindings/ResetConfirmRequest';
import type { SessionTokens } from './bindings/SessionTokens';
import type { SignupRequest } from './bindings/SignupRequest';
import type { StatusResponse } from './bindings/StatusResponse';
import type { TicketResponse } from './bindings/TicketResponse';
import type { TimelineResponse } from './bindings/TimelineResponse';
import type { TrendsResponse } from './bindings/TrendsResponse';
import type { VerifyRequest } from './bindings/VerifyRequest';

/** An HTTP error answer, with the server's error body when it sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorResponse,
    readonly retryAfterSeconds: number | null,
  ) {
    super(body.error);
  }
}

/** Supplies the current access token (or null when signed out). */
let tokenProvider: () => Promise<string | null> = async () => null;

/** Sets where authenticated calls get their access token. */
export function setTokenProvider(provider: () => Promise<string | null>): void {
  tokenProvider = provider;
}

async function request<T>(method: string, path: string, body?: unknown, auth = false, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (auth) {
    const token = await tokenProvider();
    if (token) headers.Authorization = `Bearer ${token}`;
  }
  let response: Response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  } catch (error) {
    if ((error as Error).name === 'AbortError') throw error;
    throw new ApiError(0, { error: 'network error: the server cannot be reached', code: 'network', position: null, field: null }, null);
  }
  const text = await response.text();
  let json: unknown = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (!response.ok) {
    const retryAfter = Number(response.headers.get('Retry-After'));
    const errorBody: ErrorResponse =
      json && typeof json === 'object' && 'error' in json ? (json as ErrorResponse) : { error: `HTTP ${response.status}`, code: null, position: null, field: null };
    if (response.status === 429 && !errorBody.code) errorBody.code = 'rate_limited';
    throw new ApiError(response.status, errorBody, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null);
  }
  return json as T;
}

/** `GET /api/timeline`: one page of a column, newest first. */
export function fetchTimeline(q: string, before: string | null, limit: number, signal?: AbortSignal): Promise<TimelineResponse> {
  const params = new URLSearchParams({ q, limit: String(limit) });
  if (before) params.set('before', before);
  return request<TimelineResponse>('GET', `/api/timeline?${params}`, undefined, false, signal);
}

/** `GET /api/trends`. */
export function fetchTrends(window: string): Promise<TrendsResponse> {
  return request<TrendsResponse>('GET', `/api/trends?window=${encodeURIComponent(window)}`);
}

/** `POST /api/stream/ticket`, tied to the user when signed in. */
export function fetchTicket(): Promise<TicketResponse> {
  return request<TicketResponse>('POST', '/api/stream/ticket', undefined, true);
}

/** The account endpoints; their bodies are the server's types (bindings). The web client's refresh token travels in an HttpOnly cookie. */
export const auth = {
  signup: (email: string, password: string) => request<StatusResponse>('POST', '/api/auth/signup', { email, password } satisfies SignupRequest),
  /** Confirms the address; only with the password chosen at sign-up (never on page load). */
  verify: (token: string, password: string) => request<StatusResponse>('POST', '/api/auth/verify', { token, password } satisfies VerifyRequest),
  resend: (email: string) => request<StatusResponse>('POST', '/api/auth/resend', { email } satisfies EmailRequest),
  changePassword: (currentPassword: string, newPassword: string) =>
    request<StatusResponse>('POST', '/api/auth/password', { current_password: currentPassword, new_password: newPassword } satisfies PasswordChangeRequest, true),
  logoutEverywhere: () => request<StatusResponse>('POST', '/api/auth/logout-all', undefined, true),
  login: (email: string, password: string) => request<SessionTokens>('POST', '/api/auth/login', { email, password, refresh_cookie: true } satisfies LoginRequest),
  /** With the refresh cookie (sent by the browser, never read by a script). */
  refresh: () => request<SessionTokens>('POST', '/api/auth/refresh', {} satisfies RefreshRequest),
  logout: () => request<StatusResponse>('POST', '/api/auth/logout', {} satisfies RefreshRequest, true),
  resetRequest: (email: string) => request<StatusResponse>('POST', '/api/auth/reset/request', { email } satisfies EmailRequest),
  resetConfirm: (token: string, password: string) => request<StatusResponse>('POST', '/api/auth/reset/confirm', { token, password } satisfies ResetConfirmRequest),
};

/** `GET /api/me/deck`. */
export function fetchSavedDeck(): Promise<Deck> {
  return request<Deck>('GET', '/api/me/deck', undefined, true);
}

/** `PUT /api/me/deck`. */
export function saveDeck(deck: Deck): Promise<Deck> {
  return request<Deck>('PUT', '/api/me/deck', deck, true);
}
