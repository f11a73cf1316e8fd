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
import { eventually } from '../support/eventually.ts';
import { type AdminClient } from '../support/kube.ts';
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
  return operator;
}

async function getApp(name: string): Promise<AppView> {
  return JSON.parse(await run(['get', 'oauthapp', name, '-n', namespace, '-o', 'json'])) as AppView;
}

const appWith = (name: string, predicate: (app: AppView) => boolean, what: string) =>
  eventually(what, async () => {
    const app = await getApp(name);
    return predicate(app) ? app : undefined;
  }, 60_000);

async function readyApp(name: string, provider: TestProvider): Promise<AppView> {
  await cluster.applySeededApp(name, provider);
  return appWith(name, (app) => condition(app, 'Ready')?.status === 'True', `${name} Ready`);
}

/**
 * Asks for a refresh (rotate annotation), lets the provider answer, and SIGKILLs the operator
 * while the apiserver is frozen, so the answer cannot have been stored.
 */
async function killAfterResponseBeforeStore(operator: OperatorProcess, app: AppView, provider: TestProvider): Promise<void> {
  const answeredBefore = provider.sandbox.stats().presentedRefreshTokens.filter((p) => p.outcome === 'ok').length;
  provider.sandbox.faults = { delayMs: 1_500 };
  await run(['annotate', 'oauthapp', app.metadata.name, '-n', namespace, 'oauthapp.dev/rotate=crash-test', '--overwrite']);
  await eventually('the refresh claimed', async () => {
    const record = (await admin.secretData(operatorNamespace, stateSecretName(app.metadata.uid)))?.['record.json'];
    return record?.includes('"claim"') ? true : undefined;
  });
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
}

describe('a crash between the provider answer and its storage', () => {
  it('with a provider that rotates refresh tokens: reports the loss within one reconcile and never replays the old token', async () => {
    const provider = await startTestProvider({ rotateRefreshTokens: true, revokeGrantOnReplay: true });
    cleanups.push(() => provider.close());
    const first = startOperator();
    const app = await readyApp('rotating', provider);
    const accessTokenInUse = (await admin.secretData(namespace, 'rotating-credentials'))?.access_token ?? '';

    await killAfterResponseBeforeStore(first, app, provider);
    startOperator();

    const reported = await appWith('rotating', (current) => condition(current, 'Authorized')?.reason === 'RefreshInterrupted', 'Authorized=False RefreshInterrupted');
    expect(condition(reported, 'Authorized')?.status).toBe('False');
    // The access token already handed out stays in place and valid: nothing was replayed.
    expect(condition(reported, 'Ready')?.status).toBe('True');
    expect((await admin.secretData(namespace, 'rotating-credentials'))?.access_token).toBe(accessTokenInUse);
    expect(await provider.whoAmI(accessTokenInUse)).toBe(200);
    const presented = provider.sandbox.stats().presentedRefreshTokens.map((p) => p.value);
    expect(new Set(presented).size).toBe(presented.length);
  });

  it('with a provider that keeps refresh tokens: sends it again after the restart and loses nothing', async () => {
    const provider = await startTestProvider({ rotateRefreshTokens: false });
    cleanups.push(() => provider.close());
    const first = startOperator();
    const app = await readyApp('keeping', provider);
    const accessTokenBefore = (await admin.secretData(namespace, 'keeping-credentials'))?.access_token;

    await killAfterResponseBeforeStore(first, app, provider);
    startOperator();

    const recovered = await appWith(
      'keeping',
      (current) => current.status?.lastRotateRequest === 'crash-test' && condition(current, 'Ready')?.status === 'True',
      'the rotate request handled after the restart',
    );
    expect(condition(recovered, 'Authorized')?.status).toBe('True');
    const accessTokenAfter = (await admin.secretData(namespace, 'keeping-credentials'))?.access_token ?? '';
    expect(accessTokenAfter).not.toBe(accessTokenBefore);
    expect(await provider.whoAmI(accessTokenAfter)).toBe(200);
    // The same refresh token, sent again once the dead holder's claim ran out.
    const presented = provider.sandbox.stats().presentedRefreshTokens.filter((p) => p.outcome === 'ok');
    expect(presented.length).toBe(3);
    expect(presented[2]?.value).toBe(presented[1]?.value);
  });
});
