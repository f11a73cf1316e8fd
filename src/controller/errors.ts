// Errors the controller machinery branches on, with stable codes (STYLE: got, fastify).

export type ControllerErrorCode = 'TERMINAL' | 'NOT_LEADING';

/**
 * Thrown by a reconcile to say "retrying will not help" (controller-runtime's TerminalError):
 * the runner logs it and forgets the key's backoff instead of requeueing. The key is reconciled
 * again only when something adds it anew (a watch event, a requeue scheduled earlier).
 */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
  readonly code: ControllerErrorCode = 'TERMINAL';

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * This replica lost its Lease while a reconcile ran: the reconcile stops before its next write
 * (another replica now owns the app). Its queue is shut down, so nothing retries it here.
 */
export class NotLeadingError extends Error {
  override readonly name = 'NotLeadingError';
  readonly code: ControllerErrorCode = 'NOT_LEADING';

  constructor() {
    super('this replica no longer leads: stopped before writing');
  }
}

/** Wraps `cause` as terminal, keeping its message. */
export function terminal(cause: unknown): TerminalError {
  return new TerminalError(cause instanceof Error ? cause.message : String(cause), { cause });
}

/** True if `error`, or an error in its `cause` chain, is a TerminalError (as Go's errors.Is). */
export function isTerminalError(error: unknown): boolean {
  let current = error;
  for (let depth = 0; depth < 16 && current instanceof Error; depth += 1) {
    if (current instanceof TerminalError) return true;
    current = current.cause;
  }
  return false;
}
