// A reconcile function whose calls the test finishes by hand, to control interleavings.
import type { Reconcile, ReconcileContext } from '../../../src/controller/runner.ts';
import type { ReconcileResult } from '../../../src/controller/result.ts';

export interface PendingCall {
  key: string;
  context: ReconcileContext;
  finish(result?: ReconcileResult): void;
  fail(error: unknown): void;
}

export interface ReconcileDouble {
  reconcile: Reconcile;
  /** Every call so far, in order. */
  calls: PendingCall[];
  /** Calls not yet finished or failed. */
  inFlight: Set<PendingCall>;
  /** The largest number of calls that were in flight at once. */
  maxInFlight(): number;
  /** Keys that were handed to a call while another call for the same key was in flight. */
  overlappingKeys: string[];
}

export function reconcileDouble(): ReconcileDouble {
  const calls: PendingCall[] = [];
  const inFlight = new Set<PendingCall>();
  const overlappingKeys: string[] = [];
  let max = 0;
  const reconcile: Reconcile = (key, context) =>
    new Promise((resolve, reject) => {
      if ([...inFlight].some((call) => call.key === key)) overlappingKeys.push(key);
      const call: PendingCall = {
        key,
        context,
        finish: (result = {}) => {
          inFlight.delete(call);
          resolve(result);
        },
        fail: (error) => {
          inFlight.delete(call);
          reject(error);
        },
      };
      calls.push(call);
      inFlight.add(call);
      max = Math.max(max, inFlight.size);
    });
  return { reconcile, calls, inFlight, maxInFlight: () => max, overlappingKeys };
}

/** Calls of `key`, in order. */
export const callsOf = (double: ReconcileDouble, key: string): PendingCall[] => double.calls.filter((call) => call.key === key);
