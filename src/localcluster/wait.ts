import { setTimeout as sleep } from 'node:timers/promises';

export class WaitTimeoutError extends Error {
  readonly code = 'WAIT_TIMEOUT';
  constructor(what: string, timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}

/** Polls `check` until it returns true; for process start-up, where there is nothing to watch. */
export async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new WaitTimeoutError(what, timeoutMs);
    await sleep(intervalMs);
  }
}
