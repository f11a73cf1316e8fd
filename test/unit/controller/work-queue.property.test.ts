// Properties of the work queue over random sequences of adds, delayed and rate-limited adds,
// hand-outs, finished keys and passing time, checked against a model of client-go's semantics:
// a key is queued at most once, never handed to two workers at once, an add during processing
// comes back after done(), delayed adds collapse to the earliest, and no add is lost. On top of
// that, expedite (keys waiting out an expeditable failure are added at once, failures forgotten),
// and the fairness this queue adds: first-in-first-out within a namespace, and no namespace is
// served twice while another namespace's key waited through both turns.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { namespaceOf, WorkQueue } from '../../../src/controller/work-queue.ts';
import { FakeClock } from './fake-clock.ts';

const keys = ['a/1', 'a/2', 'a/3', 'b/1', 'b/2', 'c/1', 'c/2', 'c/3', 'c/4'];
const baseDelayMs = 5;
const maxDelayMs = 1_000_000;

type Step =
  | { kind: 'add'; key: string }
  | { kind: 'addAfter'; key: string; delayMs: number }
  | { kind: 'addRateLimited'; key: string; expeditable: boolean }
  | { kind: 'expedite' }
  | { kind: 'forget'; key: string }
  | { kind: 'get' }
  | { kind: 'done'; pick: number }
  | { kind: 'advance'; ms: number };

const key = fc.constantFrom(...keys);
const step: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('add' as const), key }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant('addAfter' as const), key, delayMs: fc.integer({ min: -5, max: 60 }) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('addRateLimited' as const), key, expeditable: fc.boolean() }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('expedite' as const) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('forget' as const), key }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('get' as const) }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant('done' as const), pick: fc.nat() }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 40 }) }), weight: 2 },
);

/** client-go's semantics, kept the simple way, plus which namespace waited since when. */
class Model {
  now = 0;
  readonly dirty = new Set<string>();
  readonly processing = new Set<string>();
  readonly queued = new Map<string, string[]>();
  readonly delayed = new Map<string, { readyAt: number; sequence: number }>();
  readonly failures = new Map<string, number>();
  /** Delayed keys whose pending add waits out an expeditable failure. */
  readonly expeditable = new Set<string>();
  /** Keys that were processing at an expedite: their next expeditable failure starts over. */
  readonly expeditedWhileProcessing = new Set<string>();
  private sequence = 0;
  handOuts = 0;
  /** Per namespace with queued keys: the hand-out count when it last started waiting for a turn. */
  readonly waitingSince = new Map<string, number>();
  /** Per namespace: the hand-out index of its latest turn. */
  readonly lastServed = new Map<string, number>();
  /** Per key: the step of its latest add that took effect, and of its latest hand-out. */
  readonly lastAdded = new Map<string, number>();
  readonly lastHandedOut = new Map<string, number>();
  step = 0;

  add(key: string): void {
    this.lastAdded.set(key, this.step);
    if (this.dirty.has(key)) return;
    this.dirty.add(key);
    if (!this.processing.has(key)) this.enqueue(key);
  }

  addAfter(key: string, delayMs: number, expeditable = false): void {
    if (!(delayMs > 0)) return this.add(key);
    const readyAt = this.now + delayMs;
    const pending = this.delayed.get(key);
    if (pending !== undefined && pending.readyAt <= readyAt) return;
    this.delayed.set(key, { readyAt, sequence: this.sequence++ });
    if (expeditable) this.expeditable.add(key);
    else this.expeditable.delete(key);
  }

  addRateLimited(key: string, expeditable: boolean): void {
    if (expeditable && this.expeditedWhileProcessing.delete(key)) this.failures.delete(key);
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    this.addAfter(key, Math.min(baseDelayMs * 2 ** failures, maxDelayMs), expeditable);
  }

  expedite(): void {
    for (const key of this.expeditable) {
      this.delayed.delete(key);
      this.failures.delete(key);
      this.add(key);
    }
    this.expeditable.clear();
    for (const key of this.processing) this.expeditedWhileProcessing.add(key);
  }

  advance(ms: number): void {
    const target = this.now + ms;
    for (;;) {
      const due = [...this.delayed.entries()]
        .filter(([, pending]) => pending.readyAt <= target)
        .sort(([, a], [, b]) => a.readyAt - b.readyAt || a.sequence - b.sequence)[0];
      if (!due) break;
      this.delayed.delete(due[0]);
      this.expeditable.delete(due[0]);
      this.now = due[1].readyAt;
      this.add(due[0]);
    }
    this.now = target;
  }

  /** Checks a hand-out against the model, then records it. */
  handOut(key: string): void {
    const namespace = namespaceOf(key);
    const flow = this.queued.get(namespace);
    expect(this.processing.has(key)).toBe(false);
    // First in, first out within the namespace.
    expect(flow?.[0]).toBe(key);
    // Nobody else waited through this namespace's previous turn and this one.
    const previousTurn = this.lastServed.get(namespace);
    for (const [other, since] of this.waitingSince) {
      if (other !== namespace && previousTurn !== undefined) expect(previousTurn < since).toBe(true);
    }
    flow?.shift();
    this.dirty.delete(key);
    this.processing.add(key);
    this.lastServed.set(namespace, this.handOuts);
    this.handOuts += 1;
    if (flow && flow.length > 0) this.waitingSince.set(namespace, this.handOuts);
    else {
      this.queued.delete(namespace);
      this.waitingSince.delete(namespace);
    }
    this.lastHandedOut.set(key, this.step);
  }

  done(key: string): void {
    this.processing.delete(key);
    this.expeditedWhileProcessing.delete(key);
    if (this.dirty.has(key)) this.enqueue(key);
  }

  get length(): number {
    return [...this.queued.values()].reduce((total, flow) => total + flow.length, 0);
  }

  private enqueue(key: string): void {
    const namespace = namespaceOf(key);
    const flow = this.queued.get(namespace);
    if (flow) flow.push(key);
    else {
      this.queued.set(namespace, [key]);
      this.waitingSince.set(namespace, this.handOuts);
    }
  }
}

async function run(steps: Step[]): Promise<void> {
  const clock = new FakeClock();
  const queue = new WorkQueue({ clock });
  const model = new Model();
  const same = () => {
    expect(queue.length).toBe(model.length);
    expect(queue.processingCount).toBe(model.processing.size);
    expect(queue.delayedCount).toBe(model.delayed.size);
    for (const each of keys) expect(queue.retries(each)).toBe(model.failures.get(each) ?? 0);
  };
  const handOut = async () => {
    const handed = await queue.get();
    if (handed === undefined) throw new Error('the queue was not shut down');
    model.handOut(handed);
  };

  for (const current of steps) {
    model.step += 1;
    switch (current.kind) {
      case 'add':
        queue.add(current.key);
        model.add(current.key);
        break;
      case 'addAfter':
        queue.addAfter(current.key, current.delayMs);
        model.addAfter(current.key, current.delayMs);
        break;
      case 'addRateLimited':
        queue.addRateLimited(current.key, { expeditable: current.expeditable });
        model.addRateLimited(current.key, current.expeditable);
        break;
      case 'expedite':
        queue.expedite();
        model.expedite();
        break;
      case 'forget':
        queue.forget(current.key);
        model.failures.delete(current.key);
        break;
      case 'get':
        if (queue.length > 0) await handOut();
        break;
      case 'done': {
        const inFlight = [...model.processing];
        const picked = inFlight[current.pick % Math.max(1, inFlight.length)];
        if (picked === undefined) break;
        queue.done(picked);
        model.done(picked);
        break;
      }
      case 'advance':
        clock.advance(current.ms);
        model.advance(current.ms);
        break;
    }
    same();
  }

  // Drain: finish whatever runs, let every delayed add fire, hand out whatever is queued.
  while (model.processing.size > 0 || model.length > 0 || model.delayed.size > 0) {
    model.step += 1;
    for (const processing of [...model.processing]) {
      queue.done(processing);
      model.done(processing);
    }
    while (queue.length > 0) await handOut();
    const next = clock.nextTimerAt();
    if (model.processing.size === 0 && model.length === 0 && next !== undefined) {
      clock.advance(next - clock.now());
      model.advance(next - model.now);
    }
    same();
  }

  // No add is lost: every key's latest add was followed by a hand-out.
  for (const [added, at] of model.lastAdded) expect(model.lastHandedOut.get(added) ?? -1).toBeGreaterThan(at);
}

describe('WorkQueue properties', () => {
  it('keeps client-go semantics and serves namespaces fairly over random interleavings', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 150 }), async (steps) => {
        await run(steps);
      }),
      { numRuns: 300 },
    );
  });

  it('hands each namespace one turn per round while all of them have keys queued', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(key, { minLength: 1, maxLength: 60 }), async (added) => {
        const queue = new WorkQueue({ clock: new FakeClock() });
        for (const each of added) queue.add(each);
        const namespaces = new Set(added.map(namespaceOf));
        const handed: string[] = [];
        while (queue.length > 0) handed.push((await queue.get()) ?? '');
        // The first round serves every namespace once, before any namespace's second key.
        expect(new Set(handed.slice(0, namespaces.size).map(namespaceOf)).size).toBe(namespaces.size);
        expect(handed.toSorted()).toEqual([...new Set(added)].toSorted());
      }),
    );
  });
});
