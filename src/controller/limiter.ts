// At most N concurrent holders of a slot per key (e.g. token requests per provider), taken in one
// of two ways:
// - `run(key, fn)` waits for a slot where it is (the OAuth callback's code exchange: a person is
//   waiting on that request anyway). Waiting runs are served in arrival order, and a freed slot
//   goes straight to the next of them, so nobody overtakes those already waiting.
// - `tryAcquire(key, waiter)` never waits (a reconcile: a worker must not sit behind a slow
//   provider, or one tenant's provider stalls every other tenant). With no slot free, `waiter` is
//   parked, and once a slot frees up and no run is waiting, the limiter wakes the first parked
//   waiter (the `wake` option, e.g. "put this app's key back on the work queue"), which then tries
//   again. A woken waiter has no reservation: whoever asks first while a slot is free gets it, so
//   a slot never stays idle while a backed-up work queue carries the woken key to a worker; a woken
//   waiter that loses the race is parked again. `dismiss(waiter)` says a woken waiter no longer
//   wants a slot (its reconcile ended without asking), so its wake passes to the next one.
import { Fifo } from './fifo.ts';

/** A slot held; `release` frees it (idempotent). */
export interface Slot {
  release(): void;
}

export interface KeyedLimiter {
  /** Runs `fn` once fewer than the limit of slots for `key` are held; frees the slot however it ends. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T>;
  /** A slot for `key` if one is free now; otherwise parks `waiter` to be woken when one frees up. */
  tryAcquire(key: string, waiter: string): Slot | undefined;
  /** `waiter`, if woken and not back yet, wants no slot now: the next parked waiter is woken instead. */
  dismiss(waiter: string): void;
  /** Slots of `key` held. */
  active(key: string): number;
  /** Runs of `key` waiting for a slot. */
  waiting(key: string): number;
  /** Waiters parked on `key` (not counting those woken and not back yet). */
  parked(key: string): number;
}

export interface KeyedLimiterOptions {
  /** Called when a parked waiter should try again (a slot it may take has freed up). */
  wake?: (waiter: string) => void;
}

interface Slots {
  active: number;
  runs: Fifo<() => void>;
  /** Parked waiters in the order they parked (a Set keeps insertion order). */
  parked: Set<string>;
  /** Waiters woken for a freed slot that have not asked again yet. */
  woken: Set<string>;
}

export function createKeyedLimiter(maxConcurrent: number, options: KeyedLimiterOptions = {}): KeyedLimiter {
  if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) {
    throw new RangeError(`maxConcurrent must be a positive integer, got ${maxConcurrent}`);
  }
  const wake = options.wake ?? (() => undefined);
  // Only keys with holders or waiters have an entry, so the map does not grow with every key seen.
  const byKey = new Map<string, Slots>();
  /** The key each woken waiter was woken for. */
  const wokenFor = new Map<string, string>();

  const slotsOf = (key: string): Slots => {
    let slots = byKey.get(key);
    if (slots === undefined) {
      slots = { active: 0, runs: new Fifo(), parked: new Set(), woken: new Set() };
      byKey.set(key, slots);
    }
    return slots;
  };

  const forgetIfIdle = (key: string, slots: Slots) => {
    if (slots.active === 0 && slots.runs.length === 0 && slots.parked.size === 0 && slots.woken.size === 0) byKey.delete(key);
  };

  /** No longer woken (it asked again, or was dismissed). */
  const unwake = (waiter: string) => {
    const key = wokenFor.get(waiter);
    if (key === undefined) return;
    wokenFor.delete(waiter);
    byKey.get(key)?.woken.delete(waiter);
  };

  /** Wakes parked waiters while there are free slots nobody woken is on the way to. */
  const wakeParked = (key: string, slots: Slots) => {
    while (slots.parked.size > 0 && slots.active + slots.woken.size < maxConcurrent) {
      const waiter = slots.parked.values().next().value;
      if (waiter === undefined) break;
      slots.parked.delete(waiter);
      slots.woken.add(waiter);
      wokenFor.set(waiter, key);
      wake(waiter);
    }
  };

  /** A wake for `key` that was not used: the next parked waiter gets it. */
  const passWake = (key: string) => {
    const slots = byKey.get(key);
    if (slots === undefined) return;
    wakeParked(key, slots);
    forgetIfIdle(key, slots);
  };

  const release = (key: string): void => {
    const slots = byKey.get(key);
    if (slots === undefined) return;
    const next = slots.runs.shift();
    if (next !== undefined) return next(); // the slot passes on; `active` stays the same
    slots.active -= 1;
    wakeParked(key, slots);
    forgetIfIdle(key, slots);
  };

  const slot = (key: string): Slot => {
    let released = false;
    return {
      release() {
        if (released) return;
        released = true;
        release(key);
      },
    };
  };

  return {
    async run(key, fn) {
      const slots = slotsOf(key);
      if (slots.active < maxConcurrent) slots.active += 1;
      else await new Promise<void>((resolve) => slots.runs.push(resolve));
      try {
        return await fn();
      } finally {
        release(key);
      }
    },
    tryAcquire(key, waiter) {
      // Woken for another key (its provider changed meanwhile): that key's wake goes to its next waiter.
      const wokenKey = wokenFor.get(waiter);
      unwake(waiter);
      if (wokenKey !== undefined && wokenKey !== key) passWake(wokenKey);
      const slots = slotsOf(key);
      // A waiting run implies every slot is held (a freed slot goes to it directly).
      if (slots.active < maxConcurrent) {
        slots.active += 1;
        slots.parked.delete(waiter);
        return slot(key);
      }
      slots.parked.add(waiter);
      return undefined;
    },
    dismiss(waiter) {
      const key = wokenFor.get(waiter);
      if (key === undefined) return;
      unwake(waiter);
      passWake(key);
    },
    active: (key) => byKey.get(key)?.active ?? 0,
    waiting: (key) => byKey.get(key)?.runs.length ?? 0,
    parked: (key) => byKey.get(key)?.parked.size ?? 0,
  };
}
