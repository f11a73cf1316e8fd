// When a token is refreshed: from its own lifetime, before its renewal point, with jitter that
// spreads apps issued together over a window instead of one second.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { jitterShare, refreshTime } from '../../../src/oauthapp/schedule.ts';

const hour = 3_600_000;

/** A token's issue time and lifetime, in whole milliseconds, with an optional spec.renewBefore. */
const token = fc.record({
  issuedAt: fc.integer({ min: 0, max: Date.parse('2100-01-01T00:00:00Z') }),
  lifetime: fc.integer({ min: 1, max: 90 * 24 * hour }),
  renewBeforeMs: fc.option(fc.integer({ min: 1, max: 100 * 24 * hour }), { nil: undefined }),
  random: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
});

type Token = { issuedAt: number; lifetime: number; renewBeforeMs: number | undefined; random: number };

const schedule = ({ issuedAt, lifetime, renewBeforeMs, random }: Token) =>
  refreshTime({ issuedAt, expiresAt: issuedAt + lifetime, ...(renewBeforeMs !== undefined ? { renewBeforeMs } : {}), random: () => random });

/** What the contract says the margin is: spec.renewBefore when shorter than the lifetime, else a third. */
const margin = ({ lifetime, renewBeforeMs }: Token) => (renewBeforeMs !== undefined && renewBeforeMs < lifetime ? renewBeforeMs : lifetime / 3);

const renewalPoint = (t: Token) => t.issuedAt + t.lifetime - margin(t);

/** A small seeded generator (mulberry32), so the spread test is the same on every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

describe('refreshTime', () => {
  it('never refreshes later than the expiry minus the effective renewBefore', () => {
    fc.assert(fc.property(token, (t) => schedule(t) <= t.issuedAt + t.lifetime - margin(t)));
  });

  it('never refreshes before the token was issued', () => {
    fc.assert(fc.property(token, (t) => schedule(t) >= t.issuedAt));
  });

  it('keeps the jitter inside the last tenth of the time between issue and the renewal point', () => {
    expect(jitterShare).toBe(0.1);
    fc.assert(
      fc.property(token, (t) => {
        const point = renewalPoint(t);
        return schedule(t) >= point - 0.1 * (point - t.issuedAt);
      }),
    );
  });

  it('refreshes exactly at the renewal point when the random draw is 0', () => {
    fc.assert(fc.property(token, (t) => schedule({ ...t, random: 0 }) === renewalPoint(t)));
  });

  it('renews a third of the lifetime before expiry when renewBefore is not set', () => {
    fc.assert(
      fc.property(token, (t) => schedule({ ...t, renewBeforeMs: undefined, random: 0 }) === t.issuedAt + t.lifetime - t.lifetime / 3),
    );
    expect(refreshTime({ issuedAt: 0, expiresAt: 3 * hour, random: () => 0 })).toBe(2 * hour);
  });

  it('falls back to a third of the lifetime when renewBefore is not shorter than the lifetime', () => {
    fc.assert(
      fc.property(token, fc.integer({ min: 0, max: 10 * hour }), (t, excess) => {
        const tooLong = schedule({ ...t, renewBeforeMs: t.lifetime + excess, random: 0 });
        return tooLong === schedule({ ...t, renewBeforeMs: undefined, random: 0 });
      }),
    );
    // Pipedrive's hour-long token with renewBefore: 2h.
    expect(refreshTime({ issuedAt: 0, expiresAt: hour, renewBeforeMs: 2 * hour, random: () => 0 })).toBe((2 * hour) / 3);
  });

  it('uses renewBefore when it is shorter than the lifetime', () => {
    expect(refreshTime({ issuedAt: 0, expiresAt: hour, renewBeforeMs: 15 * 60_000, random: () => 0 })).toBe(45 * 60_000);
  });

  it('spreads apps issued in the same instant over the whole jitter window', () => {
    const issuedAt = Date.parse('2030-01-01T00:00:00Z');
    const expiresAt = issuedAt + hour;
    const point = expiresAt - hour / 3;
    const window = 0.1 * (point - issuedAt);
    const random = seeded(20_240_601);
    const apps = 1_000;
    const slices = 20;
    const counts = new Array<number>(slices).fill(0);
    for (let app = 0; app < apps; app++) {
      const at = refreshTime({ issuedAt, expiresAt, random });
      expect(at).toBeGreaterThanOrEqual(point - window);
      expect(at).toBeLessThanOrEqual(point);
      const slice = Math.min(slices - 1, Math.floor(((point - at) / window) * slices));
      counts[slice] = (counts[slice] ?? 0) + 1;
    }
    const share = apps / slices;
    expect(Math.max(...counts)).toBeLessThanOrEqual(3 * share);
    // And no part of the window is left empty: the refreshes really are spread out.
    expect(Math.min(...counts)).toBeGreaterThan(0);
  });
});
