// Two client-secret changes within one second each restart the rolloutRestartTargets (issue 10):
// restartedAt has kubectl's whole-second format, and the second change used to get the very value
// the first one had written, which changes no pod template and so restarts nothing.
import { describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually } from '../support/eventually.ts';
import { occurrences } from '../support/events.ts';
import { kubectlOK } from '../support/kubectl.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { apply, opaqueSecret } from '../support/resources.ts';
import { useTestbed } from '../support/testbed.ts';

const testbed = useTestbed('rollout-restart');
const attempts = 8;
/** Under `npm run test:chaos` the scenario must be reached; a loaded `npm test` only reports it. */
const scenarioRequired = process.env.CHAOS_ITERATIONS !== undefined;

interface Deployment {
  metadata: { generation: number };
  spec: { template: { metadata: { annotations?: Record<string, string> } } };
}

async function restartedAt(): Promise<{ generation: number; value: string | undefined }> {
  const deployment = await testbed.admin.http.json<Deployment>({ method: 'GET', path: `/apis/apps/v1/namespaces/${testbed.namespace}/deployments/worker` });
  return { generation: deployment.metadata.generation, value: deployment.spec.template.metadata.annotations?.['kubectl.kubernetes.io/restartedAt'] };
}

describe('rolloutRestartTargets and client-secret changes close together', () => {
  it('restarts once for each of two changes made within the same second', async () => {
    const provider = await testbed.newProvider();
    await kubectlOK(['create', 'deployment', 'worker', '-n', testbed.namespace, '--image=registry.invalid/worker:1']);
    await testbed.readyApp('quick', provider, { spec: { rolloutRestartTargets: [{ kind: 'Deployment', name: 'worker' }] } });
    let last = await restartedAt();
    expect(last.value).toBeUndefined();

    const change = async () => {
      const secret = provider.sandbox.rotateClientSecret(provider.clientId);
      testbed.canaries.push(secret);
      const before = last;
      await apply(testbed.namespace, opaqueSecret('quick-client', { client_secret: secret }));
      last = await eventually('a restart', async () => {
        const current = await restartedAt();
        return current.value !== before.value ? current : undefined;
      }, 20_000, 20);
      expect(last.generation).toBe(before.generation + 1);
      return { value: last.value ?? '', seenAt: Date.now() };
    };

    // The scenario needs the second change handled before the first value's second is over: when
    // its restart is seen by then, both were planned in one second. A loaded machine (CI runs three
    // test files beside the apiserver) may miss that in every try; then each change still had to
    // restart once, and test/unit/oauthapp/rollout.test.ts holds the same-second case exactly.
    let restarts = 0;
    let sameSecond = 0;
    for (let attempt = 0; attempt < attempts && sameSecond === 0; attempt += 1) {
      await sleep(1000 - (Date.now() % 1000)); // start at the beginning of a second
      const first = await change();
      const second = await change();
      restarts += 2;
      if (second.seenAt < Date.parse(first.value) + 1000) sameSecond += 1;
      process.stdout.write(`rollout restarts: ${first.value} then ${second.value}, the second seen ${second.seenAt - Date.parse(first.value)} ms into the first's second\n`);
    }
    process.stdout.write(`rollout restarts: ${sameSecond} of the tries planned both restarts in one second\n`);
    if (scenarioRequired) expect(sameSecond).toBeGreaterThan(0);

    // Several tries make many Events for one app: the later ones may be held back and come out as
    // one Event counting them (a series), up to 30 s later.
    await eventually(`${restarts} RolloutRestarted occurrences`, async () => ((await occurrences(testbed.namespace, 'quick', 'RolloutRestarted')) >= restarts ? true : undefined), 90_000, 1_000);
    expect(await occurrences(testbed.namespace, 'quick', 'RolloutRestarted')).toBe(restarts);
    await expectNoSecretValuesLeaked(testbed.canaries, { namespace: testbed.namespace, logs: testbed.logs() });
  }, 120_000 + 90_000);
});
