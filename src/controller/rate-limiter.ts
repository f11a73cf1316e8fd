// Per-key failure backoff, as client-go's ItemExponentialFailureRateLimiter: the n-th consecutive
// failure of a key waits base·2^(n-1), capped; a success forgets the key and starts it over.

export interface RateLimiter {
  /** Records a failure of `key` and answers how long to wait before retrying it. */
  when(key: string): number;
  /** Forgets `key`'s failures (call on success); the next `when` starts from the base delay. */
  forget(key: string): void;
  /** Failures recorded for `key` since it was last forgotten. */
  retries(key: string): number;
}

export interface ExponentialRateLimiterOptions {
  /** Delay after the first failure; default 5 ms. */
  baseDelayMs?: number;
  /** Cap; default 1000 s. */
  maxDelayMs?: number;
}

export const defaultBaseDelayMs = 5;
export const defaultMaxDelayMs = 1_000_000;

export function createExponentialRateLimiter({
  baseDelayMs = defaultBaseDelayMs,
  maxDelayMs = defaultMaxDelayMs,
}: ExponentialRateLimiterOptions = {}): RateLimiter {
  if (!(baseDelayMs > 0) || !(maxDelayMs >= baseDelayMs)) {
    throw new RangeError(`need 0 < baseDelayMs <= maxDelayMs, got ${baseDelayMs} and ${maxDelayMs}`);
  }
  const failures = new Map<string, number>();
  return {
    when(key) {
      const previous = failures.get(key) ?? 0;
      failures.set(key, previous + 1);
      // 2 ** 1100 is Infinity, which Math.min turns into the cap; no overflow to care about.
      return Math.min(maxDelayMs, baseDelayMs * 2 ** previous);
    },
    forget(key) {
      failures.delete(key);
    },
    retries(key) {
      return failures.get(key) ?? 0;
    },
  };
}
