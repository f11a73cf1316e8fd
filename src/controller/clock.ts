// Time, passed in: the queue and the runner never read Date.now or call setTimeout themselves, so
// tests drive them with a fake clock (test/unit/controller/fake-clock.ts).

export interface Timer {
  /** Idempotent; cancelling a timer that already fired does nothing. */
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `callback` once, after `delayMs` (negative or NaN counts as 0). */
  setTimer(callback: () => void, delayMs: number): Timer;
}

/** What createTimerClock needs from the host; Node's globals fit it. */
export interface TimerHost {
  now(): number;
  setTimeout(callback: () => void, delayMs: number): { unref(): unknown };
  clearTimeout(handle: { unref(): unknown }): void;
}

/** Node (like browsers) fires anything above this at once, so longer delays are chained. */
export const maxTimeoutMs = 2 ** 31 - 1;

/**
 * A Clock on the host's timers. Delays longer than setTimeout allows (about 24.8 days) are
 * split into several timers rather than firing immediately.
 *
 * Timers are `unref`'d: a delayed requeue is scheduled work, not a reason to live. What keeps the
 * operator's process running is what must keep running (watch connections, the metrics and
 * callback servers); a worker awaiting `queue.get()` holds nothing open either. So a requeue due in
 * 40 minutes must not keep a process alive that is otherwise finished (a script that forgot
 * `shutDown()`, a test). The flip side: a program whose only activity is a queue waiting on
 * delayed keys exits; such a program must hold itself open (e.g. await a shutdown signal).
 */
export function createTimerClock(host: TimerHost): Clock {
  return {
    now: () => host.now(),
    setTimer(callback, delayMs) {
      let handle: { unref(): unknown };
      let cancelled = false;
      const schedule = (remainingMs: number) => {
        const stepMs = Math.min(remainingMs, maxTimeoutMs);
        handle = host.setTimeout(() => {
          if (remainingMs > maxTimeoutMs) schedule(remainingMs - maxTimeoutMs);
          else callback();
        }, stepMs);
        handle.unref();
      };
      schedule(delayMs > 0 ? delayMs : 0);
      return {
        cancel() {
          if (cancelled) return;
          cancelled = true;
          host.clearTimeout(handle);
        },
      };
    },
  };
}

export const systemClock: Clock = createTimerClock({
  now: () => Date.now(),
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
});
