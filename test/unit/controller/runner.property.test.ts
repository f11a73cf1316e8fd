// Properties of the runner over random interleavings of adds, delayed adds, finished and failed
// reconciles and passing time.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { runWorkers } from '../../../src/controller/runner.ts';
import { WorkQueue } from '../../../src/controller/work-queue.ts';
import { FakeClock, settle } from './fake-clock.ts';
import { reconcileDouble } from './reconcile-double.ts';

const keys = ['ns/a', 'ns/b', 'ns/c', 'ns/d', 'ns/e'];

type Step =
  | { kind: 'add'; key: string }
  | { kind: 'addAfter'; key: string; delayMs: number }
  | { kind: 'finish'; pick: number; outcome: 'success' | 'error' | 'requeue' }
  | { kind: 'advance'; ms: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), key: fc.constantFrom(...keys) }),
  fc.record({ kind: fc.constant('addAfter' as const), key: fc.constantFrom(...keys), delayMs: fc.integer({ min: 0, max: 100 }) }),
  fc.record({
    kind: fc.constant('finish' as const),
    pick: fc.nat(),
    outcome: fc.constantFrom('success' as const, 'error' as const, 'requeue' as const),
  }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 50 }) }),
);

async function run(concurrency: number, steps: Step[]) {
  const clock = new FakeClock();
  const queue = new WorkQueue({ clock });
  const double = reconcileDouble();
  const workers = runWorkers({ queue, reconcile: double.reconcile, concurrency, clock, newReconcileId: () => 'id' });
  // For "no add is lost": the step of each key's latest add, and of its latest reconcile start.
  const lastAdded = new Map<string, number>();
  const lastStarted = new Map<string, number>();
  let now = 0;
  const noteStarts = (from: number) => {
    for (const call of double.calls.slice(from)) lastStarted.set(call.key, now);
  };

  for (const current of steps) {
    now += 1;
    const seen = double.calls.length;
    switch (current.kind) {
      case 'add':
        queue.add(current.key);
        lastAdded.set(current.key, now);
        break;
      case 'addAfter':
        queue.addAfter(current.key, current.delayMs);
        break;
      case 'finish': {
        const inFlight = [...double.inFlight];
        const call = inFlight[current.pick % Math.max(1, inFlight.length)];
        if (call === undefined) break;
        if (current.outcome === 'error') call.fail(new Error('failed'));
        else call.finish(current.outcome === 'requeue' ? { requeueAfterMs: 20 } : {});
        break;
      }
      case 'advance':
        clock.advance(current.ms);
        break;
    }
    await settle();
    noteStarts(seen);
  }

  // Let everything settle: succeed whatever runs, let delayed adds fire, until nothing is left.
  for (let round = 0; round < 1_000 && (double.inFlight.size > 0 || queue.length > 0 || queue.delayedCount > 0); round += 1) {
    now += 1;
    const seen = double.calls.length;
    for (const call of [...double.inFlight]) call.finish();
    await settle();
    const next = clock.nextTimerAt();
    if (double.inFlight.size === 0 && queue.length === 0 && next !== undefined) clock.advance(next - clock.now());
    await settle();
    noteStarts(seen);
  }

  queue.shutDown();
  await workers.stopped;
  return { double, lastAdded, lastStarted, queue };
}

describe('runWorkers over random interleavings', () => {
  it('never runs more than `concurrency` reconciles at once, nor one key twice at once, and loses no add', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 4 }), fc.array(step, { maxLength: 60 }), async (concurrency, steps) => {
        const { double, lastAdded, lastStarted, queue } = await run(concurrency, steps);

        expect(double.maxInFlight()).toBeLessThanOrEqual(concurrency);
        expect(double.overlappingKeys).toEqual([]);
        for (const [key, addedAt] of lastAdded) expect(lastStarted.get(key) ?? -1).toBeGreaterThanOrEqual(addedAt);
        expect([queue.length, queue.delayedCount, queue.processingCount]).toEqual([0, 0, 0]);
      }),
      { numRuns: 150 },
    );
  });
});
