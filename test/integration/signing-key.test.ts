// The Secret holding the key that signs OAuth `state` values, on the real apiserver: made once,
// shared by replicas, and repaired when it exists without a usable key (issue 10: a Secret
// without `key` used to send the operator round get → create → AlreadyExists → get forever).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeClient } from '../../src/kube/client.ts';
import type { Secret } from '../../src/kube/objects.ts';
import { loadOrCreateSigningKey, signingKeySecretName, type SigningKeySecrets } from '../../src/oauthapp/signing-key.ts';
import { adminClient, type AdminClient } from '../support/kube.ts';
import { createTestNamespace, deleteTestNamespace } from '../support/namespaces.ts';

let admin: AdminClient;
const namespaces: string[] = [];

beforeAll(async () => {
  admin = await adminClient();
});

afterAll(async () => {
  await admin?.close();
  await Promise.all(namespaces.map(deleteTestNamespace));
});

const freshNamespace = async () => {
  const namespace = await createTestNamespace('signing-key');
  namespaces.push(namespace);
  return namespace;
};

/** The admin's client, counting apiserver calls and refusing to go on past `limit` (a runaway loop). */
function countingClient(kube: KubeClient, limit = 50): SigningKeySecrets & { calls: () => number } {
  let calls = 0;
  const count = () => {
    calls += 1;
    if (calls > limit) throw new Error(`more than ${limit} apiserver calls: a loop`);
  };
  return {
    calls: () => calls,
    getSecret: (namespace, name) => (count(), kube.getSecret(namespace, name)),
    createSecret: (namespace, secret) => (count(), kube.createSecret(namespace, secret)),
    replaceSecret: (namespace, secret) => (count(), kube.replaceSecret(namespace, secret)),
  };
}

const storedKey = async (namespace: string) => (await admin.kube.getSecret(namespace, signingKeySecretName))?.data?.key;

const brokenSecret = (namespace: string, data: Record<string, string> | undefined): Secret => ({
  metadata: { name: signingKeySecretName, namespace, labels: { 'backup.example.com/restored': 'true' } },
  type: 'Opaque',
  ...(data ? { data } : {}),
});

describe('loadOrCreateSigningKey', () => {
  it('creates a 32-byte key once and returns the same key afterwards', async () => {
    const namespace = await freshNamespace();
    const key = await loadOrCreateSigningKey(countingClient(admin.kube), namespace);
    expect(key).toHaveLength(32);
    expect(await storedKey(namespace)).toBe(key.toString('base64'));
    expect(await loadOrCreateSigningKey(countingClient(admin.kube), namespace)).toEqual(key);
  });

  it.each<[string, Record<string, string> | undefined]>([
    ['no data at all', undefined],
    ['data without key', { note: Buffer.from('restored from a backup').toString('base64') }],
    ['an empty key', { key: '' }],
    ['a key of the wrong length', { key: Buffer.from('short').toString('base64') }],
  ])('repairs a Secret with %s, keeping its other data and labels', async (_case, data) => {
    const namespace = await freshNamespace();
    await admin.kube.createSecret(namespace, brokenSecret(namespace, data));
    const client = countingClient(admin.kube);

    const key = await loadOrCreateSigningKey(client, namespace);

    expect(key).toHaveLength(32);
    const repaired = await admin.kube.getSecret(namespace, signingKeySecretName);
    expect(repaired?.data?.key).toBe(key.toString('base64'));
    if (data?.note) expect(repaired?.data?.note).toBe(data.note);
    expect(repaired?.metadata.labels).toMatchObject({ 'backup.example.com/restored': 'true' });
    // One read and one guarded update.
    expect(client.calls()).toBe(2);
    expect(await loadOrCreateSigningKey(countingClient(admin.kube), namespace)).toEqual(key);
  });

  it('gives replicas repairing the same broken Secret at once the same key (the guarded update lets one win)', async () => {
    const namespace = await freshNamespace();
    await admin.kube.createSecret(namespace, brokenSecret(namespace, undefined));
    const keys = await Promise.all(Array.from({ length: 4 }, () => loadOrCreateSigningKey(countingClient(admin.kube), namespace)));
    const stored = await storedKey(namespace);
    for (const key of keys) expect(key.toString('base64')).toBe(stored);
  });

  it('gives replicas starting at once with no Secret the same key', async () => {
    const namespace = await freshNamespace();
    const keys = await Promise.all(Array.from({ length: 4 }, () => loadOrCreateSigningKey(countingClient(admin.kube), namespace)));
    const stored = await storedKey(namespace);
    for (const key of keys) expect(key.toString('base64')).toBe(stored);
  });
});
