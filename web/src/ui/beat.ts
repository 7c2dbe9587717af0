// The live beat of a column: when live posts that reached the column's model
// go on screen. A column draws at most once per beat, so a busy column draws
// the few cards in view once a beat instead of a card or two on every frame,
// which no reader can follow anyway. A column that brought more than a
// screenful since its last beat (every card in view replaced) slows to the
// busy beat until it calms down: it then shows a new screen every two
// seconds, and the deck draws a bounded number of cards a second however
// fast the stream runs.

/** The beat of a column that keeps up with its reader. */
export const LIVE_INTERVAL_MS = 500;
/** The beat of a column that brings more than a screenful of posts per beat. */
export const BUSY_INTERVAL_MS = 2_000;

/** One column's beat. */
export class LiveBeat {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private last = Number.NEGATIVE_INFINITY;
  private interval = LIVE_INTERVAL_MS;
  private postsSinceBeat = 0;

  /**
   * `onBeat` draws what waits; `screenful` says how many cards fill the
   * column's viewport; `now` is the clock (tests give their own).
   */
  constructor(
    private readonly onBeat: () => void,
    private readonly screenful: () => number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The current beat in milliseconds. */
  get intervalMs(): number {
    return this.interval;
  }

  /** A live post went into the model to be drawn: a beat comes now if the last one is an interval old, or when it is due. */
  post(): void {
    this.postsSinceBeat++;
    this.request();
  }

  /** Asks for a beat without a new post (e.g. one that only the model's order changed). */
  request(): void {
    if (this.timer !== undefined) return;
    const wait = this.last + this.interval - this.now();
    if (wait <= 0) {
      this.fire();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.fire();
    }, wait);
  }

  /** Forgets a beat that was due (the column goes away). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private fire(): void {
    this.interval = this.postsSinceBeat > this.screenful() ? BUSY_INTERVAL_MS : LIVE_INTERVAL_MS;
    this.postsSinceBeat = 0;
    this.last = this.now();
    this.onBeat();
  }
}
