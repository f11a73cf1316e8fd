// Writing the target Secret when the cache is behind: after an outage an informer may back off for
// seconds before it watches again, and every write from its stale copy would conflict until then.
import { describe, expect, it } from '@jest/globals';
import { oauthAppSpec, type OAuthApp } from '../../../src/api/oauthapp.ts';
import { KubeAPIError } from '../../../src/kube/errors.ts';
import { noCache } from '../../../src/kube/informer.ts';
import { decodeData, type Secret } from '../../../src/kube/objects.ts';
import { desiredTargetSecret } from '../../../src/oauthapp/desired.ts';
import type { AppState } from '../../../src/oauthapp/state.ts';
import { TargetWriter } from '../../../src/oauthapp/target-writer.ts';

const app = {
  apiVersion: 'oauthapp.dev/v1alpha1',
  kind: 'OAuthApp',
  metadata: { namespace: 'sales', name: 'crm-sync', uid: '6f1c2a4e-0d7b-4d7e-9a51-2b8f0c3d9e10' },
  spec: oauthAppSpec.parse({ clientId: 'b4d083d9216986345b32', clientSecretRef: { name: 'crm-sync-client', key: 'client_secret' }, redirectURI: 'https://ops.example.com/oauth/callback' }),
} as OAuthApp;
const state = (accessToken: string): AppState => ({ refreshToken: 'refresh', tokens: { accessToken, tokenType: 'Bearer', expiresAt: '2030-01-01T13:00:00.000Z' }, record: {} });
const target = (accessToken: string, resourceVersion: string): Secret => {
  const secret = desiredTargetSecret({ app: { namespace: 'sales', name: 'crm-sync', uid: app.metadata.uid ?? '' }, spec: app.spec, clientSecret: 'client-secret', state: state(accessToken) });
  return { ...secret, metadata: { ...secret.metadata, resourceVersion } };
};

/** The apiserver's copy, with optimistic concurrency on replace. */
function apiserver(initial: Secret) {
  let stored = initial;
  const replaces: string[] = [];
  return {
    replaces,
    stored: () => stored,
    getSecret: async () => stored,
    createSecret: async (): Promise<Secret> => {
      throw new KubeAPIError('POST', '/secrets', 409, 'AlreadyExists', 'exists');
    },
    deleteSecret: async () => undefined,
    replaceSecret: async (_namespace: string, secret: Secret): Promise<Secret> => {
      replaces.push(secret.metadata.resourceVersion ?? '');
      if (secret.metadata.resourceVersion !== stored.metadata.resourceVersion) throw new KubeAPIError('PUT', '/secrets', 409, 'Conflict', 'the object has been modified');
      stored = { ...secret, metadata: { ...secret.metadata, resourceVersion: String(Number(stored.metadata.resourceVersion) + 1) } };
      return stored;
    },
  };
}

describe('TargetWriter', () => {
  it('writes against the live Secret when its cached copy is behind, instead of conflicting until the cache catches up', async () => {
    const cached = target('access-1', '10');
    const kube = apiserver(target('access-2', '11'));
    const cache = { ...noCache<Secret>(), get: () => cached };

    await expect(new TargetWriter(kube, cache).ensure(app, 'client-secret', state('access-3'))).resolves.toBeUndefined();

    expect(kube.replaces).toEqual(['10', '11']);
    expect(decodeData(kube.stored().data).access_token).toBe('access-3');
  });

  it('creates the target when the cached Secret of a predecessor is gone already, instead of reporting a conflict', async () => {
    const predecessors = { ...target('access-1', '10'), metadata: { ...target('access-1', '10').metadata, ownerReferences: [{ apiVersion: 'oauthapp.dev/v1alpha1', kind: 'OAuthApp', name: 'crm-sync', uid: 'an-earlier-uid', controller: true }] } };
    const created: Secret[] = [];
    const kube = {
      getSecret: async () => undefined,
      createSecret: async (_namespace: string, secret: Secret) => (created.push(secret), { ...secret, metadata: { ...secret.metadata, resourceVersion: '12' } }),
      deleteSecret: async () => undefined,
      replaceSecret: async (): Promise<Secret> => {
        throw new Error('nothing to replace');
      },
    };
    const cache = { ...noCache<Secret>(), get: () => predecessors };

    await expect(new TargetWriter(kube, cache).ensure(app, 'client-secret', state('access-3'))).resolves.toBeUndefined();

    expect(created.map((secret) => decodeData(secret.data).access_token)).toEqual(['access-3']);
  });

  it('reports a conflict when the live Secret belongs to something else', async () => {
    const theirs: Secret = { metadata: { namespace: 'sales', name: 'crm-sync-credentials', resourceVersion: '4' }, type: 'Opaque', data: {} };
    const kube = { ...apiserver(theirs) };
    const cache = { ...noCache<Secret>(), get: () => theirs };

    await expect(new TargetWriter(kube, cache).ensure(app, 'client-secret', state('access-3'))).resolves.toMatch(/already exists and is not owned by this OAuthApp/);
    expect(kube.replaces).toEqual([]);
  });

  it('gives a conflict on the live Secret back to the caller (another writer is active: requeue)', async () => {
    const kube = apiserver(target('access-2', '11'));
    kube.replaceSecret = async () => {
      throw new KubeAPIError('PUT', '/secrets', 409, 'Conflict', 'the object has been modified');
    };
    const cache = { ...noCache<Secret>(), get: () => target('access-1', '10') };

    await expect(new TargetWriter(kube, cache).ensure(app, 'client-secret', state('access-3'))).rejects.toMatchObject({ reason: 'Conflict' });
  });
});
