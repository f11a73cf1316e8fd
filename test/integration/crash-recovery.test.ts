// The operator killed after the provider answered a refresh but before the answer was stored.
// With a provider that rotates refresh tokens the new one died with the process: the loss is
// reported at once and the old token is never replayed (so the grant and the access token in use
// survive). With a provider that keeps refresh tokens, nothing is lost at all.
// The test freezes the apiserver to hold the operator at that point, so it runs its own control
// plane rather than freezing the one other test files share.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunningControlPlane } from '../../src/localcluster/controlplane.ts';
import { startPrivateCluster, type PrivateCluster } from '../support/private-cluster.ts';
import { stateSecretName } from '../../src/oauthapp/state.ts';
import { replays } from '../support/chaos.ts';
import { eventually } from '../support/eventually.ts';
import { type AdminClient } from '../support/kube.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { startOperatorProcess, type OperatorProcess } from '../support/operator-process.ts';
import { condition, type AppView } from '../support/resources.ts';
import { startTestProvider, type TestProvider } from '../support/sandbox.ts';

const namespace = 'apps';
const operatorNamespace = 'oauthapp-system';
let cluster: PrivateCluster;
let controlPlane: RunningControlPlane;
let run: PrivateCluster['run'];
let admin: AdminClient;
const cleanups: Array<() => Promise<unknown>> = [];
let operators: OperatorProcess[] = [];
/** Every operator started, for the leak check of their logs. */
const everyOperator: OperatorProcess[] = [];
const canaries: string[] = [];

beforeAll(async () => {
  cluster = await startPrivateCluster('crash', [namespace, operatorNamespace]);
  ({ controlPlane, admin, run } = cluster);
}, 120_000);

afterEach(async () => {
  await Promise.all(operators.map((operator) => operator.kill('SIGKILL')));
  operators = [];
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await cluster?.stop();
});


function startOperator(): OperatorProcess {
  const operator = startOperatorProcess(cluster.operatorArgs({ leaderElect: false, flags: ['--token-request-timeout=5'] }));
  operators.push(operator);
  everyOperator.push(operator);
  return operator;
}

async function getApp(name: string): Promise<AppView> {
  return JSON.parse(await run(['get', 'oauthapp', name, '-n', namespace, '-o', 'json'])) as AppView;
}

/** How long one wait for an app's change lasts; tests' timeouts add these up. */
const appWaitMs = 60_000;
const appWith = (name: string, predicate: (app: AppView) => boolean, what: string) =>
  eventually(what, async () => {
    const app = await getApp(name);
    return predicate(app) ? app : undefined;
  }, appWaitMs);

async function readyApp(name: string, provider: TestProvider): Promise<AppView> {
  canaries.push(provider.clientSecret, await cluster.applySeededApp(name, provider));
  const app = await appWith(name, (current) => condition(current, 'Ready')?.status === 'True', `${name} Ready`);
  canaries.push(...(await tokensOf(app)));
  return app;
}

const stateOf = async (app: AppView) => (await admin.secretData(operatorNamespace, stateSecretName(app.metadata.uid))) ?? {};
async function tokensOf(app: AppView): Promise<string[]> {
  const [target, state] = await Promise.all([admin.secretData(namespace, `${app.metadata.name}-credentials`), stateOf(app)]);
  return [target?.access_token ?? '', state.access_token ?? '', state.refresh_token ?? ''];
}

/** Token requests that reached a provider of this file and are being held there (its `delayMs` fault). */
let heldAtProvider = 0;
/** Providers whose held token requests are counted: the freeze must wait until a request got there. */
const countingProvider = (options: Parameters<typeof startTestProvider>[0]) =>
  startTestProvider({
    ...options,
    sleep: (ms) => {
      heldAtProvider += 1;
      return sleep(ms);
    },
  });

/** Tries at the kill before one of them lands in the window (the race below makes a try miss now and then). */
const killAttempts = 4;
/** The waits of one try: the claim, the provider's answer, then the app settled after the restart. */
const killAttemptMs = 30_000 + 30_000 + appWaitMs;

/**
 * Asks for a refresh (rotate annotation `rotate`), lets the provider answer, and SIGKILLs the
 * operator while the apiserver is frozen, so the answer cannot have been stored. Answers whether
 * that window was hit: the state Secret still holds the claim and the old access token. The frozen
 * apiserver may still take the state write the operator had already put into its socket (the race
 * chaos-crash.test.ts knows too): then the answer was stored after all, nothing was lost, and the
 * caller checks that and tries again.
 */
async function killAfterResponseBeforeStore(operator: OperatorProcess, app: AppView, provider: TestProvider, rotate: string): Promise<boolean> {
  const before = await stateOf(app);
  const answeredBefore = provider.sandbox.stats().presentedRefreshTokens.filter((p) => p.outcome === 'ok').length;
  const heldBefore = heldAtProvider;
  provider.sandbox.faults = { delayMs: 1_500 };
  await run(['annotate', 'oauthapp', app.metadata.name, '-n', namespace, `oauthapp.dev/rotate=${rotate}`, '--overwrite']);
  // Frozen once the request is at the provider, not once the claim is seen stored: the claim's own
  // answer may not have reached the operator yet, and a frozen apiserver would then hold it (and
  // the request) forever.
  await eventually('the refresh request at the provider', () => (heldAtProvider > heldBefore ? true : undefined), 30_000, 10);
  controlPlane.freezeAPIServer(true);
  try {
    await eventually('the provider answered', () =>
      provider.sandbox.stats().presentedRefreshTokens.filter((p) => p.outcome === 'ok').length > answeredBefore ? true : undefined,
    );
    await sleep(300);
    await operator.kill('SIGKILL');
  } finally {
    controlPlane.freezeAPIServer(false);
    provider.sandbox.faults = {};
  }
  const after = await stateOf(app);
  canaries.push(after.access_token ?? '', after.refresh_token ?? '');
  return (after['record.json'] ?? '').includes('"claim"') && after.access_token === before.access_token;
}

/**
 * Kills the operator between the provider's answer and its storage until a try hits that window
 * (at most `killAttempts`). A missed try must have lost nothing: the restarted operator handles
 * its rotate request, authorized. Returns the rotate value of the try that hit; the operator is
 * dead then, and the caller starts the next one.
 */
async function crashBetweenAnswerAndStore(app: AppView, provider: TestProvider, first: OperatorProcess): Promise<{ rotate: string; misses: number }> {
  let operator = first;
  for (let attempt = 1; attempt <= killAttempts; attempt += 1) {
    const rotate = `crash-test-${attempt}`;
    if (await killAfterResponseBeforeStore(operator, app, provider, rotate)) return { rotate, misses: attempt - 1 };
    operator = startOperator();
    await appWith(
      app.metadata.name,
      (current) => current.status?.lastRotateRequest === rotate && condition(current, 'Authorized')?.status === 'True' && condition(current, 'Ready')?.status === 'True',
      `${rotate}: the answer stored after all, and the app intact after the restart`,
    );
  }
  throw new Error(`the kill missed the window between the provider's answer and its storage ${killAttempts} times in a row`);
}

describe('a crash between the provider answer and its storage', () => {
  it('with a provider that rotates refresh tokens: reports the loss within one reconcile and never replays the old token', async () => {
    const provider = await countingProvider({ rotateRefreshTokens: true, revokeGrantOnReplay: true });
    cleanups.push(() => provider.close());
    const first = startOperator();
    const app = await readyApp('rotating', provider);

    const { misses } = await crashBetweenAnswerAndStore(app, provider, first);
    const accessTokenInUse = (await admin.secretData(namespace, 'rotating-credentials'))?.access_token ?? '';
    startOperator();

    const reported = await appWith('rotating', (current) => condition(current, 'Authorized')?.reason === 'RefreshInterrupted', 'Authorized=False RefreshInterrupted');
    expect(condition(reported, 'Authorized')?.status).toBe('False');
    // The access token already handed out stays in place and valid: nothing was replayed. Ready is
    // False all the same: a person must re-authorize.
    expect(condition(reported, 'Ready')).toMatchObject({ status: 'False', reason: 'NotAuthorized' });
    expect(condition(reported, 'Ready')?.message).toMatch(/^the access token is valid until /);
    expect((await admin.secretData(namespace, 'rotating-credentials'))?.access_token).toBe(accessTokenInUse);
    expect(await provider.whoAmI(accessTokenInUse)).toBe(200);
    const presented = provider.sandbox.stats().presentedRefreshTokens;
    canaries.push(...presented.map((p) => p.value));
    expect(replays(presented)).toEqual([]);
    expect(presented.filter((p) => p.outcome !== 'ok')).toEqual([]);
    if (misses > 0) process.stdout.write(`[crash-recovery] rotating: the kill missed the window ${misses} time(s) first (the answer was stored after all; nothing lost)\n`);
  }, appWaitMs + killAttempts * killAttemptMs + appWaitMs);

  it('with a provider that keeps refresh tokens: sends it again after the restart and loses nothing', async () => {
    const provider = await countingProvider({ rotateRefreshTokens: false });
    cleanups.push(() => provider.close());
    const first = startOperator();
    const app = await readyApp('keeping', provider);

    const { rotate, misses } = await crashBetweenAnswerAndStore(app, provider, first);
    const accessTokenBefore = (await admin.secretData(namespace, 'keeping-credentials'))?.access_token;
    const answered = provider.sandbox.stats().presentedRefreshTokens.filter((p) => p.outcome === 'ok');
    const lost = answered.at(-1);
    startOperator();

    const recovered = await appWith(
      'keeping',
      (current) => current.status?.lastRotateRequest === rotate && condition(current, 'Ready')?.status === 'True',
      'the rotate request handled after the restart',
    );
    expect(condition(recovered, 'Authorized')?.status).toBe('True');
    const accessTokenAfter = (await admin.secretData(namespace, 'keeping-credentials'))?.access_token ?? '';
    canaries.push(accessTokenAfter);
    expect(accessTokenAfter).not.toBe(accessTokenBefore);
    expect(await provider.whoAmI(accessTokenAfter)).toBe(200);
    // The same refresh token, sent again (once) once the dead holder's claim ran out.
    const resent = provider.sandbox.stats().presentedRefreshTokens.filter((p) => p.outcome === 'ok').slice(answered.length);
    expect(lost).toBeDefined();
    expect(resent.map((p) => p.value)).toEqual([lost?.value]);
    if (misses > 0) process.stdout.write(`[crash-recovery] keeping: the kill missed the window ${misses} time(s) first (the answer was stored after all; nothing lost)\n`);
  }, appWaitMs + killAttempts * killAttemptMs + appWaitMs);
});

describe('all of the above', () => {
  it('leaked no client secret or token into logs, Events or status', async () => {
    await expectNoSecretValuesLeaked(canaries, { namespace, logs: everyOperator.map((operator) => operator.output()).join(''), kubeconfig: controlPlane.adminKubeconfigPath });
  });
});
