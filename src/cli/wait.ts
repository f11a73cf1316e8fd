// Waiting for the operator: the app is read again every interval until a probe is satisfied or
// the time is up. Polling, not a watch: one GET a second is nothing for the apiserver, and a
// dropped watch would need the same re-read anyway.
import { CliError } from './errors.ts';

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export interface PollOptions {
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly clock: Clock;
}

/**
 * The probe's first value that is not undefined, or undefined when `timeoutMs` ran out. A probe
 * that throws ends the wait, unless its error is a transient CliError (the apiserver was out of
 * reach for a moment): that one is thrown only if it is still the last word when time is up.
 */
export async function pollUntil<T>(probe: () => Promise<T | undefined>, { timeoutMs, intervalMs, clock }: PollOptions): Promise<T | undefined> {
  const deadline = clock.now() + timeoutMs;
  for (;;) {
    let lastError: unknown;
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      if (!(error instanceof CliError && error.transient)) throw error;
      lastError = error;
    }
    const left = deadline - clock.now();
    if (left <= 0) {
      if (lastError !== undefined) throw lastError;
      return undefined;
    }
    await clock.sleep(Math.min(intervalMs, left));
  }
}
