import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createExponentialRateLimiter } from '../../../src/controller/rate-limiter.ts';

describe('exponential failure rate limiter', () => {
  it('starts at 5 ms and doubles per consecutive failure by default', () => {
    const limiter = createExponentialRateLimiter();

    expect(Array.from({ length: 5 }, () => limiter.when('ns/a'))).toEqual([5, 10, 20, 40, 80]);
  });

  it('caps the delay at 1000 s by default, however many failures', () => {
    const limiter = createExponentialRateLimiter();
    const delays = Array.from({ length: 2_000 }, () => limiter.when('ns/a'));

    expect(delays.at(-1)).toBe(1_000_000);
    expect(Math.max(...delays)).toBe(1_000_000);
  });

  it('counts the failures of each key separately', () => {
    const limiter = createExponentialRateLimiter();
    limiter.when('ns/a');
    limiter.when('ns/a');
    limiter.when('ns/b');

    expect([limiter.retries('ns/a'), limiter.retries('ns/b'), limiter.retries('ns/c')]).toEqual([2, 1, 0]);
  });

  it('forgets a key’s failures on forget()', () => {
    const limiter = createExponentialRateLimiter({ baseDelayMs: 100 });
    limiter.when('ns/a');
    limiter.when('ns/a');

    limiter.forget('ns/a');

    expect(limiter.retries('ns/a')).toBe(0);
    expect(limiter.when('ns/a')).toBe(100);
  });

  it('gives base·2^(n-1), capped, for the n-th failure, whatever base and cap', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 0, max: 2_000_000 }),
        fc.integer({ min: 1, max: 80 }),
        (baseDelayMs, extraMs, failures) => {
          const maxDelayMs = baseDelayMs + extraMs;
          const limiter = createExponentialRateLimiter({ baseDelayMs, maxDelayMs });
          const delays = Array.from({ length: failures }, () => limiter.when('k'));
          delays.forEach((delay, index) => expect(delay).toBe(Math.min(maxDelayMs, baseDelayMs * 2 ** index)));
        },
      ),
    );
  });

  it('refuses a base that is not positive or a cap below the base', () => {
    expect(() => createExponentialRateLimiter({ baseDelayMs: 0 })).toThrow(RangeError);
    expect(() => createExponentialRateLimiter({ baseDelayMs: 10, maxDelayMs: 5 })).toThrow(RangeError);
  });
});
