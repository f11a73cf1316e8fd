// What one reconcile tells the metrics about an app: the conditions it wrote and the token's
// schedule, all as the status shows them (times in milliseconds since the epoch).
import type { ConditionInput } from '../api/conditions.ts';
import { parseDurationMs } from '../api/fields.ts';
import { effectiveRenewBefore } from './schedule.ts';
import type { AppState } from './state.ts';
import type { DerivedStatus } from './status.ts';

export interface AppObservation {
  conditions: readonly Pick<ConditionInput, 'type' | 'status' | 'reason'>[];
  accessTokenExpiresAt?: number | undefined;
  /** status.nextRefreshTime: absent while a person must act. */
  nextRefreshAt?: number | undefined;
  /** How long before expiry the current token is due for refresh, as its schedule was made. */
  renewBeforeMs?: number | undefined;
}

export function observation(status: DerivedStatus, { tokens, record }: AppState, renewBefore: string | undefined): AppObservation {
  const expiresAt = tokens ? Date.parse(tokens.expiresAt) : undefined;
  const issuedAt = record.issuedAt === undefined ? undefined : Date.parse(record.issuedAt);
  const { nextRefreshTime } = status.fields;
  return {
    conditions: status.conditions,
    accessTokenExpiresAt: expiresAt,
    nextRefreshAt: nextRefreshTime === undefined ? undefined : Date.parse(nextRefreshTime),
    renewBeforeMs:
      expiresAt === undefined || issuedAt === undefined
        ? undefined
        : effectiveRenewBefore(expiresAt - issuedAt, renewBefore === undefined ? undefined : parseDurationMs(renewBefore)),
  };
}
