// Whether the apiserver answers, judged from the outcomes of our own requests, and a signal when it
// answers again after it did not. Per-key failure backoff (5 ms doubling up to 1000 s, as client-go)
// is right for a key that keeps failing on its own, wrong for one that failed only because the
// apiserver was out of reach: after a 20-s outage its next try is up to 10 s away, and a user's
// change behind it waits that long once the apiserver is back. The work queue retries such keys
// when this signals (WorkQueue.expedite).
//
// Out of reach: no answer (connection refused or reset, a stream error, a timeout) or one that says
// "not now" (429, 503, 504). A 500 is not: an admission webhook that fails every Secret write makes
// the apiserver answer 500 while it is fine, and a signal at each of its answers would undo backoff.
// Signals come at most once per `minIntervalMs`: on a flapping connection (every other request
// failing) they would otherwise turn backoff into a busy loop.
import type { Clock, Timer } from '../controller/clock.ts';

export const defaultRecoverySignalIntervalMs = 1000;

export class ApiserverAvailability {
  private readonly clock: Clock;
  private readonly minIntervalMs: number;
  private outOfReach = false;
  private lastSignalAt = -Infinity;
  private deferred: Timer | undefined;
  private readonly listeners = new Set<() => void>();

  constructor(clock: Clock, minIntervalMs = defaultRecoverySignalIntervalMs) {
    this.clock = clock;
    this.minIntervalMs = minIntervalMs;
  }

  /** Calls `listener` each time the apiserver answers after being out of reach; returns a remover. */
  onRecovered(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A request got no answer, or 429, 503 or 504. */
  recordOutOfReach(): void {
    this.outOfReach = true;
  }

  /** A request got any other answer (a 404 or 409 is an answer too). */
  recordAnswer(): void {
    if (!this.outOfReach || this.deferred) return;
    const waitMs = this.lastSignalAt + this.minIntervalMs - this.clock.now();
    if (waitMs > 0) {
      this.deferred = this.clock.setTimer(() => {
        this.deferred = undefined;
        this.signal();
      }, waitMs);
      return;
    }
    this.signal();
  }

  /** Stops a deferred signal (at shutdown). */
  close(): void {
    this.deferred?.cancel();
    this.deferred = undefined;
    this.listeners.clear();
  }

  private signal(): void {
    this.outOfReach = false;
    this.lastSignalAt = this.clock.now();
    for (const listener of this.listeners) listener();
  }
}

/** Statuses by which the apiserver (or a proxy before it) says "not now" rather than "no". */
export const isOutOfReachStatus = (status: number): boolean => status === 429 || status === 503 || status === 504;
