// SIGTERM while the apiserver cannot store anything (issue 10): the operator's stop used to wait
// for in-flight writes (30 s client timeout each) and then keep retrying held refresh results for
// 120 s, while deploy/ gives the pod 30 s (terminationGracePeriodSeconds) before the kubelet kills
// it, so the Lease was never released. Now the whole stop fits --shutdown-timeout.
// A provider answer is delivered while the apiserver is frozen, so the write that stores it hangs;
// then the operator gets SIGTERM.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunningControlPlane } from '../../src/localcluster/controlplane.ts';
import { stateSecretName } from '../../src/oauthapp/state.ts';
import { expectNoLeaks, report, startHoldingProxy, type HoldingProxy } from '../support/chaos.ts';
import { eventually } from '../support/eventually.ts';
import type { AdminClient } from '../support/kube.ts';
import { startOperatorProcess, type OperatorProcess } from '../support/operator-process.ts';
import { startPrivateCluster, type PrivateCluster } from '../support/private-cluster.ts';
import { condition, type AppView } from '../support/resources.ts';
import { startTestProvider, type TestProvider } from '../support/sandbox.ts';

const namespace = 'apps';
const operatorNamespace = 'oauthapp-system';
const shutdownTimeoutSeconds = 4;
let cluster: PrivateCluster;
let controlPlane: RunningControlPlane;
let admin: AdminClient;
let provider: TestProvider;
let proxy: HoldingProxy;
let operator: OperatorProcess | undefined;

beforeAll(async () => {
  cluster = await startPrivateCluster('shutdown', [namespace, operatorNamespace]);
  ({ controlPlane, admin } = cluster);
  provider = await startTestProvider({ rotateRefreshTokens: true });
  proxy = await startHoldingProxy(Number(new URL(provider.baseURL).port));
}, 180_000);

afterAll(async () => {
  await operator?.kill('SIGKILL');
  await proxy?.close();
  await provider?.close();
  await cluster?.stop();
});

const getApp = async (name: string) => JSON.parse(await cluster.run(['get', 'oauthapp', name, '-n', namespace, '-o', 'json'])) as AppView;

/** What the kubelet allows after SIGTERM, from deploy/. */
async function terminationGracePeriodMs(): Promise<number> {
  const deployment = await readFile(new URL('../../deploy/base/deployment.yaml', import.meta.url), 'utf8');
  return Number(/terminationGracePeriodSeconds:\s*(\d+)/.exec(deployment)?.[1]) * 1000;
}

describe('SIGTERM while a provider answer cannot be stored', () => {
  it('exits within the pod\'s termination grace period', async () => {
    const name = 'stopping';
    const canaries = [provider.clientSecret, await cluster.applySeededApp(name, provider, `http://127.0.0.1:${proxy.port}/oauth/token`)];
    operator = startOperatorProcess(cluster.operatorArgs({ leaderElect: true, flags: ['--token-request-timeout=5', `--shutdown-timeout=${shutdownTimeoutSeconds}`] }));
    const app = await eventually('Ready', async () => {
      const current = await getApp(name);
      return condition(current, 'Ready')?.status === 'True' ? current : undefined;
    }, 60_000);
    canaries.push((await admin.secretData(namespace, `${name}-credentials`))?.access_token ?? '');

    proxy.mode = 'hold-response';
    await cluster.run(['annotate', 'oauthapp', name, '-n', namespace, 'oauthapp.dev/rotate=before-sigterm', '--overwrite']);
    await eventually('claimed and answered by the provider', async () =>
      proxy.responsesHeld > 0 && (await admin.secretData(operatorNamespace, stateSecretName(app.metadata.uid)))?.['record.json']?.includes('"claim"') ? true : undefined,
    );
    const grace = await terminationGracePeriodMs();
    let exit: number | NodeJS.Signals | 'still running';
    let stoppedAfterMs = 0;
    controlPlane.freezeAPIServer(true);
    let timer: NodeJS.Timeout | undefined;
    try {
      const deliveredBefore = proxy.responseBytesDelivered;
      proxy.releaseResponses();
      // The scenario: the answer reached the operator, and the write that stores it cannot finish.
      expect(proxy.responseBytesDelivered).toBeGreaterThan(deliveredBefore);
      await sleep(500);
      const signalledAt = Date.now();
      operator.child.kill('SIGTERM');
      exit = await Promise.race([operator.exited, new Promise<'still running'>((resolve) => (timer = setTimeout(() => resolve('still running'), grace)))]);
      stoppedAfterMs = Date.now() - signalledAt;
    } finally {
      clearTimeout(timer);
      controlPlane.freezeAPIServer(false);
    }
    report(`SIGTERM with the apiserver frozen and an answer to store: ${exit === 'still running' ? `still running after ${grace} ms` : `exited (${String(exit)}) after ${stoppedAfterMs} ms`} (--shutdown-timeout=${shutdownTimeoutSeconds})`);
    expect(exit).toBe(0);
    expect(operator.output()).toContain('stopping: finishing in-flight reconciles');

    canaries.push(...provider.sandbox.stats().presentedRefreshTokens.map((presented) => presented.value));
    await expectNoLeaks({ canaries, namespace, logs: operator.output(), metrics: [], kubeconfig: controlPlane.adminKubeconfigPath });
  }, 240_000);
});
