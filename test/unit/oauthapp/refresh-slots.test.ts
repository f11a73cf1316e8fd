import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { RefreshSlots } from '../../../src/oauthapp/refresh-slots.ts';
import { refreshTime } from '../../../src/oauthapp/schedule.ts';

const now = Date.parse('2026-11-27T08:00:00Z');

/** A deterministic uniform generator, so the figures below do not depend on luck. */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
}

const peakToMean = (times: number[]) => {
  const buckets = new Map<number, number>();
  for (const time of times) buckets.set(Math.floor(time / 1000), (buckets.get(Math.floor(time / 1000)) ?? 0) + 1);
  const first = Math.min(...buckets.keys());
  const last = Math.max(...buckets.keys());
  return Math.max(...buckets.values()) / (times.length / (last - first + 1));
};

describe('RefreshSlots', () => {
  it('always picks inside the window it is given', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 86_400_000 }), fc.integer({ min: 0, max: 600_000 }), fc.integer({ min: 1, max: 1_000 }), (offset, width, seed) => {
        const slots = new RefreshSlots(seeded(seed), () => now);
        const earliest = now + offset;
        for (let index = 0; index < 5; index += 1) {
          const picked = slots.pick(earliest, earliest + width);
          expect(picked).toBeGreaterThanOrEqual(earliest);
          expect(picked).toBeLessThanOrEqual(earliest + width);
        }
      }),
    );
  });

  it('picks inside a window of a whole second that holds no whole calendar second (found by the property above, seed -822269307)', () => {
    const earliest = Math.ceil(now / 1000) * 1000 + 1;
    const slots = new RefreshSlots(() => 0.999, () => now);
    const picked = slots.pick(earliest, earliest + 1000);
    expect(picked).toBeGreaterThanOrEqual(earliest);
    expect(picked).toBeLessThanOrEqual(earliest + 1000);
  });

  it('spreads 1,000 apps whose tokens expire together evenly: peak-to-mean at most 1.2 per second', () => {
    const random = seeded(7);
    const slots = new RefreshSlots(random, () => now);
    const expiresAt = now + 300_000;
    // Issued over 25 s, as a first start issues them; every token expires at the same moment.
    const times = Array.from({ length: 1000 }, (_, index) =>
      refreshTime({ issuedAt: now + index * 25, expiresAt, random, pick: (earliest, latest) => slots.pick(earliest, latest) }),
    );
    const independent = Array.from({ length: 1000 }, (_, index) => refreshTime({ issuedAt: now + index * 25, expiresAt, random }));

    expect(peakToMean(times)).toBeLessThanOrEqual(1.2);
    expect(peakToMean(independent)).toBeGreaterThan(peakToMean(times));
  });

  it('forgets seconds that have passed', () => {
    let clock = now;
    const slots = new RefreshSlots(() => 0, () => clock);
    slots.pick(now, now + 2_000);
    clock = now + 10_000;

    expect(Math.floor(slots.pick(now + 10_000, now + 12_000) / 1000)).toBe(Math.floor((now + 10_000) / 1000));
  });
});
