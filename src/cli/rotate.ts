// kubectl oauthapp rotate NAME: ask for a refresh now (the oauthapp.dev/rotate annotation) and
// wait until the operator acted on exactly that request.
import type { OAuthAppStatus } from '../api/oauthapp.ts';
import { rotateAnnotation } from '../oauthapp/labels.ts';
import type { AppView } from './cluster.ts';
import { appRef, type CommandContext } from './context.ts';
import { CliError } from './errors.ts';
import { conditionOf, shortDuration, timeWithDistance } from './format.ts';
import { describeProblems } from './problems.ts';
import { pollUntil } from './wait.ts';

export type RotateOutcome = 'pending' | 'refreshed' | 'retrying' | 'stuck';

/**
 * Where the operator is with rotate request `value`. It writes status.lastRotateRequest together
 * with the outcome of the refresh it claimed for it, so once that echoes `value`: Ready=True and no
 * lastFailure (which a success clears) is a new token; a failure with a retry scheduled
 * (nextRefreshTime) may still come right; without one, a person must act.
 */
export function rotateOutcome(status: OAuthAppStatus | undefined, value: string): RotateOutcome {
  if (status?.lastRotateRequest !== value) return 'pending';
  if (conditionOf(status, 'Ready')?.status === 'True' && status.lastFailure === undefined) return 'refreshed';
  return status.nextRefreshTime === undefined ? 'stuck' : 'retrying';
}

export async function rotateCommand(context: CommandContext, name: string, options: { timeoutMs: number; wait: boolean }): Promise<number> {
  const { cluster, io, clock } = context;
  const what = appRef(cluster.namespace, name);
  const value = new Date(clock.now()).toISOString();
  await cluster.requestRotate(name, value);
  if (!options.wait) {
    io.out(`rotate requested for ${what}: ${rotateAnnotation}=${value}\n`);
    return 0;
  }
  io.err(`Requested ${rotateAnnotation}=${value}; waiting up to ${shortDuration(options.timeoutMs)} for the operator to refresh...\n`);
  let last: AppView | undefined;
  let retryingSaid = false;
  const done = await pollUntil(
    async () => {
      const app = await cluster.getApp(name);
      last = app;
      const outcome = rotateOutcome(app.status, value);
      if (outcome === 'retrying' && !retryingSaid) {
        io.err(`The refresh failed and is retried at ${timeWithDistance(app.status?.nextRefreshTime, clock.now())}: ${describeProblems(app.status, clock.now())}\n`);
        retryingSaid = true;
      }
      return outcome === 'refreshed' || outcome === 'stuck' ? { app, outcome } : undefined;
    },
    { timeoutMs: options.timeoutMs, intervalMs: context.pollIntervalMs, clock },
  );
  if (done === undefined) {
    const acted = last?.status?.lastRotateRequest === value;
    throw new CliError(
      `timed out after ${shortDuration(options.timeoutMs)} waiting for ${what} to ${acted ? 'refresh successfully' : `act on ${rotateAnnotation}=${value}`}: ${describeProblems(last?.status, clock.now())}`,
    );
  }
  if (done.outcome === 'stuck') throw new CliError(`the operator acted on the rotate request for ${what}, but no new token came of it: ${describeProblems(done.app.status, clock.now())}`);
  io.out(`rotated ${what}: the new access token expires at ${timeWithDistance(done.app.status?.accessTokenExpiresAt, clock.now())}\n`);
  return 0;
}
