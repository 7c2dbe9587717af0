// The live beat: a calm column draws at most every 500 ms, a column that
// brings more than a screenful per beat every 2 s until it calms down, and
// posts between beats wait for the next one (one draw, not one per post).

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BUSY_INTERVAL_MS, LIVE_INTERVAL_MS, LiveBeat } from './beat';

describe('LiveBeat', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function setup(screenful = 7) {
    const beats: number[] = [];
    const started = Date.now();
    const beat = new LiveBeat(
      () => beats.push(Date.now() - started),
      () => screenful,
      () => Date.now(),
    );
    return { beat, beats, elapsed: () => Date.now() - started };
  }

  it('draws the first post at once and the ones after it at the next beat, once', () => {
    const { beat, beats } = setup();
    beat.post();
    expect(beats).toEqual([0]);
    vi.advanceTimersByTime(100);
    beat.post();
    beat.post();
    vi.advanceTimersByTime(350);
    expect(beats).toEqual([0]);
    vi.advanceTimersByTime(50);
    expect(beats).toEqual([0, LIVE_INTERVAL_MS]);
    vi.advanceTimersByTime(5_000);
    expect(beats).toEqual([0, LIVE_INTERVAL_MS]);
    expect(beat.intervalMs).toBe(LIVE_INTERVAL_MS);
  });

  it('slows to the busy beat while more than a screenful arrives per beat, and comes back when it calms down', () => {
    const { beat, beats, elapsed } = setup(7);
    beat.post();
    // Twenty posts before the next beat: more than the seven that fill the screen.
    for (let i = 0; i < 20; i++) {
      vi.advanceTimersByTime(20);
      beat.post();
    }
    vi.advanceTimersByTime(LIVE_INTERVAL_MS);
    expect(beats).toEqual([0, LIVE_INTERVAL_MS]);
    expect(beat.intervalMs).toBe(BUSY_INTERVAL_MS);
    // Still busy: the next beat waits two seconds (at 2,500 ms), however many posts come before it.
    for (let i = 0; i < 40; i++) {
      vi.advanceTimersByTime(37);
      beat.post();
    }
    expect(beats).toEqual([0, LIVE_INTERVAL_MS]);
    vi.advanceTimersByTime(LIVE_INTERVAL_MS + BUSY_INTERVAL_MS - elapsed());
    expect(beats).toEqual([0, LIVE_INTERVAL_MS, LIVE_INTERVAL_MS + BUSY_INTERVAL_MS]);
    expect(beat.intervalMs).toBe(BUSY_INTERVAL_MS);
    // Calm again: three posts in a (busy) beat bring back the short beat after it.
    for (let i = 0; i < 3; i++) beat.post();
    vi.advanceTimersByTime(BUSY_INTERVAL_MS);
    expect(beats).toEqual([0, LIVE_INTERVAL_MS, LIVE_INTERVAL_MS + BUSY_INTERVAL_MS, LIVE_INTERVAL_MS + 2 * BUSY_INTERVAL_MS]);
    expect(beat.intervalMs).toBe(LIVE_INTERVAL_MS);
  });

  it('a request without a post beats without counting one, and stop forgets a due beat', () => {
    const { beat, beats } = setup(1);
    beat.post();
    beat.request();
    vi.advanceTimersByTime(LIVE_INTERVAL_MS);
    expect(beats).toEqual([0, LIVE_INTERVAL_MS]);
    expect(beat.intervalMs).toBe(LIVE_INTERVAL_MS);
    beat.post();
    beat.stop();
    vi.advanceTimersByTime(10_000);
    expect(beats).toEqual([0, LIVE_INTERVAL_MS]);
  });
});
