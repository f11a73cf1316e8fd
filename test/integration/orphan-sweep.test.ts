// A state Secret whose OAuthApp went away without the finalizer running (a force-deleted namespace,
// a finalizer removed by hand) holds a live refresh token: the leader's sweep deletes it, on the
// real apiserver, and leaves live apps' state alone.
import { describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { appAnnotation, appUIDLabel, roleLabel, stateSecretName } from '../../src/oauthapp/state.ts';
import { apply, opaqueSecret } from '../support/resources.ts';
import { eventually } from '../support/eventually.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { useTestbed } from '../support/testbed.ts';

const testbed = useTestbed('orphan-sweep', { operatorArgv: ['--orphan-sweep-interval=1'] });

describe('the orphaned state sweep', () => {
  it("deletes the state of an OAuthApp that is gone without its finalizer having run (a force-deleted namespace), and keeps a live app's", async () => {
    const provider = await testbed.newProvider();
    const kept = await testbed.readyApp('kept', provider);
    const live = stateSecretName(kept.metadata.uid);
    // What a namespace force-deleted under a running app leaves: a state Secret whose app uid is gone.
    const ghostUID = randomUUID();
    const ghost = stateSecretName(ghostUID);
    const data = (await testbed.admin.secretData(testbed.operatorNamespace, live)) ?? {};
    await apply(testbed.operatorNamespace, {
      ...opaqueSecret(ghost, data),
      metadata: { name: ghost, labels: { [roleLabel]: 'state', [appUIDLabel]: ghostUID }, annotations: { [appAnnotation]: `${testbed.namespace}/ghost` } },
    });

    await eventually('the orphaned state Secret deleted', async () => ((await testbed.admin.secretData(testbed.operatorNamespace, ghost)) === undefined ? true : undefined), 30_000);

    expect(await testbed.admin.secretData(testbed.operatorNamespace, live)).toBeDefined();
    expect(testbed.logs()).toContain('deleted the state of an OAuthApp that no longer exists');
  });
});

describe('secrets', () => {
  it('no client secret or token reached logs, Events or status', async () => {
    await expectNoSecretValuesLeaked(testbed.canaries, { namespace: testbed.namespace, logs: testbed.logs() });
  });
});
