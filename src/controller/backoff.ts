// Backoff for failed token requests (5xx, timeouts): "about 10 s up to 5 min, with jitter".
//
// Equal jitter: the delay is half the exponential step plus a random part of the other half, so
// it lies in [step/2, step]. Full jitter ([0, step]) spreads retries a little wider, but it may
// retry a failing provider almost at once, which is what backing off is meant to avoid; with
// equal jitter the first retry waits 5-10 s and later ones 2.5-5 min. With few clients per
// provider (one per app, each behind a per-provider concurrency limit) spread matters less than a
// floor. Capping at the token's expiry is the caller's decision: it knows the expiry and what
// to do once it has passed.

export interface ExponentialBackoffOptions {
  /** 1 for the first retry. */
  attempt: number;
  /** Step of the first attempt; default 10 s. */
  baseMs?: number;
  /** Largest step, and so the largest delay; default 5 min. */
  maxMs?: number;
  /** Uniform in [0, 1), e.g. Math.random; passed in so tests can fix it. */
  random: () => number;
}

export const defaultBackoffBaseMs = 10_000;
export const defaultBackoffMaxMs = 300_000;

/** A delay in [step/2, step], where step = min(maxMs, baseMs·2^(attempt-1)). */
export function exponentialBackoff({
  attempt,
  baseMs = defaultBackoffBaseMs,
  maxMs = defaultBackoffMaxMs,
  random,
}: ExponentialBackoffOptions): number {
  if (!Number.isInteger(attempt) || attempt < 1) throw new RangeError(`attempt must be an integer >= 1, got ${attempt}`);
  if (!(baseMs > 0) || !(maxMs >= baseMs)) throw new RangeError(`need 0 < baseMs <= maxMs, got ${baseMs} and ${maxMs}`);
  // 2 ** 1024 is Infinity; Math.min then yields maxMs.
  const step = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  const fraction = Math.min(Math.max(random(), 0), 1);
  return step / 2 + (step / 2) * fraction;
}
