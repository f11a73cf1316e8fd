// At most N concurrent runs per key (e.g. token requests per provider), waiting runs served in
// arrival order. A finished run hands its slot straight to the next waiter, so a newcomer cannot
// overtake those already waiting.
import { Fifo } from './fifo.ts';

export interface KeyedLimiter {
  /** Runs `fn` once fewer than the limit of runs for `key` are active; frees the slot however it ends. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T>;
  /** Runs of `key` in progress. */
  active(key: string): number;
  /** Runs of `key` waiting for a slot. */
  waiting(key: string): number;
}

interface Slots {
  active: number;
  waiters: Fifo<() => void>;
}

export function createKeyedLimiter(maxConcurrent: number): KeyedLimiter {
  if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) {
    throw new RangeError(`maxConcurrent must be a positive integer, got ${maxConcurrent}`);
  }
  // Only keys with active runs have an entry, so the map does not grow with every key ever seen.
  const byKey = new Map<string, Slots>();

  const acquire = (key: string): Promise<void> | undefined => {
    let slots = byKey.get(key);
    if (slots === undefined) {
      slots = { active: 0, waiters: new Fifo() };
      byKey.set(key, slots);
    }
    if (slots.active < maxConcurrent) {
      slots.active += 1;
      return undefined;
    }
    const { waiters } = slots;
    return new Promise((resolve) => waiters.push(resolve));
  };

  const release = (key: string): void => {
    const slots = byKey.get(key);
    if (slots === undefined) return;
    const next = slots.waiters.shift();
    if (next !== undefined) next(); // the slot passes on; `active` stays the same
    else if (--slots.active === 0) byKey.delete(key);
  };

  return {
    async run(key, fn) {
      const waiting = acquire(key);
      if (waiting !== undefined) await waiting;
      try {
        return await fn();
      } finally {
        release(key);
      }
    },
    active: (key) => byKey.get(key)?.active ?? 0,
    waiting: (key) => byKey.get(key)?.waiters.length ?? 0,
  };
}
