/**
 * What a reconcile answers (controller-runtime's reconcile.Result). `{}`: done until something
 * changes. `requeueAfterMs`: reconcile this key again after that long (0: as soon as possible),
 * e.g. when a token is due for refresh. Failures are thrown, not returned: a thrown error retries
 * with per-key backoff, a thrown TerminalError does not retry.
 */
export interface ReconcileResult {
  requeueAfterMs?: number;
  /** Why a requeue is asked for, for logs ("token due for refresh"). Never a secret. */
  reason?: string;
}
