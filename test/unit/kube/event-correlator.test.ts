// Events per app are rate-limited and aggregated: a token bucket per object, the excess held back,
// repeats of a held Event counted into one. Time is a FakeClock; nothing waits for real.
import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { EventCorrelator, type EventLimits, type EventNote, type Occurrence } from '../../../src/kube/event-correlator.ts';
import { EventRecorder } from '../../../src/kube/events.ts';
import type { EventInput } from '../../../src/kube/client.ts';
import type { KubeObject } from '../../../src/kube/objects.ts';
import { FakeClock, settle } from '../controller/fake-clock.ts';

const second = 1_000;
const minute = 60 * second;
const limits: EventLimits = { burst: 5, refillMs: 30 * second, maxHeld: 4 };

const app = (name: string, resourceVersion = '1'): KubeObject => ({ kind: 'OAuthApp', apiVersion: 'oauthapp.dev/v1alpha1', metadata: { name, namespace: 'sales', uid: `uid-${name}`, resourceVersion } });
const broken: EventNote = { type: 'Warning', reason: 'InvalidClient', message: 'ClientSecretValid=False: rejected', action: 'Reconcile' };
const fixed: EventNote = { type: 'Normal', reason: 'Verified', message: 'ClientSecretValid=True: accepted', action: 'Reconcile' };
const note = (index: number): EventNote => ({ type: 'Normal', reason: `Reason${index}`, message: `message ${index}`, action: 'Reconcile' });

function setUp(options: Partial<EventLimits> = {}) {
  const clock = new FakeClock(Date.parse('2030-01-01T00:00:00Z'));
  const written: Array<{ at: number; app: string; resourceVersion: string | undefined } & Occurrence> = [];
  const dropped: Occurrence[] = [];
  const correlator = new EventCorrelator({
    clock,
    limits: { ...limits, ...options },
    write: async (object, occurrence) => void written.push({ at: clock.now(), app: object.metadata.name, resourceVersion: object.metadata.resourceVersion, ...occurrence }),
    onDropped: (_object, occurrence) => void dropped.push(occurrence),
  });
  return { clock, correlator, written, dropped };
}

describe('EventCorrelator', () => {
  it('writes an app\'s first Events at once, up to the burst', async () => {
    const { correlator, written } = setUp();

    for (let index = 0; index < 5; index += 1) await correlator.record(app('crm'), note(index));

    expect(written.map((event) => [event.note.reason, event.count])).toEqual([0, 1, 2, 3, 4].map((index) => [`Reason${index}`, 1]));
  });

  it('holds back Events beyond the burst and writes one per refill period, oldest first', async () => {
    const { clock, correlator, written } = setUp();
    for (let index = 0; index < 7; index += 1) await correlator.record(app('crm'), note(index));
    expect(written).toHaveLength(5);

    clock.advance(30 * second - 1);
    expect(written).toHaveLength(5);
    clock.advance(1);
    expect(written.map((event) => event.note.reason)).toEqual(['Reason0', 'Reason1', 'Reason2', 'Reason3', 'Reason4', 'Reason5']);
    clock.advance(30 * second);
    expect(written.at(-1)?.note.reason).toBe('Reason6');
    clock.advance(10 * minute);
    expect(written).toHaveLength(7);
  });

  it('counts the same Event held back again into one Event with a count and its first and last time', async () => {
    const { clock, correlator, written } = setUp();
    for (let index = 0; index < 5; index += 1) await correlator.record(app('crm'), note(index));
    const firstAt = clock.now();

    await correlator.record(app('crm', '7'), broken);
    clock.advance(5 * second);
    await correlator.record(app('crm', '8'), broken);
    clock.advance(5 * second);
    await correlator.record(app('crm', '9'), broken);
    clock.advance(20 * second);

    expect(written).toHaveLength(6);
    expect(written[5]).toMatchObject({ note: broken, count: 3, firstAt, lastAt: firstAt + 10 * second, resourceVersion: '9' });
  });

  it('bounds a condition flapping for ten minutes to the burst plus one Event per refill period, the newest state written last', async () => {
    const { clock, correlator, written } = setUp();

    // A flip every 2 s: 300 transitions.
    for (let flip = 0; flip < 300; flip += 1) {
      await correlator.record(app('crm'), flip % 2 === 0 ? broken : fixed);
      clock.advance(2 * second);
    }
    expect(written.length).toBeLessThanOrEqual(5 + (10 * minute) / (30 * second));
    expect(written.reduce((sum, event) => sum + event.count, 0)).toBeGreaterThan(250); // repetitions counted, not lost

    // The last transition was to `fixed`: once the held Events are out, it is the last one written.
    clock.advance(2 * minute);
    expect(written.at(-1)?.note).toEqual(fixed);
    expect(written.reduce((sum, event) => sum + event.count, 0)).toBe(300);
  });

  it('limits each app on its own', async () => {
    const { correlator, written } = setUp();

    for (let index = 0; index < 8; index += 1) await correlator.record(app('noisy'), note(index));
    await correlator.record(app('quiet'), broken);

    expect(written.filter((event) => event.app === 'noisy')).toHaveLength(5);
    expect(written.filter((event) => event.app === 'quiet')).toHaveLength(1);
  });

  it('drops the oldest held Event when too many distinct ones wait, and says so', async () => {
    const { clock, correlator, written, dropped } = setUp();

    for (let index = 0; index < 5 + 5; index += 1) await correlator.record(app('crm'), note(index));

    expect(dropped.map((occurrence) => occurrence.note.reason)).toEqual(['Reason5']);
    clock.advance(10 * minute);
    expect(written.map((event) => event.note.reason)).toEqual([0, 1, 2, 3, 4, 6, 7, 8, 9].map((index) => `Reason${index}`));
  });

  it('forgets an app once its bucket is full again, so deleted apps cost no memory', async () => {
    const { clock, correlator } = setUp();
    for (let index = 0; index < 6; index += 1) await correlator.record(app('crm'), note(index));
    expect(correlator.tracked).toBe(1);

    clock.advance(30 * second); // the held Event goes out
    clock.advance(5 * 30 * second); // the bucket is full again

    expect(correlator.tracked).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('cancels its timers and held Events on stop', async () => {
    const { clock, correlator, written } = setUp();
    for (let index = 0; index < 7; index += 1) await correlator.record(app('crm'), note(index));

    correlator.stop();
    clock.advance(10 * minute);

    expect(written).toHaveLength(5);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('EventRecorder', () => {
  it('writes an aggregated Event as an events.k8s.io/v1 series, its eventTime the first occurrence', async () => {
    const clock = new FakeClock(Date.parse('2030-01-01T00:00:00Z'));
    const created: Array<{ event: EventInput; at: Date }> = [];
    const recorder = new EventRecorder(
      { createEvent: async (_namespace, event, at) => void created.push({ event, at }) },
      'replica-a',
      pino({ level: 'silent' }),
      () => clock.now(),
      { clock, limits: { burst: 1, refillMs: 30 * second, maxHeld: 4 } },
    );
    await recorder.record(app('crm'), fixed);
    const firstAt = clock.now();
    await recorder.record(app('crm'), broken);
    clock.advance(10 * second);
    await recorder.record(app('crm'), broken);

    clock.advance(20 * second);
    await settle();

    expect(created).toHaveLength(2);
    expect(created[0]?.event.series).toBeUndefined();
    expect(created[1]?.event).toMatchObject({ reason: 'InvalidClient', series: { count: 2, lastObservedTime: new Date(firstAt + 10 * second) } });
    expect(created[1]?.at).toEqual(new Date(firstAt));
  });

  it('logs a failed Event and does not throw', async () => {
    const clock = new FakeClock(0);
    const recorder = new EventRecorder({ createEvent: async () => Promise.reject(new Error('forbidden')) }, 'replica-a', pino({ level: 'silent' }), () => clock.now(), { clock });

    await expect(recorder.record(app('crm'), broken)).resolves.toBeUndefined();
  });
});
