// Workers that take keys from a WorkQueue and reconcile them, turning each answer into the next
// queue action as controller-runtime does:
//   {}                      → forget the key's backoff
//   { requeueAfterMs }      → forget, then add the key again after that long
//   throw TerminalError     → forget, log, no retry
//   throw anything else     → add the key again with its exponential backoff (5 ms → 1000 s),
//                             cut short by `queue.expedite()` if `isExpeditable(error)`
// and always `done(key)`, so a key added meanwhile is picked up again.
import { randomUUID } from 'node:crypto';
import { systemClock, type Clock } from './clock.ts';
import { isTerminalError } from './errors.ts';
import type { ReconcileResult } from './result.ts';
import type { WorkQueue } from './work-queue.ts';

export interface ReconcileContext {
  /** Fresh for every call, to tie together the log lines of one reconcile. */
  reconcileId: string;
}

export type Reconcile = (key: string, context: ReconcileContext) => Promise<ReconcileResult>;

export type ReconcileOutcome = 'success' | 'error' | 'requeue';

/** The part of pino's Logger the runner uses. */
export interface RunnerLogger {
  info(object: Record<string, unknown>, message: string): void;
  error(object: Record<string, unknown>, message: string): void;
  debug(object: Record<string, unknown>, message: string): void;
}

export interface RunWorkersOptions {
  queue: WorkQueue;
  reconcile: Reconcile;
  /** Reconciles running at once, each on a different key. */
  concurrency: number;
  logger?: RunnerLogger;
  /** Failures whose cause may end before their backoff does (an apiserver out of reach). */
  isExpeditable?: (error: unknown) => boolean;
  /** Called after each reconcile with its outcome and duration (for a histogram). */
  onReconcile?: (outcome: ReconcileOutcome, seconds: number) => void;
  /** Measures reconcile durations; default the system clock. */
  clock?: Clock;
  /** Default: crypto.randomUUID. */
  newReconcileId?: () => string;
}

export interface Workers {
  /** Resolves once the queue is shut down and every worker has finished its reconcile. */
  stopped: Promise<void>;
}

const silent: RunnerLogger = { info() {}, error() {}, debug() {} };

export function runWorkers(options: RunWorkersOptions): Workers {
  const { concurrency } = options;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  }
  const worker = async () => {
    for (let key = await options.queue.get(); key !== undefined; key = await options.queue.get()) {
      try {
        await processKey(options, key);
      } catch {
        // Only a throwing logger or onReconcile hook gets here (done(key) has run); it must not
        // cost the controller a worker.
      }
    }
  };
  const logger = options.logger ?? silent;
  logger.info({ concurrency }, 'workers started');
  const workers = Array.from({ length: concurrency }, worker);
  return {
    stopped: Promise.all(workers).then(() => {
      logger.info({ concurrency }, 'workers stopped');
    }),
  };
}

async function processKey(options: RunWorkersOptions, key: string): Promise<void> {
  const { queue, reconcile, logger = silent, onReconcile, isExpeditable, clock = systemClock, newReconcileId = randomUUID } = options;
  const reconcileId = newReconcileId();
  const fields = { key, reconcileId };
  const startedAt = clock.now();
  let outcome: ReconcileOutcome = 'error';
  try {
    let result: ReconcileResult;
    try {
      result = await reconcile(key, { reconcileId });
    } catch (error) {
      const failure = describeError(error);
      if (isTerminalError(error)) {
        queue.forget(key);
        logger.error({ ...fields, ...failure }, 'reconcile failed, not retrying');
      } else {
        const retryInMs = queue.addRateLimited(key, { expeditable: isExpeditable?.(error) ?? false });
        logger.error({ ...fields, ...failure, retries: queue.retries(key), retryInMs }, 'reconcile failed, retrying');
      }
      return;
    }
    queue.forget(key);
    const { requeueAfterMs, reason } = result;
    if (requeueAfterMs === undefined) {
      outcome = 'success';
      logger.debug(fields, 'reconciled');
    } else if (Number.isFinite(requeueAfterMs) && requeueAfterMs >= 0) {
      queue.addAfter(key, requeueAfterMs);
      outcome = 'requeue';
      logger.debug({ ...fields, requeueAfterMs, reason }, 'reconciled, requeued');
    } else {
      // A bug in the reconciler; retrying with backoff beats both a hot loop and never again.
      const retryInMs = queue.addRateLimited(key);
      logger.error({ ...fields, requeueAfterMs, retryInMs }, 'reconcile answered an invalid requeueAfterMs, retrying');
    }
  } finally {
    queue.done(key);
    onReconcile?.(outcome, Math.max(0, clock.now() - startedAt) / 1000);
  }
}

/** The message and code only: an error object may carry request or response details. */
function describeError(error: unknown): { error: string; code?: string } {
  const message = error instanceof Error ? error.message : String(error);
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  return typeof code === 'string' ? { error: message, code } : { error: message };
}
