// Found by chaos-apiserver.test.ts under CHAOS_ITERATIONS: an apiserver outage longer than the
// leader election renew deadline (10 s) while a provider answer waits to be stored used to lose
// the refresh token with no crash at all: the leader gave up its Lease and exited with the answer
// still in memory, and its successor (the provider rotating refresh tokens) had to report
// RefreshInterrupted. A replica that stops now keeps trying to store such answers first (the
// writes are guarded by resourceVersion, so that is safe without the Lease).
// This test holds the provider's answer in a proxy, freezes the apiserver, lets the answer reach
// the operator, thaws the apiserver once the operator has given up its Lease, and expects the
// answer stored.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { RunningControlPlane } from '../../src/localcluster/controlplane.ts';
import { startPrivateCluster, type PrivateCluster } from '../support/private-cluster.ts';
import { stateSecretName } from '../../src/oauthapp/state.ts';
import { expectNoLeaks, replays, report, startHoldingProxy, type HoldingProxy } from '../support/chaos.ts';
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
let provider: TestProvider;
let proxy: HoldingProxy;
const operators: OperatorProcess[] = [];
const canaries: string[] = [];

beforeAll(async () => {
  cluster = await startPrivateCluster('chaos-lease', [namespace, operatorNamespace]);
  ({ controlPlane, admin, run } = cluster);
  provider = await startTestProvider({ rotateRefreshTokens: true, revokeGrantOnReplay: true });
  canaries.push(provider.clientSecret);
  proxy = await startHoldingProxy(Number(new URL(provider.baseURL).port));
}, 180_000);

afterAll(async () => {
  await Promise.all(operators.map((each) => each.kill('SIGKILL')));
  await proxy?.close();
  await provider?.close();
  await cluster?.stop();
});

const getApp = async (name: string) => JSON.parse(await run(['get', 'oauthapp', name, '-n', namespace, '-o', 'json'])) as AppView;

function startOperator(): OperatorProcess {
  const operator = startOperatorProcess(cluster.operatorArgs({ leaderElect: true, flags: ['--token-request-timeout=5'] }));
  operators.push(operator);
  return operator;
}

describe('an apiserver outage longer than the renew deadline while an answer waits to be stored', () => {
  it('stores the answer instead of exiting with it in memory', async () => {
    const name = 'outage';
    canaries.push(await cluster.applySeededApp(name, provider, `http://127.0.0.1:${proxy.port}/oauth/token`));
    const first = startOperator();
    const app = await eventually('Ready', async () => {
      const current = await getApp(name);
      return condition(current, 'Ready')?.status === 'True' ? current : undefined;
    }, 60_000);
    const stateBefore = (await admin.secretData(operatorNamespace, stateSecretName(app.metadata.uid))) ?? {};
    canaries.push(stateBefore.refresh_token ?? '', stateBefore.access_token ?? '');

    proxy.mode = 'hold-response';
    await run(['annotate', 'oauthapp', name, '-n', namespace, 'oauthapp.dev/rotate=during-outage', '--overwrite']);
    await eventually('claimed and answered by the provider', async () =>
      proxy.responsesHeld > 0 && (await admin.secretData(operatorNamespace, stateSecretName(app.metadata.uid)))?.['record.json']?.includes('"claim"') ? true : undefined,
    );
    const issued = provider.sandbox.stats().presentedRefreshTokens.filter((p) => p.outcome === 'ok').length;
    const frozenAt = Date.now();
    controlPlane.freezeAPIServer(true);
    let exit: number | NodeJS.Signals | 'still running';
    let lostLeaseAfterMs: number;
    let timer: NodeJS.Timeout | undefined;
    try {
      const delivered = proxy.responseBytesDelivered;
      proxy.releaseResponses();
      await eventually('the answer delivered to the operator', () => (proxy.responseBytesDelivered > delivered ? true : undefined), 10_000, 20);
      // The scenario: past the 10 s renew deadline the Lease is lost while the answer is only in memory.
      await eventually('the operator gave up its Lease while the apiserver is frozen', () => (first.output().includes('lost the leader Lease') ? true : undefined), 60_000, 100);
      lostLeaseAfterMs = Date.now() - frozenAt;
      // It must not leave with the answer: still running (trying to store it) a while later.
      exit = await Promise.race([first.exited, new Promise<'still running'>((resolve) => (timer = setTimeout(() => resolve('still running'), 5_000)))]);
    } finally {
      clearTimeout(timer);
      controlPlane.freezeAPIServer(false);
    }
    startOperator();

    const after = await eventually('the rotate request settled', async () => {
      const current = await getApp(name);
      const authorized = condition(current, 'Authorized');
      return authorized?.reason === 'RefreshInterrupted' || (current.status?.lastRotateRequest === 'during-outage' && authorized?.status === 'True') ? current : undefined;
    }, 90_000);
    const presented = provider.sandbox.stats().presentedRefreshTokens;
    const stateAfter = (await admin.secretData(operatorNamespace, stateSecretName(app.metadata.uid))) ?? {};
    const targetAfter = (await admin.secretData(namespace, `${name}-credentials`)) ?? {};
    canaries.push(stateAfter.refresh_token ?? '', stateAfter.access_token ?? '', targetAfter.access_token ?? '', ...presented.map((p) => p.value));
    report(
      `apiserver frozen with an answer to store: the operator gave up its Lease after ${lostLeaseAfterMs} ms, ` +
        `${exit === 'still running' ? 'still running (storing) 5 s later' : `then exited (${String(exit)})`}; ` +
        `its successor reports Authorized=${condition(after, 'Authorized')?.status} ${condition(after, 'Authorized')?.reason}`,
    );
    expect(issued).toBe(2); // the seed's exchange and the held refresh
    expect(condition(after, 'Authorized')).toMatchObject({ status: 'True' });
    expect(exit).toBe('still running');
    // The held answer was stored, not lost: the provider's rotated refresh token is the one in use,
    // and no refresh token was presented after the provider had accepted it.
    expect(stateAfter.refresh_token).not.toBe(stateBefore.refresh_token);
    expect(replays(presented)).toEqual([]);
    expect(await provider.whoAmI(targetAfter.access_token ?? '')).toBe(200);

    await expectNoLeaks({ canaries, namespace, logs: operators.map((each) => each.output()).join(''), metrics: [], kubeconfig: controlPlane.adminKubeconfigPath });
  }, 240_000);
});
