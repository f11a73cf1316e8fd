// The referenced-Secret cache: what a read keeps (only the keys OAuthApps reference, while one
// does and while the Secret's resourceVersion stays), and when it reads again.
import { describe, expect, it } from '@jest/globals';
import type { KubeClient } from '../../../src/kube/client.ts';
import type { InformerHandler, ObjectCache } from '../../../src/kube/informer.ts';
import { encodeData, objectKey, type KubeObject, type Secret } from '../../../src/kube/objects.ts';
import { ReferenceIndex } from '../../../src/oauthapp/controller.ts';
import { maxSecretValueBytes, SourceSecrets } from '../../../src/oauthapp/source-secrets.ts';

/** Just enough of an informer cache: get, list, on, and a way for the test to change it. */
class FakeCache<T extends KubeObject> {
  private readonly store = new Map<string, T>();
  private readonly handlers: Array<InformerHandler<T>> = [];
  get = (namespace: string | undefined, name: string) => this.store.get(objectKey(namespace, name));
  list = () => [...this.store.values()];
  on = (handler: InformerHandler<T>) => void this.handlers.push(handler);

  put(object: T): void {
    const key = objectKey(object.metadata.namespace, object.metadata.name);
    const old = this.store.get(key);
    this.store.set(key, object);
    for (const handler of this.handlers) handler(old ? 'updated' : 'added', object, old);
  }

  remove(namespace: string, name: string): void {
    const old = this.store.get(objectKey(namespace, name));
    if (!old) return;
    this.store.delete(objectKey(namespace, name));
    for (const handler of this.handlers) handler('deleted', old);
  }

  asCache(): ObjectCache<T> {
    return this as unknown as ObjectCache<T>;
  }
}

const namespace = 'sales';

function world() {
  const secrets = new Map<string, Secret>();
  const gets: string[] = [];
  const kube = {
    getSecret: async (_namespace: string, name: string) => {
      gets.push(name);
      return secrets.get(name);
    },
  } as unknown as KubeClient;
  const metadata = new FakeCache<KubeObject>();
  const references = new ReferenceIndex();
  let version = 0;
  const putSecret = (name: string, data: Record<string, string>) => {
    version += 1;
    const secret: Secret = { metadata: { name, namespace, uid: `uid-${name}`, resourceVersion: String(version) }, data: encodeData(data) };
    secrets.set(name, secret);
    metadata.put({ metadata: { name, namespace, uid: `uid-${name}`, resourceVersion: String(version) } });
  };
  const deleteSecret = (name: string) => {
    secrets.delete(name);
    metadata.remove(namespace, name);
  };
  const putApp = (name: string, clientSecretRef: { name: string; key: string }, refreshTokenRef?: { name: string; key: string }) =>
    references.update({ metadata: { name, namespace, uid: `uid-${name}` }, spec: { clientSecretRef, ...(refreshTokenRef ? { refreshTokenRef } : {}) } } as KubeObject);
  const sources = new SourceSecrets(kube, metadata.asCache(), references);
  return { sources, gets, putSecret, deleteSecret, putApp, removeApp: (name: string) => references.remove(objectKey(namespace, name)) };
}

describe('SourceSecrets', () => {
  it('keeps only the keys OAuthApps reference, not the rest of the Secret', async () => {
    const { sources, gets, putSecret, putApp } = world();
    putSecret('shared', { client_secret: 's3cret', unrelated: 'x'.repeat(10_000), other: 'y' });
    putApp('crm', { name: 'shared', key: 'client_secret' });

    await expect(sources.read(namespace, { name: 'shared', key: 'client_secret' })).resolves.toMatchObject({ found: true, value: 's3cret' });
    await expect(sources.read(namespace, { name: 'shared', key: 'client_secret' })).resolves.toMatchObject({ found: true, value: 's3cret' });

    expect(gets).toEqual(['shared']);
    expect(sources.size).toEqual({ secrets: 1, keys: 1 });
  });

  it('serves every referenced key of a Secret from one read', async () => {
    const { sources, gets, putSecret, putApp } = world();
    putSecret('crm', { client_secret: 's3cret', refresh_token: 'seed' });
    putApp('crm', { name: 'crm', key: 'client_secret' }, { name: 'crm', key: 'refresh_token' });

    await sources.read(namespace, { name: 'crm', key: 'client_secret' });
    await expect(sources.read(namespace, { name: 'crm', key: 'refresh_token' })).resolves.toMatchObject({ found: true, value: 'seed' });

    expect(gets).toEqual(['crm']);
    expect(sources.size).toEqual({ secrets: 1, keys: 2 });
  });

  it('forgets a key once no OAuthApp references it: the last app deleted, or its spec pointing elsewhere', async () => {
    const { sources, putSecret, putApp, removeApp } = world();
    putSecret('shared', { client_secret: 's3cret', rotated: 'n3w' });
    putApp('a', { name: 'shared', key: 'client_secret' });
    putApp('b', { name: 'shared', key: 'client_secret' });
    await sources.read(namespace, { name: 'shared', key: 'client_secret' });
    expect(sources.size).toEqual({ secrets: 1, keys: 1 });

    removeApp('a');
    expect(sources.size).toEqual({ secrets: 1, keys: 1 });
    putApp('b', { name: 'shared', key: 'rotated' });
    expect(sources.size).toEqual({ secrets: 0, keys: 0 });

    await sources.read(namespace, { name: 'shared', key: 'rotated' });
    expect(sources.size).toEqual({ secrets: 1, keys: 1 });
    removeApp('b');
    expect(sources.size).toEqual({ secrets: 0, keys: 0 });
  });

  it('reads again once the Secret changed, and drops the old value at once', async () => {
    const { sources, gets, putSecret, putApp } = world();
    putSecret('crm', { client_secret: 'old' });
    putApp('crm', { name: 'crm', key: 'client_secret' });
    await sources.read(namespace, { name: 'crm', key: 'client_secret' });

    putSecret('crm', { client_secret: 'new' });
    expect(sources.size).toEqual({ secrets: 0, keys: 0 });
    await expect(sources.read(namespace, { name: 'crm', key: 'client_secret' })).resolves.toMatchObject({ found: true, value: 'new' });
    expect(gets).toEqual(['crm', 'crm']);
  });

  it('drops a deleted Secret and says it does not exist, without a read', async () => {
    const { sources, gets, putSecret, deleteSecret, putApp } = world();
    putSecret('crm', { client_secret: 's3cret' });
    putApp('crm', { name: 'crm', key: 'client_secret' });
    await sources.read(namespace, { name: 'crm', key: 'client_secret' });

    deleteSecret('crm');
    expect(sources.size).toEqual({ secrets: 0, keys: 0 });
    await expect(sources.read(namespace, { name: 'crm', key: 'client_secret' })).resolves.toMatchObject({ found: false, problem: 'Secret sales/crm does not exist' });
    expect(gets).toEqual(['crm']);
  });

  it('remembers a missing key and an oversized value (as its size) without reading again', async () => {
    const { sources, gets, putSecret, putApp } = world();
    putSecret('crm', { huge: 'x'.repeat(maxSecretValueBytes + 1) });
    putApp('crm', { name: 'crm', key: 'client_secret' }, { name: 'crm', key: 'huge' });

    for (let round = 0; round < 2; round += 1) {
      await expect(sources.read(namespace, { name: 'crm', key: 'client_secret' })).resolves.toMatchObject({ found: false, problem: 'Secret sales/crm has no value under key client_secret' });
      await expect(sources.read(namespace, { name: 'crm', key: 'huge' })).resolves.toMatchObject({ found: false, reason: 'SecretValueTooLarge' });
    }
    expect(gets).toEqual(['crm']);
  });

  it('keeps nothing for a key no OAuthApp references (a read for an app the cache has not seen)', async () => {
    const { sources, gets, putSecret } = world();
    putSecret('crm', { client_secret: 's3cret' });

    await sources.read(namespace, { name: 'crm', key: 'client_secret' });
    await sources.read(namespace, { name: 'crm', key: 'client_secret' });

    expect(gets).toEqual(['crm', 'crm']);
    expect(sources.size).toEqual({ secrets: 0, keys: 0 });
  });

  it('without a metadata cache (the callback component) reads live every time and keeps nothing', async () => {
    const gets: string[] = [];
    const kube = { getSecret: async (_namespace: string, name: string) => (gets.push(name), { metadata: { name, namespace, resourceVersion: '1' }, data: encodeData({ client_secret: 's' }) }) } as unknown as KubeClient;
    const references = new ReferenceIndex();
    references.update({ metadata: { name: 'crm', namespace }, spec: { clientSecretRef: { name: 'crm', key: 'client_secret' } } } as KubeObject);
    const sources = new SourceSecrets(kube, undefined, references);

    await sources.read(namespace, { name: 'crm', key: 'client_secret' });
    await sources.read(namespace, { name: 'crm', key: 'client_secret' });

    expect(gets).toEqual(['crm', 'crm']);
    expect(sources.size).toEqual({ secrets: 0, keys: 0 });
  });
});
