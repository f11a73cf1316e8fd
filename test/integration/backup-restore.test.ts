// Backup and restore, as Velero (or a GitOps re-sync) does it: the state Secrets of the operator
// namespace and the OAuthApps are saved as manifests; after the app is lost they are applied
// again. The restored OAuthApp has a new uid while its state Secret is named by the old one: the
// operator re-associates them by namespace and name, so nobody re-authorizes, and the restored
// grant keeps working (its refresh token is used, once, by the next refresh).
import { describe, expect, it } from '@jest/globals';
import { stateSecretName } from '../../src/oauthapp/state.ts';
import { eventually } from '../support/eventually.ts';
import { kubectlOK } from '../support/kubectl.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { condition, opaqueSecret, apply, type AppView } from '../support/resources.ts';
import { useTestbed } from '../support/testbed.ts';

const testbed = useTestbed('restore');

interface Manifest {
  metadata: Record<string, unknown> & { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** What a backup keeps of an object: no uid, resourceVersion, timestamps or status. */
const backupOf = async (kind: string, namespace: string, name: string): Promise<Manifest> => {
  const object = JSON.parse(await kubectlOK(['get', kind, name, '-n', namespace, '-o', 'json'])) as Manifest;
  const { uid: _uid, resourceVersion: _rv, creationTimestamp: _created, managedFields: _managed, generation: _generation, finalizers: _finalizers, ...metadata } = object.metadata;
  const { status: _status, ...rest } = object;
  return { ...rest, metadata };
};

const restore = (namespace: string, manifest: Manifest) => kubectlOK(['apply', '-n', namespace, '-f', '-'], { input: JSON.stringify(manifest) });

const secretExists = async (name: string) => (await testbed.admin.secretData(testbed.operatorNamespace, name)) !== undefined;

/** Backs up the app and its state, deletes the app (its finalizer deletes the state), restores both. */
async function loseAndRestore(app: AppView, restoredClientSecret?: string): Promise<{ oldState: string }> {
  const name = app.metadata.name;
  const oldState = stateSecretName(app.metadata.uid);
  const [appBackup, stateBackup] = [await backupOf('oauthapp', testbed.namespace, name), await backupOf('secret', testbed.operatorNamespace, oldState)];
  await kubectlOK(['delete', 'oauthapp', name, '-n', testbed.namespace, '--wait=true']);
  await eventually('the state Secret deleted with its app', async () => ((await secretExists(oldState)) ? undefined : true));
  if (restoredClientSecret !== undefined) await apply(testbed.namespace, opaqueSecret(`${name}-client`, { client_secret: restoredClientSecret }));
  // Velero restores Secrets before custom resources.
  await restore(testbed.operatorNamespace, stateBackup);
  await restore(testbed.namespace, appBackup);
  return { oldState };
}

describe('an OAuthApp restored from a backup with its state Secret', () => {
  it('takes its old state over (new uid, no re-authorization), and its refresh token keeps working', async () => {
    const provider = await testbed.newProvider({ rotateRefreshTokens: true, revokeGrantOnReplay: true });
    const before = await testbed.readyApp('restored', provider);
    const refreshesBefore = provider.sandbox.stats().presentedRefreshTokens.length;

    const { oldState } = await loseAndRestore(before);

    const after = await testbed.appWith('restored', (app) => app.metadata.uid !== before.metadata.uid && condition(app, 'Ready')?.status === 'True', 'the restored app Ready=True');
    expect(condition(after, 'Authorized')?.status).toBe('True');
    expect(after.status?.authorizationURL).toBeUndefined();
    expect(await secretExists(stateSecretName(after.metadata.uid))).toBe(true);
    expect(await secretExists(oldState)).toBe(false);

    // The next refresh uses the restored refresh token, once, and the provider accepts it.
    await kubectlOK(['annotate', 'oauthapp', 'restored', '-n', testbed.namespace, 'oauthapp.dev/rotate=after-restore', '--overwrite']);
    await testbed.appWith('restored', (app) => app.status?.lastRotateRequest === 'after-restore' && condition(app, 'Ready')?.status === 'True', 'refreshed after the restore');
    const sent = provider.sandbox.stats().presentedRefreshTokens.slice(refreshesBefore);
    expect(sent.map((presentation) => presentation.outcome)).toEqual(['ok']);
    expect(provider.sandbox.stats().presentedAuthorizationCodes).toHaveLength(0);
    const { access_token: accessToken = '' } = (await testbed.admin.secretData(testbed.namespace, 'restored-credentials')) ?? {};
    expect(await provider.whoAmI(accessToken)).toBe(200);
    expect(testbed.logs()).toContain('adopted the state of an earlier OAuthApp of this name');
    testbed.canaries.push(...provider.sandbox.stats().presentedRefreshTokens.map((presentation) => presentation.value));
  }, 90_000);

  it('does not take over a state written for another client secret: the refresh token goes to no other client', async () => {
    const provider = await testbed.newProvider();
    const before = await testbed.readyApp('other-secret', provider);
    const refreshesBefore = provider.sandbox.stats().presentedRefreshTokens.length;
    const otherSecret = 'restored-with-another-client-secret';
    testbed.canaries.push(otherSecret);

    const { oldState } = await loseAndRestore(before, otherSecret);

    const after = await testbed.appWith('other-secret', (app) => app.metadata.uid !== before.metadata.uid && condition(app, 'Authorized')?.status === 'False', 'the restored app Authorized=False');
    expect(await secretExists(oldState)).toBe(true);
    expect(provider.sandbox.stats().presentedRefreshTokens.slice(refreshesBefore)).toHaveLength(0);
    expect(after.status?.authorizationURL).toBeDefined();
  }, 90_000);

  it('leaked no secret value into logs, Events or status', async () => {
    await expectNoSecretValuesLeaked(testbed.canaries, { namespace: testbed.namespace, logs: testbed.logs() });
  });
});
