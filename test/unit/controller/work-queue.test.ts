import { describe, expect, it } from '@jest/globals';
import { createExponentialRateLimiter } from '../../../src/controller/rate-limiter.ts';
import { namespaceOf, WorkQueue } from '../../../src/controller/work-queue.ts';
import { FakeClock, settle } from './fake-clock.ts';

const newQueue = (clock = new FakeClock()) => ({ clock, queue: new WorkQueue({ clock }) });

/** Takes every key queued right now, in order. */
async function takeAll(queue: WorkQueue): Promise<string[]> {
  const keys: string[] = [];
  while (queue.length > 0) keys.push((await queue.get()) ?? '<shut down>');
  return keys;
}

describe('WorkQueue', () => {
  it('hands out keys in the order they were added', async () => {
    const { queue } = newQueue();
    queue.add('ns/a');
    queue.add('ns/b');
    queue.add('ns/c');

    expect(await takeAll(queue)).toEqual(['ns/a', 'ns/b', 'ns/c']);
  });

  it('queues a key at most once however often it is added', async () => {
    const { queue } = newQueue();
    queue.add('ns/a');
    queue.add('ns/b');
    queue.add('ns/a');

    expect(queue.length).toBe(2);
    expect(await takeAll(queue)).toEqual(['ns/a', 'ns/b']);
  });

  it('resolves a waiting get() when a key is added', async () => {
    const { queue } = newQueue();
    const waiting = queue.get();

    queue.add('ns/a');

    await expect(waiting).resolves.toBe('ns/a');
  });

  it('does not hand out a key being processed; one added meanwhile comes back after done()', async () => {
    const { queue } = newQueue();
    queue.add('ns/a');
    const first = await queue.get();
    let second: string | undefined;
    void queue.get().then((key) => (second = key));

    queue.add('ns/a');
    queue.add('ns/a');
    await settle();
    expect(second).toBeUndefined();
    expect(queue.length).toBe(0);

    queue.done('ns/a');
    await settle();
    expect([first, second]).toEqual(['ns/a', 'ns/a']);
  });

  it('requeues a key added during processing behind keys that were already waiting', async () => {
    const { queue } = newQueue();
    queue.add('ns/a');
    await queue.get();
    queue.add('ns/b');
    queue.add('ns/a');

    queue.done('ns/a');

    expect(await takeAll(queue)).toEqual(['ns/b', 'ns/a']);
  });

  it('does not requeue a key that was not added again while processing', async () => {
    const { queue } = newQueue();
    queue.add('ns/a');
    await queue.get();

    queue.done('ns/a');

    expect(queue.length).toBe(0);
  });

  it('ignores done() for a key that was never handed out', async () => {
    const { queue } = newQueue();
    queue.add('ns/a');

    queue.done('ns/a');

    expect(await takeAll(queue)).toEqual(['ns/a']);
  });

  it('adds a key once addAfter’s delay has passed on the clock, not before', () => {
    const { clock, queue } = newQueue();
    queue.addAfter('ns/a', 1_000);

    clock.advance(999);
    expect(queue.length).toBe(0);
    expect(queue.delayedCount).toBe(1);

    clock.advance(1);
    expect(queue.length).toBe(1);
    expect(queue.delayedCount).toBe(0);
  });

  it('adds at once when addAfter’s delay is zero or negative', () => {
    const { queue } = newQueue();
    queue.addAfter('ns/a', 0);
    queue.addAfter('ns/b', -5);

    expect(queue.length).toBe(2);
    expect(queue.delayedCount).toBe(0);
  });

  it('collapses several addAfter for one key to the earliest', () => {
    const { clock, queue } = newQueue();
    queue.addAfter('ns/a', 5_000);
    queue.addAfter('ns/a', 2_000);
    queue.addAfter('ns/a', 9_000);
    expect(queue.delayedCount).toBe(1);
    expect(clock.pendingTimers).toBe(1);

    clock.advance(2_000);
    expect(queue.length).toBe(1);

    clock.advance(10_000);
    expect(queue.length).toBe(1);
    expect(clock.pendingTimers).toBe(0);
  });

  it('counts only keys that are queued in length, and delayed ones in delayedCount', () => {
    const { queue } = newQueue();
    queue.add('ns/a');
    queue.addAfter('ns/b', 100);
    queue.addAfter('ns/c', 100);

    expect([queue.length, queue.delayedCount]).toEqual([1, 2]);
  });

  it('doubles the delay of addRateLimited on each failure of a key, up to the cap', () => {
    const clock = new FakeClock();
    const queue = new WorkQueue({ clock, rateLimiter: createExponentialRateLimiter({ baseDelayMs: 5, maxDelayMs: 40 }) });

    const delays = Array.from({ length: 6 }, () => queue.addRateLimited('ns/a'));

    expect(delays).toEqual([5, 10, 20, 40, 40, 40]);
    expect(queue.retries('ns/a')).toBe(6);
  });

  it('adds a rate-limited key once its backoff has passed', () => {
    const { clock, queue } = newQueue();
    queue.addRateLimited('ns/a');

    clock.advance(4);
    expect(queue.length).toBe(0);
    clock.advance(1);
    expect(queue.length).toBe(1);
  });

  it('starts the backoff over after forget()', () => {
    const { queue } = newQueue();
    queue.addRateLimited('ns/a');
    queue.addRateLimited('ns/a');

    queue.forget('ns/a');

    expect(queue.retries('ns/a')).toBe(0);
    expect(queue.addRateLimited('ns/a')).toBe(5);
  });

  it('keeps each key’s backoff separate', () => {
    const { queue } = newQueue();
    queue.addRateLimited('ns/a');
    queue.addRateLimited('ns/a');

    expect(queue.addRateLimited('ns/b')).toBe(5);
  });

  describe('expedite()', () => {
    /** A key that failed `times` in a row on an expeditable cause: its retry is 5·2^(times-1) ms away. */
    const failedOften = (queue: WorkQueue, key: string, times: number) => {
      for (let i = 0; i < times; i += 1) queue.addRateLimited(key, { expeditable: true });
    };

    it('adds at once a key backing off from an expeditable failure, with its failures forgotten', async () => {
      const { queue } = newQueue();
      failedOften(queue, 'ns/a', 12); // next try 10 s away

      expect(queue.expedite()).toBe(1);

      expect(await takeAll(queue)).toEqual(['ns/a']);
      expect(queue.retries('ns/a')).toBe(0);
      expect(queue.delayedCount).toBe(0);
    });

    it('leaves keys backing off from other failures to their backoff', () => {
      const { clock, queue } = newQueue();
      queue.addRateLimited('ns/a');
      queue.addRateLimited('ns/a');

      expect(queue.expedite()).toBe(0);

      expect(queue.length).toBe(0);
      expect(queue.retries('ns/a')).toBe(2);
      clock.advance(10);
      expect(queue.length).toBe(1);
    });

    it('leaves alone a key whose expeditable retry was replaced by an earlier requeue', async () => {
      const { clock, queue } = newQueue();
      for (let i = 0; i < 4; i += 1) {
        queue.addRateLimited('ns/a', { expeditable: true });
        clock.advance(1_000);
        queue.done((await queue.get()) ?? '');
      }
      queue.addRateLimited('ns/a', { expeditable: true }); // the fifth failure: next try 80 ms away
      queue.addAfter('ns/a', 30); // earlier: the requeue wins

      expect(queue.expedite()).toBe(0);
      expect(queue.retries('ns/a')).toBe(5);
    });

    it('leaves a requeue asked for by a reconcile where it is', () => {
      const { queue } = newQueue();
      queue.addAfter('ns/a', 60_000);

      expect(queue.expedite()).toBe(0);

      expect(queue.length).toBe(0);
      expect(queue.delayedCount).toBe(1);
    });

    it('starts the backoff over for a key that was processing and fails on the cause that just ended', async () => {
      const { queue } = newQueue();
      queue.add('ns/a');
      expect(await queue.get()).toBe('ns/a');
      for (let i = 0; i < 11; i += 1) queue.addRateLimited('ns/a'); // failed often before this run

      queue.expedite(); // while ns/a runs
      const delayMs = queue.addRateLimited('ns/a', { expeditable: true });
      queue.done('ns/a');

      expect(delayMs).toBe(5);
    });

    it('does not carry an expedite over to a later run of the key', async () => {
      const { queue } = newQueue();
      queue.add('ns/a');
      await queue.get();
      queue.expedite();
      queue.done('ns/a'); // succeeded
      queue.add('ns/a');
      await queue.get();
      failedOften(queue, 'ns/a', 3);

      expect(queue.addRateLimited('ns/a', { expeditable: true })).toBe(40);
    });

    it('does nothing after shutDown', () => {
      const { queue } = newQueue();
      failedOften(queue, 'ns/a', 3);
      queue.shutDown();

      expect(queue.expedite()).toBe(0);
      expect(queue.length).toBe(0);
    });
  });

  it('answers undefined to waiting getters on shutDown', async () => {
    const { queue } = newQueue();
    const waiting = [queue.get(), queue.get()];

    queue.shutDown();

    expect(await Promise.all(waiting)).toEqual([undefined, undefined]);
  });

  it('hands out nothing after shutDown, not even keys queued before it', async () => {
    const { queue } = newQueue();
    queue.add('ns/a');

    queue.shutDown();
    queue.add('ns/b');

    await expect(queue.get()).resolves.toBeUndefined();
    expect(queue.length).toBe(0);
  });

  it('cancels pending delayed adds on shutDown', () => {
    const { clock, queue } = newQueue();
    queue.addAfter('ns/a', 1_000);
    queue.addRateLimited('ns/b');

    queue.shutDown();

    expect(clock.pendingTimers).toBe(0);
    expect(queue.delayedCount).toBe(0);
    queue.addAfter('ns/c', 1_000);
    expect(clock.pendingTimers).toBe(0);
  });

  it('drain() waits until every key handed out is done', async () => {
    const { queue } = newQueue();
    queue.add('ns/a');
    queue.add('ns/b');
    await queue.get();
    await queue.get();
    let drained = false;
    void queue.drain().then(() => (drained = true));

    queue.done('ns/a');
    await settle();
    expect(drained).toBe(false);

    queue.done('ns/b');
    await settle();
    expect(drained).toBe(true);
  });

  it('drain() stops handing out keys while in-flight ones finish', async () => {
    const { queue } = newQueue();
    queue.add('ns/a');
    queue.add('ns/b');
    await queue.get();

    const drained = queue.drain();
    queue.add('ns/a'); // a watch event during shutdown

    await expect(queue.get()).resolves.toBeUndefined();
    queue.done('ns/a');
    await drained;
    expect(queue.length).toBe(0);
  });

  it('drain() resolves at once when nothing is being processed', async () => {
    const { queue } = newQueue();
    queue.add('ns/a');

    await expect(queue.drain()).resolves.toBeUndefined();
  });

  it('reports the depth whenever it changes', async () => {
    const clock = new FakeClock();
    const depths: number[] = [];
    const queue = new WorkQueue({ clock, onDepthChange: (depth) => depths.push(depth) });
    queue.add('ns/a');
    queue.add('ns/b');
    queue.add('ns/a');

    await queue.get();

    expect(depths).toEqual([1, 2, 1]);
  });

  describe('fair across namespaces', () => {
    it('serves namespaces round-robin: one with a thousand queued keys gets one turn per round like one with a single key', async () => {
      const { queue } = newQueue();
      for (let index = 0; index < 1_000; index += 1) queue.add(`noisy/app-${index}`);
      queue.add('quiet/app');
      queue.add('other/app');

      const first = await Promise.all(Array.from({ length: 4 }, () => queue.get()));

      expect(first).toEqual(['noisy/app-0', 'quiet/app', 'other/app', 'noisy/app-1']);
    });

    it('keeps the order of keys within a namespace', async () => {
      const { queue } = newQueue();
      queue.add('a/1');
      queue.add('b/1');
      queue.add('a/2');
      queue.add('a/3');
      queue.add('b/2');

      expect(await takeAll(queue)).toEqual(['a/1', 'b/1', 'a/2', 'b/2', 'a/3']);
    });

    it('puts a namespace that runs empty and gets a key again at the back of the round', async () => {
      const { queue } = newQueue();
      queue.add('a/1');
      queue.add('a/2');
      queue.add('b/1');
      expect(await queue.get()).toBe('a/1');
      expect(await queue.get()).toBe('b/1');

      queue.add('c/1');
      queue.add('b/2');

      expect(await takeAll(queue)).toEqual(['a/2', 'c/1', 'b/2']);
    });

    it('queues a key added while it was processed at the back of its namespace, not ahead of other namespaces', async () => {
      const { queue } = newQueue();
      queue.add('noisy/a');
      expect(await queue.get()).toBe('noisy/a');
      queue.add('noisy/a');
      queue.add('noisy/b');
      queue.add('quiet/x');

      queue.done('noisy/a');

      expect(await takeAll(queue)).toEqual(['noisy/b', 'quiet/x', 'noisy/a']);
    });

    it('hands a waiting getter the key of whichever namespace comes first', async () => {
      const { queue } = newQueue();
      const waiting = queue.get();

      queue.add('quiet/x');

      await expect(waiting).resolves.toBe('quiet/x');
      expect(queue.length).toBe(0);
    });

    it('takes the flow of a key from fairnessKey when given', async () => {
      const clock = new FakeClock();
      const queue = new WorkQueue({ clock, fairnessKey: (key) => key.slice(0, 1) });
      for (const key of ['x1', 'x2', 'y1', 'x3', 'y2']) queue.add(key);

      expect(await takeAll(queue)).toEqual(['x1', 'y1', 'x2', 'y2', 'x3']);
    });

    it('counts the depth over all namespaces', async () => {
      const clock = new FakeClock();
      const depths: number[] = [];
      const queue = new WorkQueue({ clock, onDepthChange: (depth) => depths.push(depth) });
      queue.add('a/1');
      queue.add('b/1');
      queue.add('a/2');

      await queue.get();
      queue.shutDown();

      expect(depths).toEqual([1, 2, 3, 2, 0]);
      expect(namespaceOf('a/b')).toBe('a');
      expect(namespaceOf('cluster-scoped')).toBe('cluster-scoped');
    });
  });

  it('reports how long a key waited in the queue when it is handed out', async () => {
    const clock = new FakeClock();
    const latencies: number[] = [];
    const queue = new WorkQueue({ clock, onLatency: (seconds) => latencies.push(seconds) });
    queue.add('ns/a');

    clock.advance(1_500);
    await queue.get();

    expect(latencies).toEqual([1.5]);
  });

  it('counts an add only when the key was not already waiting, as client-go counts adds', async () => {
    let adds = 0;
    const queue = new WorkQueue({ clock: new FakeClock(), onAdd: () => (adds += 1) });
    queue.add('ns/a');
    queue.add('ns/a');
    queue.add('ns/b');
    expect(adds).toBe(2);

    expect(await queue.get()).toBe('ns/a');
    queue.add('ns/a'); // dirty while processing: counted, queued again by done()
    expect(adds).toBe(3);
  });

  it('counts each failure that schedules a key again', () => {
    let retries = 0;
    const queue = new WorkQueue({ clock: new FakeClock(), onRetry: () => (retries += 1) });
    queue.addRateLimited('ns/a');
    queue.addRateLimited('ns/a');
    expect(retries).toBe(2);
  });
});
