// One animation-frame scheduler for the whole page. Every column asks for
// "work on the next frame" here instead of calling requestAnimationFrame
// itself, and the frame runs in phases across all columns: every column
// writes (new cards in, old cards out), then every column measures its fresh
// cards (one layout for the page, not one per column), then every column
// places them. A frame that runs over its budget leaves the remaining columns
// for the next frame rather than growing into a long task.

/** Work a column does in one frame. */
export interface FrameTask {
  /** DOM writes: cards in and out. */
  write(): void;
  /** DOM reads: the heights of fresh cards. */
  measure?(): void;
  /** DOM writes: positions, counts, status text. */
  place?(): void;
}

/** Time a frame may spend on write phases before the remaining columns wait a frame. */
const FRAME_BUDGET_MS = 8;

const queued = new Set<FrameTask>();
let handle = 0;

function guarded(step: () => void): void {
  try {
    step();
  } catch (error) {
    // One broken column must not stop the others from painting.
    console.error(error);
  }
}

function run(): void {
  handle = 0;
  const batch = [...queued];
  queued.clear();
  const started = performance.now();
  const done: FrameTask[] = [];
  for (const task of batch) {
    if (done.length > 0 && performance.now() - started > FRAME_BUDGET_MS) {
      queued.add(task);
      continue;
    }
    guarded(() => task.write());
    done.push(task);
  }
  for (const task of done) if (task.measure) guarded(() => task.measure?.());
  for (const task of done) if (task.place) guarded(() => task.place?.());
  if (queued.size > 0 && !handle) handle = requestAnimationFrame(run);
}

/** Runs `task` on the next animation frame (once, however often it is asked for before then). */
export function nextFrame(task: FrameTask): void {
  queued.add(task);
  if (!handle) handle = requestAnimationFrame(run);
}

/** Forgets a task that was asked for (a removed column, or work done right away). */
export function cancelFrame(task: FrameTask): void {
  queued.delete(task);
}
