// Why an app is not where a command waits for it to be, in one line: its conditions that are not
// True, and the last failed token request.
import type { OAuthAppStatus } from '../api/oauthapp.ts';
import { formatFailure } from './format.ts';

export function describeProblems(status: OAuthAppStatus | undefined, now: number): string {
  const notTrue = (status?.conditions ?? []).filter((condition) => condition.status !== 'True');
  const parts = notTrue.map((condition) => `${condition.type}=${condition.status} (${condition.reason}): ${condition.message.replace(/\s*\n\s*/g, ' ')}`);
  if (status?.lastFailure) parts.push(`last failure: ${formatFailure(status.lastFailure, now)}`);
  if (status?.conditions === undefined) parts.push('the app has no status yet: is the operator running and watching this namespace?');
  return parts.join('; ') || 'no condition is False';
}
