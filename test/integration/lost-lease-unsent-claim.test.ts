// A leader loses its Lease while holding a claim no request followed (the randomized run, seed
// 192234): the claim PUT committed with its answer lost, every retry conflicts (the operator's
// cache has not seen the committed claim), and the Lease renewals fail until the replica steps
// down and exits. Its claim must not outlive it: the next leader would let it run out and report
// the grant lost (Authorized=False RefreshInterrupted) although the refresh token never left.
// Real operator process, real apiserver behind the fault-injecting proxy, strict provider.
import { describe, expect, it } from '@jest/globals';
import type { ProxiedRequest } from '../support/apiserver-proxy.ts';
import { expectNoLeaks } from '../support/chaos.ts';
import { eventually } from '../support/eventually.ts';
import { namespace, operatorNamespace, useProxiedStage } from '../support/proxied-stage.ts';
import { condition, type AppView } from '../support/resources.ts';

const stage = useProxiedStage('lost-lease-claim');
const stateRecord = async (app: AppView) => JSON.parse((await stage.cluster.admin.secretData(operatorNamespace, `oauthapp-state-${app.metadata.uid}`))?.['record.json'] ?? '{}') as { claim?: { holder: string } };
const recordOf = (request: ProxiedRequest) => Buffer.from((JSON.parse(request.body ?? '{}') as { data?: Record<string, string> }).data?.['record.json'] ?? '', 'base64').toString('utf8');

describe('a leader that loses its Lease holding a claim no request followed', () => {
  it('takes the claim out of the state before it exits, and sends nothing', async () => {
    const { cluster, proxy, provider, canaries } = stage;
    const operator = stage.startOperator({ leaderElect: true, flags: ['--token-request-timeout=2', '--leader-elect-lease-duration=4s', '--leader-elect-renew-deadline=3s', '--leader-elect-retry-period=1s'] });
    canaries.push(await cluster.applySeededApp('held', provider));
    const app = await eventually('held: Ready=True', async () => {
      const current = await stage.getApp('held');
      return condition(current, 'Ready')?.status === 'True' ? current : undefined;
    }, 60_000);
    const sentBefore = provider.sandbox.stats().presentedRefreshTokens.length;

    const claimWrite = (request: ProxiedRequest) => request.method === 'PUT' && request.path.endsWith(`/secrets/oauthapp-state-${app.metadata.uid}`) && recordOf(request).includes('"claim"');
    // The cache never sees the committed claim, so every retried claim is written against a stale
    // resourceVersion (409); and no renewal of the Lease gets through.
    proxy.stallWatches({ match: { path: `/api/v1/namespaces/${operatorNamespace}/secrets`, watch: true }, ms: 60_000 });
    const lost = proxy.inject({ kind: 'dropResponse' }, { match: claimWrite });
    proxy.inject({ kind: 'status', status: 503 }, { match: { method: 'PUT', path: `/apis/coordination.k8s.io/v1/namespaces/${operatorNamespace}/leases/*` }, times: Infinity });
    await cluster.run(['annotate', 'oauthapp', 'held', '-n', namespace, 'oauthapp.dev/rotate=now', '--overwrite']);
    await lost.applied;
    expect((await stateRecord(app)).claim).toBeDefined();

    await eventually('the replica to exit after losing its Lease', async () => ((await Promise.race([operator.exited, new Promise((resolve) => setTimeout(resolve, 100, undefined))])) !== undefined ? true : undefined), 30_000);

    expect(operator.output()).toContain('lost the leader Lease');
    expect((await stateRecord(app)).claim).toBeUndefined();
    expect(provider.sandbox.stats().presentedRefreshTokens.length).toBe(sentBefore);
    await expectNoLeaks({ canaries, namespace, logs: operator.output(), metrics: [], kubeconfig: cluster.controlPlane.adminKubeconfigPath });
  }, 150_000);
});
