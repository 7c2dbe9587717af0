// Slow mode: a column shows at most N posts a minute; when more arrive, the
// ones shown are spread evenly over the stream rather than the first N of
// each minute.

/** Decides, post by post, which live posts a slow column keeps. */
export interface SlowSampler {
  /** Whether to keep a post arriving at `nowMs`. */
  accept(nowMs: number): boolean;
}

/**
 * A sampler keeping at most `perMinute` posts in any sliding minute. It
 * estimates the arrival rate and keeps each post with credit `perMinute / rate`,
 * accumulated so that kept posts are evenly spaced; a hard sliding-window cap
 * guarantees the limit even while the estimate adapts.
 */
export function createSlowSampler(perMinute: number): SlowSampler {
  const limit = Math.max(1, Math.floor(perMinute));
  const arrivals: number[] = [];
  const kept: number[] = [];
  let credit = 1;
  return {
    accept(nowMs: number): boolean {
      const windowStart = nowMs - 60_000;
      while (arrivals.length > 0 && arrivals[0] <= windowStart) arrivals.shift();
      while (kept.length > 0 && kept[0] <= windowStart) kept.shift();
      arrivals.push(nowMs);
      // Until a whole minute has been observed, extrapolate the rate from what has been seen.
      const span = arrivals.length > 1 ? Math.max(30_000, nowMs - arrivals[0]) : 60_000;
      const ratePerMinute = (arrivals.length * 60_000) / span;
      const share = Math.min(1, limit / Math.max(ratePerMinute, 1));
      credit = Math.min(1, credit + share);
      if (credit >= 1 && kept.length < limit) {
        credit -= 1;
        kept.push(nowMs);
        return true;
      }
      return false;
    },
  };
}
