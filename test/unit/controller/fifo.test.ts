import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { Fifo } from '../../../src/controller/fifo.ts';

describe('Fifo', () => {
  it('keeps order when it compacts its storage under a long run of pushes and shifts', () => {
    const fifo = new Fifo<number>();
    for (let i = 0; i < 3_000; i += 1) fifo.push(i);
    const shifted: (number | undefined)[] = [];
    for (let i = 0; i < 2_000; i += 1) shifted.push(fifo.shift());
    for (let i = 3_000; i < 4_000; i += 1) fifo.push(i);
    while (fifo.length > 0) shifted.push(fifo.shift());

    expect(shifted).toEqual(Array.from({ length: 4_000 }, (_, i) => i));
    expect(fifo.shift()).toBeUndefined();
  });

  it('behaves like an array used as a queue', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer(), fc.constant('shift' as const)), { maxLength: 5_000 }), (operations) => {
        const fifo = new Fifo<number>();
        const model: number[] = [];
        for (const operation of operations) {
          if (operation === 'shift') expect(fifo.shift()).toBe(model.shift());
          else {
            fifo.push(operation);
            model.push(operation);
          }
          expect(fifo.length).toBe(model.length);
        }
      }),
      { numRuns: 50 },
    );
  });
});
