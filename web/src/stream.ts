// The one WebSocket of a tab: a fresh single-use ticket for every connect,
// reconnects with exponential backoff and jitter, heartbeats, and wake-up
// detection (a laptop that slept, a tab that was hidden) that reconnects at
// once so every column resumes since its newest cursor.

import { ApiError, fetchTicket } from './api';
import type { ClientMessage } from './bindings/ClientMessage';
import type { ServerMessage } from './bindings/ServerMessage';
import { backoffDelay } from './logic/backoff';

/** Connection states shown by the connection indicator. */
export type StreamState = 'connecting' | 'open' | 'offline';

/** What the stream tells the app. */
export interface StreamEvents {
  /** A socket opened: (re)subscribe everything. */
  open(): void;
  message(message: ServerMessage): void;
  state(state: StreamState, detail: { retryAt?: number; reason?: string }): void;
}

const HEARTBEAT_MS = 20_000;
const SILENCE_LIMIT_MS = 50_000;
const WAKE_GAP_MS = 15_000;

/** The WebSocket connection manager. */
export class Stream {
  private socket: WebSocket | null = null;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private lastMessageAt = 0;
  private lastTick = Date.now();
  private generation = 0;
  state: StreamState = 'offline';

  constructor(private readonly events: StreamEvents) {
    setInterval(() => this.tick(), 5_000);
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.checkAlive();
    });
    window.addEventListener('online', () => this.reconnectNow());
  }

  /** Starts connecting. */
  start(): void {
    void this.connect();
  }

  /** Sends a message if the socket is open (everything is re-sent on the next open anyway). */
  send(message: ClientMessage): boolean {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  /** Drops the current socket and connects again at once (e.g. after login, to carry the user). */
  reconnectNow(): void {
    this.attempt = 0;
    clearTimeout(this.reconnectTimer);
    this.teardown();
    void this.connect();
  }

  private setState(state: StreamState, detail: { retryAt?: number; reason?: string } = {}): void {
    this.state = state;
    this.events.state(state, detail);
  }

  private teardown(): void {
    this.generation++;
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
      try {
        socket.close();
      } catch {
        // Already closed.
      }
    }
  }

  private async connect(): Promise<void> {
    const generation = ++this.generation;
    this.setState('connecting');
    let ticket: string;
    try {
      ticket = (await fetchTicket()).ticket;
    } catch (error) {
      if (generation !== this.generation) return;
      const retryAfter = error instanceof ApiError ? error.retryAfterSeconds : null;
      this.scheduleReconnect(error instanceof ApiError ? error.body.error : String(error), retryAfter);
      return;
    }
    if (generation !== this.generation) return;
    const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/api/stream?ticket=${encodeURIComponent(ticket)}`;
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      this.lastMessageAt = Date.now();
      this.setState('open');
      this.events.open();
    };
    socket.onmessage = (event) => {
      this.lastMessageAt = Date.now();
      let message: ServerMessage;
      try {
        message = JSON.parse(String(event.data)) as ServerMessage;
      } catch {
        return;
      }
      this.events.message(message);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.scheduleReconnect(event.reason || `closed (${event.code})`, null);
    };
  }

  private scheduleReconnect(reason: string, retryAfterSeconds: number | null): void {
    clearTimeout(this.reconnectTimer);
    const delay = retryAfterSeconds !== null ? retryAfterSeconds * 1000 : backoffDelay(this.attempt, Math.random());
    this.attempt++;
    this.setState('offline', { retryAt: Date.now() + delay, reason });
    this.reconnectTimer = setTimeout(() => void this.connect(), delay);
  }

  /** Heartbeat, silence detection and sleep detection. */
  private tick(): void {
    const now = Date.now();
    const slept = now - this.lastTick > WAKE_GAP_MS;
    this.lastTick = now;
    if (slept) {
      // Timers stopped: the machine slept. The socket is probably dead even if it looks open.
      this.reconnectNow();
      return;
    }
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      if (now - this.lastMessageAt > SILENCE_LIMIT_MS) {
        this.reconnectNow();
        return;
      }
      if (now - this.lastMessageAt > HEARTBEAT_MS) this.send({ type: 'ping' });
    }
  }

  /** After the tab comes back: reconnect now if down, or make sure the socket still answers. */
  private checkAlive(): void {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) {
      if (this.state === 'offline') this.reconnectNow();
      return;
    }
    const sentAt = Date.now();
    this.send({ type: 'ping' });
    setTimeout(() => {
      if (this.lastMessageAt < sentAt && this.state === 'open') this.reconnectNow();
    }, 5_000);
  }
}
