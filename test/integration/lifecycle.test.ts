// The target Secret's life: written as the spec says, restored after hand edits and deletion,
// never taken from someone else, and cleaned up (with the state Secret) when the app goes.
import { beforeAll, describe, expect, it } from '@jest/globals';
import { stateSecretName } from '../../src/oauthapp/state.ts';
import { eventually } from '../support/eventually.ts';
import { kubectlOK } from '../support/kubectl.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { apply, condition, getApp, oauthAppManifest, opaqueSecret, secretData } from '../support/resources.ts';
import type { TestProvider } from '../support/sandbox.ts';
import { useTestbed } from '../support/testbed.ts';

const testbed = useTestbed('lifecycle');
let provider: TestProvider;

beforeAll(async () => {
  provider = await testbed.newProvider();
});

const applyApp = (name: string, spec: Record<string, unknown> = {}) => testbed.applyApp(name, provider, { spec });

/** Waits for the target Secret to carry an access token; its tokens join the leak check's canaries. */
const tokenIn = async (secretName: string) => {
  const data = await eventually(`${secretName} with an access token`, async () => {
    const found = await secretData(testbed.namespace, secretName);
    return found?.access_token ? found : undefined;
  });
  testbed.canaries.push(data.access_token ?? '', data.refresh_token ?? '');
  return data;
};

describe('the target Secret', () => {
  it('carries the spec target name, labels and annotations, the managed-by label and an owner reference', async () => {
    await applyApp('shaped', { target: { name: 'shaped-for-workers', labels: { team: 'sales' }, annotations: { 'example.com/owner': 'crm' } } });
    await tokenIn('shaped-for-workers');

    const secret = JSON.parse(await kubectlOK(['get', 'secret', 'shaped-for-workers', '-n', testbed.namespace, '-o', 'json'])) as {
      type: string;
      metadata: { labels: Record<string, string>; annotations: Record<string, string>; ownerReferences: Array<{ kind: string; name: string; controller: boolean }> };
    };
    expect(secret.type).toBe('Opaque');
    expect(secret.metadata.labels).toMatchObject({ team: 'sales', 'app.kubernetes.io/managed-by': 'oauthapp-operator' });
    expect(secret.metadata.annotations).toMatchObject({ 'example.com/owner': 'crm' });
    expect(secret.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'OAuthApp', name: 'shaped', controller: true })]);
  });

  it('includes the refresh token only when includeRefreshToken is true', async () => {
    await applyApp('with-refresh', { target: { includeRefreshToken: true } });

    const data = await tokenIn('with-refresh-credentials');

    expect(data.refresh_token).toBeTruthy();
  });

  it('is restored after a hand edit of its data', async () => {
    await applyApp('edited');
    const original = await tokenIn('edited-credentials');

    await kubectlOK(['patch', 'secret', 'edited-credentials', '-n', testbed.namespace, '--type=merge', '-p', JSON.stringify({ stringData: { access_token: 'typed-by-hand', extra: 'x' } })]);

    const restored = await eventually('the edit undone', async () => {
      const data = await secretData(testbed.namespace, 'edited-credentials');
      return data && data.access_token === original.access_token && data.extra === undefined ? data : undefined;
    });
    expect(restored).toEqual(original);
  }, 90_000);

  it('is recreated after it is deleted by hand', async () => {
    await applyApp('deleted');
    await tokenIn('deleted-credentials');

    await kubectlOK(['delete', 'secret', 'deleted-credentials', '-n', testbed.namespace]);

    await tokenIn('deleted-credentials');
  }, 90_000);

  it('is never taken over from a Secret that belongs to something else', async () => {
    await apply(testbed.namespace, opaqueSecret('someone-elses', { owner: 'another team' }));
    await applyApp('collides', { target: { name: 'someone-elses' } });

    const app = await eventually('Ready=False TargetConflict', async () => {
      const current = await getApp(testbed.namespace, 'collides');
      return condition(current, 'Ready')?.reason === 'TargetConflict' ? current : undefined;
    });

    expect(condition(app, 'Ready')?.message).toContain(`Secret ${testbed.namespace}/someone-elses already exists`);
    expect(await secretData(testbed.namespace, 'someone-elses')).toEqual({ owner: 'another team' });
  });
});

describe('a missing client secret Secret', () => {
  it('is reported as ClientSecretValid=False, and creating it later is enough', async () => {
    const seed = provider.sandbox.issueRefreshToken(provider.clientId);
    testbed.canaries.push(seed);
    await apply(testbed.namespace, opaqueSecret('late-bootstrap', { refresh_token: seed }));
    await apply(
      testbed.namespace,
      oauthAppManifest({
        name: 'late',
        clientId: provider.clientId,
        tokenURL: provider.tokenURL,
        redirectURI: provider.redirectURI,
        refreshTokenRef: { name: 'late-bootstrap', key: 'refresh_token' },
      }),
    );
    const waiting = await eventually('ClientSecretValid=False', async () => {
      const current = await getApp(testbed.namespace, 'late');
      return condition(current, 'ClientSecretValid')?.reason === 'SecretNotFound' ? current : undefined;
    });
    expect(condition(waiting, 'ClientSecretValid')?.message).toContain(`Secret ${testbed.namespace}/late-client does not exist`);

    await apply(testbed.namespace, opaqueSecret('late-client', { client_secret: provider.clientSecret }));

    await tokenIn('late-credentials');
  }, 90_000);
});

describe('deleting an OAuthApp', () => {
  it('removes its state Secret (finalizer) and its target Secret (garbage collection)', async () => {
    await applyApp('short-lived');
    await tokenIn('short-lived-credentials');
    const app = await getApp(testbed.namespace, 'short-lived');
    expect(app.metadata.finalizers).toContain('oauthapp.dev/state-cleanup');
    expect(await testbed.admin.secretData(testbed.operatorNamespace, stateSecretName(app.metadata.uid))).toBeDefined();

    await kubectlOK(['delete', 'oauthapp', 'short-lived', '-n', testbed.namespace, '--wait=true', '--timeout=30s']);

    expect(await testbed.admin.secretData(testbed.operatorNamespace, stateSecretName(app.metadata.uid))).toBeUndefined();
    await eventually('the target Secret garbage-collected', async () => ((await secretData(testbed.namespace, 'short-lived-credentials')) ? undefined : true));
  }, 120_000);
});

describe('all of the above', () => {
  it('leaked no client secret or token into logs, Events or status', async () => {
    await expectNoSecretValuesLeaked(testbed.canaries, { namespace: testbed.namespace, logs: testbed.logs() });
  });
});
