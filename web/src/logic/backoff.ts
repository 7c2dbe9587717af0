// Reconnect delays: exponential backoff with full jitter, capped.

/** The delay before reconnect attempt `attempt` (0-based), in ms; `random` is in [0, 1). */
export function backoffDelay(attempt: number, random: number, baseMs = 500, capMs = 30_000): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 16));
  // Half fixed, half jitter: never zero, never in lock-step with other tabs.
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
}
