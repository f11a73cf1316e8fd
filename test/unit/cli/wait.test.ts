// pollUntil: until a value, until the time is up, through transient apiserver failures only.
import { describe, expect, it } from '@jest/globals';
import { CliError } from '../../../src/cli/errors.ts';
import { pollUntil } from '../../../src/cli/wait.ts';

function clock() {
  let now = 0;
  return { now: () => now, sleep: async (ms: number) => void (now += ms) };
}

describe('pollUntil', () => {
  it('returns the first value, reading again every interval', async () => {
    const time = clock();
    let calls = 0;
    expect(await pollUntil(async () => (++calls === 3 ? 'done' : undefined), { timeoutMs: 10_000, intervalMs: 1_000, clock: time })).toBe('done');
    expect(time.now()).toBe(2_000);
  });

  it('returns undefined when the time is up, never sleeping past it', async () => {
    const time = clock();
    expect(await pollUntil(async () => undefined, { timeoutMs: 2_500, intervalMs: 1_000, clock: time })).toBeUndefined();
    expect(time.now()).toBe(2_500);
  });

  it('reads through a transient failure, but throws any other at once', async () => {
    const time = clock();
    const answers = [new CliError('apiserver out of reach', { transient: true }), 'value'];
    expect(
      await pollUntil(
        async () => {
          const next = answers.shift();
          if (next instanceof Error) throw next;
          return next;
        },
        { timeoutMs: 5_000, intervalMs: 1_000, clock: time },
      ),
    ).toBe('value');
    await expect(pollUntil(async () => Promise.reject(new CliError('not found')), { timeoutMs: 5_000, intervalMs: 1_000, clock: clock() })).rejects.toThrow('not found');
  });

  it('throws the transient failure if it is still the last word when the time is up', async () => {
    await expect(pollUntil(async () => Promise.reject(new CliError('out of reach', { transient: true })), { timeoutMs: 3_000, intervalMs: 1_000, clock: clock() })).rejects.toThrow('out of reach');
  });
});
