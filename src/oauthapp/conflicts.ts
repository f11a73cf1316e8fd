// A write refused with 409 Conflict means the cache had not caught up with another write (ours,
// when its answer was lost, or another replica's) — not that the apiserver is failing. Such a
// reconcile is retried shortly, once the watch has had time to deliver that write, instead of
// through the per-key failure backoff: under a burst of conflicts that backoff grows past the
// burst by many seconds, and the user's change behind it waits that long after the cluster is calm.
import type { ReconcileResult } from '../controller/result.ts';
import { isConflict, KubeAPIError } from '../kube/errors.ts';

/** About a watch event's delay on a busy apiserver, with jitter so replicas do not retry in step. */
const conflictRetryMs = (random: () => number) => 250 + Math.round(random() * 500);

export function requeueOnConflict<A extends unknown[]>(
  reconcile: (...args: A) => Promise<ReconcileResult>,
  random: () => number = Math.random,
): (...args: A) => Promise<ReconcileResult> {
  return async (...args) => {
    try {
      return await reconcile(...args);
    } catch (error) {
      if (!isConflict(error)) throw error;
      // Which write, for whoever reads the (debug) log: "PUT /api/v1/…/secrets/oauthapp-state-…".
      const write = error instanceof KubeAPIError ? ` (${error.method} ${error.path})` : '';
      return { requeueAfterMs: conflictRetryMs(random), reason: `a write conflicted${write}: the cache was behind` };
    }
  };
}
