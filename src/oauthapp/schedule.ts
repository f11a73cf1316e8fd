// When to refresh: from the token's own lifetime, never a fixed interval.

export interface ScheduleInput {
  issuedAt: number;
  expiresAt: number;
  /** spec.renewBefore; default (and fallback when it is not shorter than the lifetime): a third. */
  renewBeforeMs?: number;
  /** Uniform in [0, 1). */
  random: () => number;
  /** Picks a time in [earliest, latest] (e.g. the least busy second); default: uniform random. */
  pick?: (earliest: number, latest: number) => number;
}

/** Share of the time between issue and the renewal point over which refreshes are spread. */
export const jitterShare = 0.1;

export function effectiveRenewBefore(lifetimeMs: number, renewBeforeMs: number | undefined): number {
  if (renewBeforeMs !== undefined && renewBeforeMs > 0 && renewBeforeMs < lifetimeMs) return renewBeforeMs;
  return lifetimeMs / 3;
}

/**
 * The renewal point is `expiresAt - renewBefore`; the refresh happens at a random moment in the
 * last `jitterShare` of the time before it, so apps issued together do not refresh together and
 * none refreshes later than its margin allows.
 */
export function refreshTime({ issuedAt, expiresAt, renewBeforeMs, random, pick }: ScheduleInput): number {
  const lifetime = Math.max(0, expiresAt - issuedAt);
  const renewalPoint = expiresAt - effectiveRenewBefore(lifetime, renewBeforeMs);
  const jitterWindow = jitterShare * Math.max(0, renewalPoint - issuedAt);
  if (pick) return Math.min(renewalPoint, Math.max(renewalPoint - jitterWindow, pick(renewalPoint - jitterWindow, renewalPoint)));
  return renewalPoint - random() * jitterWindow;
}
