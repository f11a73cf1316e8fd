import { describe, expect, it } from '@jest/globals';
import { createTimerClock, maxTimeoutMs, type TimerHost } from '../../../src/controller/clock.ts';
import { FakeClock } from './fake-clock.ts';

/** Host timers that record what they are asked and fire only when the test says so. */
function recordingHost() {
  interface Recorded {
    callback: () => void;
    delayMs: number;
    unrefed: boolean;
    cleared: boolean;
    unref(): void;
  }
  const timers: Recorded[] = [];
  const host: TimerHost = {
    now: () => 1_000,
    setTimeout(callback, delayMs) {
      const timer: Recorded = { callback, delayMs, unrefed: false, cleared: false, unref: () => (timer.unrefed = true) };
      timers.push(timer);
      return timer;
    },
    clearTimeout(handle) {
      const timer = timers.find((candidate) => candidate === handle);
      if (timer) timer.cleared = true;
    },
  };
  return { host, timers };
}

describe('timer clock', () => {
  it('unrefs its timers, so a pending requeue does not keep the process alive', () => {
    const { host, timers } = recordingHost();

    createTimerClock(host).setTimer(() => {}, 1_000);

    expect(timers.map((timer) => [timer.delayMs, timer.unrefed])).toEqual([[1_000, true]]);
  });

  it('splits a delay longer than setTimeout allows into several timers', () => {
    const { host, timers } = recordingHost();
    let fired = false;

    createTimerClock(host).setTimer(() => (fired = true), maxTimeoutMs + 10);
    timers[0]?.callback();
    expect(fired).toBe(false);
    timers[1]?.callback();

    expect(timers.map((timer) => timer.delayMs)).toEqual([maxTimeoutMs, 10]);
    expect(fired).toBe(true);
  });

  it('treats a negative delay as zero', () => {
    const { host, timers } = recordingHost();

    createTimerClock(host).setTimer(() => {}, -5);

    expect(timers[0]?.delayMs).toBe(0);
  });

  it('clears the current host timer on cancel', () => {
    const { host, timers } = recordingHost();

    createTimerClock(host).setTimer(() => {}, 1_000).cancel();

    expect(timers[0]?.cleared).toBe(true);
  });
});

describe('FakeClock', () => {
  it('fires timers in due order as time advances, each at its due time', () => {
    const clock = new FakeClock(100);
    const fired: [string, number][] = [];
    clock.setTimer(() => fired.push(['late', clock.now()]), 30);
    clock.setTimer(() => fired.push(['early', clock.now()]), 10);

    clock.advance(50);

    expect(fired).toEqual([
      ['early', 110],
      ['late', 130],
    ]);
    expect(clock.now()).toBe(150);
  });

  it('fires a timer set by a firing timer if it falls due within the same advance', () => {
    const clock = new FakeClock();
    const fired: number[] = [];
    clock.setTimer(() => clock.setTimer(() => fired.push(clock.now()), 5), 5);

    clock.advance(10);

    expect(fired).toEqual([10]);
  });

  it('does not fire cancelled timers', () => {
    const clock = new FakeClock();
    let fired = false;
    clock.setTimer(() => (fired = true), 5).cancel();

    clock.advance(10);

    expect([fired, clock.pendingTimers]).toEqual([false, 0]);
  });
});
