import { describe, expect, it } from '@jest/globals';
import { createKeyedLimiter } from '../../../src/controller/limiter.ts';
import { settle } from './fake-clock.ts';

interface Gate {
  promise: Promise<string>;
  open(value?: string): void;
  fail(error: Error): void;
}

function gate(): Gate {
  let open!: (value: string) => void;
  let fail!: (error: Error) => void;
  const promise = new Promise<string>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open: (value = 'ok') => open(value), fail };
}

describe('keyed concurrency limiter', () => {
  it('runs at most maxConcurrent functions of one key at once', async () => {
    const limiter = createKeyedLimiter(2);
    const gates = [gate(), gate(), gate()];
    const started: number[] = [];

    gates.forEach((g, index) =>
      void limiter.run('pipedrive', () => {
        started.push(index);
        return g.promise;
      }),
    );
    await settle();

    expect(started).toEqual([0, 1]);
    expect([limiter.active('pipedrive'), limiter.waiting('pipedrive')]).toEqual([2, 1]);
  });

  it('does not limit one key by the runs of another', async () => {
    const limiter = createKeyedLimiter(1);
    const started: string[] = [];

    void limiter.run('pipedrive', () => {
      started.push('pipedrive');
      return gate().promise;
    });
    void limiter.run('custom', () => {
      started.push('custom');
      return gate().promise;
    });
    await settle();

    expect(started).toEqual(['pipedrive', 'custom']);
  });

  it('starts waiting runs in the order they arrived', async () => {
    const limiter = createKeyedLimiter(1);
    const first = gate();
    const started: number[] = [];
    void limiter.run('pipedrive', () => first.promise);
    for (const index of [1, 2, 3]) {
      void limiter.run('pipedrive', async () => {
        started.push(index);
        return 'ok';
      });
    }

    first.open();
    await settle();

    expect(started).toEqual([1, 2, 3]);
  });

  it('lets no newcomer overtake a waiting run when a slot frees up', async () => {
    const limiter = createKeyedLimiter(1);
    const first = gate();
    const started: string[] = [];
    void limiter.run('pipedrive', () => first.promise);
    void limiter.run('pipedrive', async () => {
      started.push('waiting');
      return 'ok';
    });

    first.open();
    void limiter.run('pipedrive', async () => {
      started.push('newcomer');
      return 'ok';
    });
    await settle();

    expect(started).toEqual(['waiting', 'newcomer']);
  });

  it('answers what the function answers', async () => {
    const limiter = createKeyedLimiter(1);

    await expect(limiter.run('pipedrive', async () => 42)).resolves.toBe(42);
  });

  it('passes on a rejection and frees the slot', async () => {
    const limiter = createKeyedLimiter(1);
    const failing = gate();
    const running = limiter.run('pipedrive', () => failing.promise);
    const next = limiter.run('pipedrive', async () => 'next');

    failing.fail(new Error('503'));

    await expect(running).rejects.toThrow('503');
    await expect(next).resolves.toBe('next');
    expect(limiter.active('pipedrive')).toBe(0);
  });

  it('frees the slot when the function throws before returning a promise', async () => {
    const limiter = createKeyedLimiter(1);

    await expect(
      limiter.run('pipedrive', () => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    expect(limiter.active('pipedrive')).toBe(0);
    await expect(limiter.run('pipedrive', async () => 'after')).resolves.toBe('after');
  });

  it('reports nothing active or waiting for a key never used', () => {
    const limiter = createKeyedLimiter(3);

    expect([limiter.active('none'), limiter.waiting('none')]).toEqual([0, 0]);
  });

  it('refuses a limit below 1', () => {
    expect(() => createKeyedLimiter(0)).toThrow(RangeError);
  });
});

describe('keyed concurrency limiter, without waiting (tryAcquire)', () => {
  const wakes = () => {
    const woken: string[] = [];
    return { woken, wake: (waiter: string) => woken.push(waiter) };
  };

  it('gives a slot while fewer than the limit are held, and none after that', () => {
    const limiter = createKeyedLimiter(2);

    const slots = ['ns/a', 'ns/b', 'ns/c'].map((waiter) => limiter.tryAcquire('slow.example', waiter));

    expect(slots.map((slot) => slot !== undefined)).toEqual([true, true, false]);
    expect([limiter.active('slow.example'), limiter.parked('slow.example')]).toEqual([2, 1]);
  });

  it('never waits: a full key answers at once, and another key is not affected', () => {
    const limiter = createKeyedLimiter(1);
    limiter.tryAcquire('slow.example', 'ns/a');

    expect(limiter.tryAcquire('slow.example', 'ns/b')).toBeUndefined();
    expect(limiter.tryAcquire('fast.example', 'other/c')).toBeDefined();
  });

  it('wakes the parked waiters in the order they parked, one per freed slot', () => {
    const { woken, wake } = wakes();
    const limiter = createKeyedLimiter(2, { wake });
    const held = [limiter.tryAcquire('slow.example', 'ns/a'), limiter.tryAcquire('slow.example', 'ns/b')];
    for (const waiter of ['ns/c', 'ns/d', 'ns/e']) limiter.tryAcquire('slow.example', waiter);

    held[0]?.release();
    expect(woken).toEqual(['ns/c']);
    held[1]?.release();
    expect(woken).toEqual(['ns/c', 'ns/d']);
    expect(limiter.parked('slow.example')).toBe(1);
  });

  it('parks a waiter once however often it asks', () => {
    const { woken, wake } = wakes();
    const limiter = createKeyedLimiter(1, { wake });
    const held = limiter.tryAcquire('slow.example', 'ns/a');
    limiter.tryAcquire('slow.example', 'ns/b');
    limiter.tryAcquire('slow.example', 'ns/b');

    expect(limiter.parked('slow.example')).toBe(1);
    held?.release();
    expect(woken).toEqual(['ns/b']);
  });

  it('gives the woken waiter the freed slot when it asks again', () => {
    const { wake } = wakes();
    const limiter = createKeyedLimiter(1, { wake });
    limiter.tryAcquire('slow.example', 'ns/a')?.release();
    const held = limiter.tryAcquire('slow.example', 'ns/a');
    limiter.tryAcquire('slow.example', 'ns/b');

    held?.release();

    expect(limiter.tryAcquire('slow.example', 'ns/b')).toBeDefined();
    expect([limiter.active('slow.example'), limiter.parked('slow.example')]).toEqual([1, 0]);
  });

  it('does not keep a freed slot idle for a woken waiter: whoever asks first takes it, the woken one parks again', () => {
    const { woken, wake } = wakes();
    const limiter = createKeyedLimiter(1, { wake });
    const held = limiter.tryAcquire('slow.example', 'ns/a');
    limiter.tryAcquire('slow.example', 'ns/b');
    held?.release();
    expect(woken).toEqual(['ns/b']);

    const newcomer = limiter.tryAcquire('slow.example', 'ns/c');
    expect(newcomer).toBeDefined();
    expect(limiter.tryAcquire('slow.example', 'ns/b')).toBeUndefined();

    newcomer?.release();
    expect(woken).toEqual(['ns/b', 'ns/b']);
  });

  /** One slot on slow.example: ns/a held it, ns/b and ns/c parked, and ns/a's release woke ns/b. */
  const secondOfThreeWoken = () => {
    const { woken, wake } = wakes();
    const limiter = createKeyedLimiter(1, { wake });
    const held = limiter.tryAcquire('slow.example', 'ns/a');
    limiter.tryAcquire('slow.example', 'ns/b');
    limiter.tryAcquire('slow.example', 'ns/c');
    held?.release();
    expect(woken).toEqual(['ns/b']);
    return { limiter, woken };
  };

  it('passes the wake of a waiter that wants no slot any more (dismiss) to the next one', () => {
    const { limiter, woken } = secondOfThreeWoken();

    limiter.dismiss('ns/b');

    expect(woken).toEqual(['ns/b', 'ns/c']);
    expect(limiter.tryAcquire('slow.example', 'ns/c')).toBeDefined();
  });

  it('passes the wake of a waiter that comes back for another provider (its app changed provider) to the next one', () => {
    const { limiter, woken } = secondOfThreeWoken();

    expect(limiter.tryAcquire('other.example', 'ns/b')).toBeDefined();

    expect(woken).toEqual(['ns/b', 'ns/c']);
    expect(limiter.tryAcquire('slow.example', 'ns/c')).toBeDefined();
  });

  it('ignores dismiss of a waiter that was not woken, or already came back', () => {
    const { woken, wake } = wakes();
    const limiter = createKeyedLimiter(1, { wake });
    const held = limiter.tryAcquire('slow.example', 'ns/a');
    limiter.tryAcquire('slow.example', 'ns/b');

    limiter.dismiss('ns/b');
    limiter.dismiss('ns/z');

    expect(woken).toEqual([]);
    expect(limiter.parked('slow.example')).toBe(1);
    held?.release();
    expect(woken).toEqual(['ns/b']);
  });

  it('wakes no more waiters than there are free slots nobody woken is on the way to', () => {
    const { woken, wake } = wakes();
    const limiter = createKeyedLimiter(2, { wake });
    const held = [limiter.tryAcquire('slow.example', 'ns/a'), limiter.tryAcquire('slow.example', 'ns/b')];
    for (const waiter of ['ns/c', 'ns/d', 'ns/e']) limiter.tryAcquire('slow.example', waiter);

    held[0]?.release();
    held[1]?.release();
    held[0]?.release(); // a second release of one slot frees nothing

    expect(woken).toEqual(['ns/c', 'ns/d']);
    expect(limiter.active('slow.example')).toBe(0);
  });

  it('hands a freed slot to a waiting run before waking a parked waiter', async () => {
    const { woken, wake } = wakes();
    const limiter = createKeyedLimiter(1, { wake });
    const held = limiter.tryAcquire('slow.example', 'ns/a');
    limiter.tryAcquire('slow.example', 'ns/b');
    const started: string[] = [];
    const exchange = gate();
    void limiter.run('slow.example', () => {
      started.push('code exchange');
      return exchange.promise;
    });

    held?.release();
    await settle();
    expect([started, woken]).toEqual([['code exchange'], []]);
    expect(limiter.tryAcquire('slow.example', 'ns/c')).toBeUndefined();

    exchange.open();
    await settle();
    expect(woken).toEqual(['ns/b']);
  });

  it('counts tryAcquire slots and runs against one limit', async () => {
    const limiter = createKeyedLimiter(2);
    limiter.tryAcquire('slow.example', 'ns/a');
    const started: string[] = [];
    const first = gate();
    void limiter.run('slow.example', () => {
      started.push('run 1');
      return first.promise;
    });
    void limiter.run('slow.example', async () => {
      started.push('run 2');
      return 'ok';
    });
    await settle();

    expect(started).toEqual(['run 1']);
    expect(limiter.tryAcquire('slow.example', 'ns/b')).toBeUndefined();
  });

  it('forgets a key once nothing holds, waits or is parked on it', () => {
    const { wake } = wakes();
    const limiter = createKeyedLimiter(1, { wake });
    const held = limiter.tryAcquire('slow.example', 'ns/a');
    limiter.tryAcquire('slow.example', 'ns/b');
    held?.release();
    limiter.tryAcquire('slow.example', 'ns/b')?.release();

    expect([limiter.active('slow.example'), limiter.waiting('slow.example'), limiter.parked('slow.example')]).toEqual([0, 0, 0]);
  });
});
