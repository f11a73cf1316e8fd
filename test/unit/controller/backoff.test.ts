import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { exponentialBackoff } from '../../../src/controller/backoff.ts';

const unitInterval = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
const options = fc
  .record({
    baseMs: fc.integer({ min: 1, max: 60_000 }),
    extraMs: fc.integer({ min: 0, max: 3_600_000 }),
    attempt: fc.integer({ min: 1, max: 2_000 }),
  })
  .map(({ baseMs, extraMs, attempt }) => ({ baseMs, maxMs: baseMs + extraMs, attempt }));

describe('exponentialBackoff', () => {
  it('waits 5-10 s before the first retry and at most 5 min ever, by default', () => {
    expect(exponentialBackoff({ attempt: 1, random: () => 0 })).toBe(5_000);
    expect(exponentialBackoff({ attempt: 1, random: () => 0.999_999 })).toBeCloseTo(10_000, -1);
    expect(exponentialBackoff({ attempt: 50, random: () => 0 })).toBe(150_000);
    expect(exponentialBackoff({ attempt: 50, random: () => 0.999_999 })).toBeCloseTo(300_000, -1);
  });

  it('doubles the step per attempt until the cap', () => {
    const middle = (attempt: number) => exponentialBackoff({ attempt, random: () => 0.5 });

    expect([1, 2, 3, 4, 5, 6, 7].map(middle)).toEqual([7_500, 15_000, 30_000, 60_000, 120_000, 225_000, 225_000]);
  });

  it('never waits less than half the base step nor more than the cap', () => {
    fc.assert(
      fc.property(options, unitInterval, ({ baseMs, maxMs, attempt }, r) => {
        const delay = exponentialBackoff({ attempt, baseMs, maxMs, random: () => r });
        expect(delay).toBeGreaterThanOrEqual(baseMs / 2);
        expect(delay).toBeLessThanOrEqual(maxMs);
      }),
    );
  });

  it('never waits less than half the exponential step, so jitter cannot undo the backoff', () => {
    fc.assert(
      fc.property(options, unitInterval, ({ baseMs, maxMs, attempt }, r) => {
        const step = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
        expect(exponentialBackoff({ attempt, baseMs, maxMs, random: () => r })).toBeGreaterThanOrEqual(step / 2);
      }),
    );
  });

  it('has an expected delay that does not decrease from one attempt to the next', () => {
    // The delay is linear in random(), so its mean is the delay at random() = 0.5.
    const expected = (attempt: number, baseMs: number, maxMs: number) => exponentialBackoff({ attempt, baseMs, maxMs, random: () => 0.5 });
    fc.assert(
      fc.property(options, ({ baseMs, maxMs, attempt }) => {
        expect(expected(attempt + 1, baseMs, maxMs)).toBeGreaterThanOrEqual(expected(attempt, baseMs, maxMs));
      }),
    );
  });

  it('is monotonic in the random draw for a given attempt', () => {
    fc.assert(
      fc.property(options, unitInterval, unitInterval, ({ baseMs, maxMs, attempt }, r1, r2) => {
        const [low, high] = r1 <= r2 ? [r1, r2] : [r2, r1];
        expect(exponentialBackoff({ attempt, baseMs, maxMs, random: () => low })).toBeLessThanOrEqual(
          exponentialBackoff({ attempt, baseMs, maxMs, random: () => high }),
        );
      }),
    );
  });

  it('refuses an attempt below 1 or not a whole number', () => {
    expect(() => exponentialBackoff({ attempt: 0, random: Math.random })).toThrow(RangeError);
    expect(() => exponentialBackoff({ attempt: 1.5, random: Math.random })).toThrow(RangeError);
  });

  it('refuses a cap below the base', () => {
    expect(() => exponentialBackoff({ attempt: 1, baseMs: 10, maxMs: 5, random: Math.random })).toThrow(RangeError);
  });
});
