// kubectl oauthapp authorize NAME: the URL a person opens, then the wait for Authorized=True.
import { CliError } from './errors.ts';
import { appRef, type CommandContext } from './context.ts';
import { conditionOf, shortDuration } from './format.ts';
import { describeProblems } from './problems.ts';
import { pollUntil } from './wait.ts';

export async function authorizeCommand(context: CommandContext, name: string, timeoutMs: number): Promise<number> {
  const { cluster, io, clock } = context;
  const what = appRef(cluster.namespace, name);
  const first = await cluster.getApp(name);
  if (conditionOf(first.status, 'Authorized')?.status === 'True') {
    io.out(`${what} is already authorized (Authorized=True): nothing to do\n`);
    return 0;
  }
  let shownURL: string | undefined;
  let waitingSaid = false;
  let last = first;
  let fresh = true;
  const authorized = await pollUntil(
    async () => {
      // The first look is the read above; every later one reads the app again.
      const app = fresh ? first : await cluster.getApp(name);
      fresh = false;
      last = app;
      if (conditionOf(app.status, 'Authorized')?.status === 'True') return app;
      const url = app.status?.authorizationURL;
      if (url !== undefined && url !== shownURL) {
        io.out(shownURL === undefined ? `Open this URL in a browser to authorize ${what}:\n\n  ${url}\n\n` : `The operator issued a new authorization URL; open this one instead:\n\n  ${url}\n\n`);
        if (shownURL === undefined) io.err(`Waiting up to ${shortDuration(timeoutMs)} for the authorization (the URL works once, for a few minutes; do not share it)...\n`);
        shownURL = url;
      } else if (url === undefined && !waitingSaid) {
        io.err(`Waiting for the operator to publish an authorization URL (${describeProblems(app.status, clock.now())})...\n`);
        waitingSaid = true;
      }
      return undefined;
    },
    { timeoutMs, intervalMs: context.pollIntervalMs, clock },
  );
  if (authorized === undefined) {
    throw new CliError(`timed out after ${shortDuration(timeoutMs)} waiting for ${what} to be authorized: ${describeProblems(last.status, clock.now())}`);
  }
  io.out(`${what} is authorized (Authorized=True)\n`);
  return 0;
}
