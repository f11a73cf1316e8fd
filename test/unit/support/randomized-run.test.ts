// The randomized run's check 3 counts stale-target time only while a replica could lead: the
// numbers are seed 192180's (a leader whose Lease renewal committed with its answer lost stepped
// down and exited; the Lease named it until it ran out, and the target stayed stale meanwhile).
import { describe, expect, it } from '@jest/globals';
import { faultScheduleEnd, leadingSpans, overlapMs } from '../../support/randomized-run.ts';

const oldLeader = 'vm-54ae54ae';
const newLeader = 'vm-1b437ffa';

describe('leadingSpans', () => {
  it('ends a leader’s span when it exits, though the Lease still names it, and starts the next when the Lease names another', () => {
    const history = [
      { at: 1_000, holder: oldLeader },
      { at: 20_000, holder: oldLeader },
      { at: 40_907, holder: newLeader },
    ];
    const events = [{ at: 25_406, what: 'exited', identity: oldLeader }];
    expect(leadingSpans(history, events, 60_000)).toEqual([
      [1_000, 25_406],
      [40_907, 60_000],
    ]);
  });

  it('ignores exits of other incarnations and a Lease naming nobody', () => {
    const history = [
      { at: 0, holder: '' },
      { at: 2_000, holder: newLeader },
    ];
    expect(leadingSpans(history, [{ at: 5_000, what: 'exited', identity: oldLeader }], 9_000)).toEqual([[2_000, 9_000]]);
  });
});

describe('overlapMs', () => {
  const spans: Array<[number, number]> = [
    [1_000, 25_406],
    [40_907, 60_000],
  ];

  it('counts nothing of a stale target that fell between two leaders (seed 192180: 29.1 s to 37.3 s)', () => {
    expect(overlapMs(29_100, 37_300, spans)).toBe(0);
  });

  it('counts a stale target while a replica led, across spans', () => {
    expect(overlapMs(20_000, 42_000, spans)).toBe(5_406 + 1_093);
  });
});

describe('faultScheduleEnd', () => {
  // Seed 800025, in ms from the start: the leader renewed last at 9,000 and was killed; faults kept
  // the standby from reading the Lease until 14,700, so it counted 15 s from there and took over at
  // 29,700; the faults had ended (calm) at 23,700.
  const dead = { holder: 'vm-fb9c81c1', renewTime: 9_000 };
  const history = [{ at: 9_000, ...dead }, { at: 29_700, holder: 'vm-2ebe8b38', renewTime: 29_700 }];

  it('ends at the takeover when the Lease holder at calm was gone and a standby took its Lease', () => {
    expect(faultScheduleEnd(23_700, history)).toEqual({ end: 29_700 });
  });

  it('ends at calm when the holder at calm renewed after it', () => {
    expect(faultScheduleEnd(23_700, [{ at: 9_000, ...dead }, { at: 24_000, holder: dead.holder, renewTime: 24_000 }])).toEqual({ end: 23_700 });
  });

  it('reports a takeover later than a retry period, the lease duration and a retry period after calm', () => {
    const late = faultScheduleEnd(23_700, [{ at: 9_000, ...dead }, { at: 50_000, holder: 'vm-2ebe8b38', renewTime: 50_000 }]);
    expect(late.end).toBe(23_700 + 2_400 + 15_000 + 2_400);
    expect(late.lateTakeover).toContain('6.5s later than the election protocol allows');
  });
});
