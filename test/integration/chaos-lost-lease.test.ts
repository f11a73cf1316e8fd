// Found by chaos-apiserver.test.ts under CHAOS_ITERATIONS: an apiserver outage longer than the
// leader election renew deadline (10 s) while a provider answer waits to be stored used to lose
// the refresh token with no crash at all: the leader gave up its Lease and exited with the answer
// still in memory, and its successor (the provider rotating refresh tokens) had to report
// RefreshInterrupted. A replica that stops now keeps trying to store such answers first (the
// writes are guarded by resourceVersion, so that is safe without the Lease).
// This test holds the provider's answer in a proxy, freezes the apiserver, lets the answer reach
// the operator, thaws the apiserver after the Lease is surely lost, and expects the answer stored.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { RunningControlPlane } from '../../src/localcluster/controlplane.ts';
import { startPrivateCluster, type PrivateCluster } from '../support/private-cluster.ts';
import { stateSecretName } from '../../src/oauthapp/state.ts';
import { report, startHoldingProxy, type HoldingProxy } from '../support/chaos.ts';
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

beforeAll(async () => {
  cluster = await startPrivateCluster('chaos-lease', [namespace, operatorNamespace]);
  ({ controlPlane, admin, run } = cluster);
  provider = await startTestProvider({ rotateRefreshTokens: true, revokeGrantOnReplay: true });
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
    await cluster.applySeededApp(name, provider, `http://127.0.0.1:${proxy.port}/oauth/token`);
    const first = startOperator();
    const app = await eventually('Ready', async () => {
      const current = await getApp(name);
      return condition(current, 'Ready')?.status === 'True' ? current : undefined;
    }, 60_000);

    proxy.mode = 'hold-response';
    await run(['annotate', 'oauthapp', name, '-n', namespace, 'oauthapp.dev/rotate=during-outage', '--overwrite']);
    await eventually('claimed and answered by the provider', async () =>
      proxy.responsesHeld > 0 && (await admin.secretData(operatorNamespace, stateSecretName(app.metadata.uid)))?.['record.json']?.includes('"claim"') ? true : undefined,
    );
    const frozenAt = Date.now();
    controlPlane.freezeAPIServer(true);
    let exit: number | NodeJS.Signals | 'still running';
    let timer: NodeJS.Timeout | undefined;
    try {
      proxy.releaseResponses();
      // Past the 10 s renew deadline: the Lease is lost while the answer is only in memory.
      exit = await Promise.race([first.exited, new Promise<'still running'>((resolve) => (timer = setTimeout(() => resolve('still running'), 20_000)))]);
    } finally {
      clearTimeout(timer);
      controlPlane.freezeAPIServer(false);
    }
    const exitedAfterMs = Date.now() - frozenAt;
    const lostLease = first.output().includes('lost the leader Lease');
    startOperator();

    const after = await eventually('the rotate request settled', async () => {
      const current = await getApp(name);
      const authorized = condition(current, 'Authorized');
      return authorized?.reason === 'RefreshInterrupted' || (current.status?.lastRotateRequest === 'during-outage' && authorized?.status === 'True') ? current : undefined;
    }, 90_000);
    report(
      `apiserver frozen with an answer to store: operator ${exit === 'still running' ? 'still running (storing) after 20 s' : `exited (${String(exit)}) after ${exitedAfterMs} ms`}` +
        `${lostLease ? ' on its lost Lease' : ''}; its successor reports Authorized=${condition(after, 'Authorized')?.status} ${condition(after, 'Authorized')?.reason}`,
    );
    expect(condition(after, 'Authorized')).toMatchObject({ status: 'True' });
  }, 240_000);
});
