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
