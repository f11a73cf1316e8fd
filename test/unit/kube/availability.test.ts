import { describe, expect, it } from '@jest/globals';
import { ApiserverAvailability, isOutOfReachStatus } from '../../../src/kube/availability.ts';
import { FakeClock } from '../controller/fake-clock.ts';

const tracked = (minIntervalMs = 1000) => {
  const clock = new FakeClock(1_000_000);
  const availability = new ApiserverAvailability(clock, minIntervalMs);
  const signals: number[] = [];
  availability.onRecovered(() => signals.push(clock.now()));
  return { clock, availability, signals };
};

describe('ApiserverAvailability', () => {
  it('signals when the apiserver answers after being out of reach', () => {
    const { availability, signals } = tracked();
    availability.recordOutOfReach();

    availability.recordAnswer();

    expect(signals).toEqual([1_000_000]);
  });

  it('does not signal answers while nothing failed', () => {
    const { availability, signals } = tracked();

    availability.recordAnswer();
    availability.recordAnswer();

    expect(signals).toEqual([]);
  });

  it('signals once per recovery, not per answer', () => {
    const { clock, availability, signals } = tracked();
    availability.recordOutOfReach();
    availability.recordAnswer();
    clock.advance(5_000);

    availability.recordAnswer();

    expect(signals).toHaveLength(1);
  });

  it('defers a recovery that comes within the interval to its end, and signals it once', () => {
    const { clock, availability, signals } = tracked(1000);
    availability.recordOutOfReach();
    availability.recordAnswer();
    clock.advance(200);
    availability.recordOutOfReach();
    availability.recordAnswer();
    availability.recordOutOfReach();
    availability.recordAnswer();

    clock.advance(799);
    expect(signals).toEqual([1_000_000]);
    clock.advance(1);
    expect(signals).toEqual([1_000_000, 1_001_000]);
    clock.advance(10_000);
    expect(signals).toHaveLength(2);
  });

  it('stops a deferred signal on close', () => {
    const { clock, availability, signals } = tracked(1000);
    availability.recordOutOfReach();
    availability.recordAnswer();
    availability.recordOutOfReach();
    availability.recordAnswer();

    availability.close();
    clock.advance(5_000);

    expect(signals).toHaveLength(1);
  });

  it.each([429, 503, 504])('counts HTTP %i as out of reach', (status) => {
    expect(isOutOfReachStatus(status)).toBe(true);
  });

  it.each([200, 404, 409, 500])('counts HTTP %i as an answer (a failing webhook answers 500)', (status) => {
    expect(isOutOfReachStatus(status)).toBe(false);
  });
});
