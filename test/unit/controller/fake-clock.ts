// A Clock for tests: time stands still until the test calls advance(), which fires the timers
// that fall due, in order of due time (then of creation), each with now() set to its due time.
import type { Clock, Timer } from '../../../src/controller/clock.ts';

interface Scheduled {
  dueAt: number;
  sequence: number;
  callback: () => void;
}

export class FakeClock implements Clock {
  private current: number;
  private sequence = 0;
  private readonly timers = new Set<Scheduled>();

  constructor(startMs = 0) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  setTimer(callback: () => void, delayMs: number): Timer {
    const scheduled: Scheduled = { dueAt: this.current + (delayMs > 0 ? delayMs : 0), sequence: this.sequence++, callback };
    this.timers.add(scheduled);
    return { cancel: () => this.timers.delete(scheduled) };
  }

  /** Moves time forward by `ms`, firing every timer due by then (including ones set meanwhile). */
  advance(ms: number): void {
    const target = this.current + ms;
    for (let next = this.nextDue(target); next !== undefined; next = this.nextDue(target)) {
      this.timers.delete(next);
      this.current = next.dueAt;
      next.callback();
    }
    this.current = target;
  }

  /** Timers set and neither fired nor cancelled. */
  get pendingTimers(): number {
    return this.timers.size;
  }

  /** When the next timer falls due, if any. */
  nextTimerAt(): number | undefined {
    return this.nextDue(Number.POSITIVE_INFINITY)?.dueAt;
  }

  private nextDue(limit: number): Scheduled | undefined {
    let best: Scheduled | undefined;
    for (const timer of this.timers) {
      if (timer.dueAt > limit) continue;
      if (best === undefined || timer.dueAt < best.dueAt || (timer.dueAt === best.dueAt && timer.sequence < best.sequence)) best = timer;
    }
    return best;
  }
}

/**
 * Lets every pending promise callback run (setImmediate runs after the microtask queue is empty):
 * not a timer, and not time-based.
 */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
