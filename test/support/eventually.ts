import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls until `probe` returns a value (not undefined) or throws no more; fails with the last
 * problem after `timeoutMs`. For waiting on a real system, not for asserting how fast it is.
 */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let problem: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
      problem = undefined;
    } catch (error) {
      problem = error;
    }
    if (Date.now() > deadline) {
      const detail = problem instanceof Error ? `: ${problem.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(intervalMs);
  }
}
