// An app whose writes fail while the apiserver is out of reach backs off exponentially (5 ms
// doubling, as client-go): after 11 s of failures its next try is about 10 s away. Once the
// apiserver answers again that wait has no reason left: the user's change behind it must be acted
// on at once, not 10 s later (the randomized run, seed 192219: a delete finished 9 s after the
// faults ended). Real operator process, real apiserver behind the fault-injecting proxy.
import { describe, expect, it } from '@jest/globals';
import { expectNoLeaks } from '../support/chaos.ts';
import { eventually } from '../support/eventually.ts';
import { namespace, useProxiedStage } from '../support/proxied-stage.ts';
import { condition, opaqueSecret } from '../support/resources.ts';

/** Long enough for the backoff to pass 5 s (5 ms·2^10), short enough for the file to stay quick. */
const outageMs = 11_000;
const stage = useProxiedStage('apiserver-recovery');

describe('an app that failed while the apiserver was out of reach', () => {
  it('is retried as soon as the apiserver answers again, not when its backoff runs out', async () => {
    const { cluster, proxy, canaries } = stage;
    const operator = stage.startOperator({ leaderElect: true, flags: ['--leader-elect-lease-duration=4s', '--leader-elect-renew-deadline=3s', '--leader-elect-retry-period=1s'] });
    canaries.push(await cluster.applySeededApp('app', stage.provider));
    await eventually('app: Ready=True', async () => (condition(await stage.getApp('app'), 'Ready')?.status === 'True' ? true : undefined), 60_000);

    // Every write of the target Secret is refused as by an overloaded apiserver; the Lease
    // renewals get through, as other requests would on a flaky connection.
    const refused = proxy.inject({ kind: 'status', status: 503 }, { match: { method: ['PUT', 'PATCH', 'POST'], path: `/api/v1/namespaces/${namespace}/secrets/app-credentials` }, times: Infinity });
    const changedSecret = `changed-${Date.now()}`;
    canaries.push(changedSecret);
    await cluster.run(['apply', '-n', namespace, '-f', '-'], JSON.stringify(opaqueSecret('app-client', { client_secret: changedSecret })));
    await new Promise((resolve) => setTimeout(resolve, outageMs));
    refused.cancel();
    const calmAt = Date.now();
    // The scenario happened: the app kept failing on the refused write all along.
    expect(refused.hits).toBeGreaterThanOrEqual(10);

    await eventually('the target Secret to carry the changed client secret', async () =>
      (await cluster.admin.secretData(namespace, 'app-credentials'))?.client_secret === changedSecret ? true : undefined, 30_000);
    const actedOnAfterMs = Date.now() - calmAt;

    // Without the retry on recovery the next try comes 5-10 s after the outage; with it, at the
    // next answer (a Lease renewal every second) plus one reconcile.
    expect(actedOnAfterMs).toBeLessThan(5_000);
    expect(operator.output()).toContain('the apiserver answers again');
    await expectNoLeaks({ canaries, namespace, logs: operator.output(), metrics: [], kubeconfig: cluster.controlPlane.adminKubeconfigPath });
  }, 150_000);
});
