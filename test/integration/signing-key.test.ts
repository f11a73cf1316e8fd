// The Secret holding the key that signs OAuth `state` values, on the real apiserver: made once,
// shared by replicas, and repaired when it exists without a usable key (issue 10: a Secret
// without `key` used to send the operator round get → create → AlreadyExists → get forever).
// Rotated on request (issue 12: `kubectl annotate ... oauthapp.dev/rotate=...`), by exactly one
// of the replicas that see the request at once.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeClient } from '../../src/kube/client.ts';
import type { Secret } from '../../src/kube/objects.ts';
import { rotateAnnotation } from '../../src/oauthapp/labels.ts';
import { lastRotateRequestAnnotation, loadOrCreateSigningKey, previousKeyField, rotatedAtAnnotation, signingKeySecretName, syncSigningKeys, type SigningKeySecrets } from '../../src/oauthapp/signing-key.ts';
import { kubectlOK } from '../support/kubectl.ts';
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

describe('a rotation requested with kubectl annotate', () => {
  it('is performed by exactly one of the replicas that see it at once: one new key, the old one kept as previous-key', async () => {
    const namespace = await freshNamespace();
    const original = await loadOrCreateSigningKey(countingClient(admin.kube), namespace);
    await kubectlOK(['-n', namespace, 'annotate', 'secret', signingKeySecretName, `${rotateAnnotation}=1767225600`, '--overwrite']);

    const replicas = await Promise.all(Array.from({ length: 4 }, () => syncSigningKeys(countingClient(admin.kube), namespace)));

    expect(replicas.filter((replica) => replica.wrote?.kind === 'rotated')).toHaveLength(1);
    const stored = await admin.kube.getSecret(namespace, signingKeySecretName);
    const key = stored?.data?.key ?? '';
    expect(key).not.toBe(original.toString('base64'));
    expect(Buffer.from(key, 'base64')).toHaveLength(32);
    expect(stored?.data?.[previousKeyField]).toBe(original.toString('base64'));
    expect(stored?.metadata.annotations).toMatchObject({ [rotateAnnotation]: '1767225600', [lastRotateRequestAnnotation]: '1767225600', [rotatedAtAnnotation]: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
    for (const replica of replicas) {
      expect(replica.keys.key.toString('base64')).toBe(key);
      expect(replica.keys.previous?.key).toEqual(original);
    }

    // As the runbook checks it: the value acted on equals the one requested.
    const jsonpath = `jsonpath={.metadata.annotations.${lastRotateRequestAnnotation.replaceAll('.', '\\.')}}`;
    expect(jsonpath).toBe('jsonpath={.metadata.annotations.oauthapp\\.dev/last-rotate-request}');
    expect(await kubectlOK(['-n', namespace, 'get', 'secret', signingKeySecretName, '-o', jsonpath])).toBe('1767225600');

    // Read again, the request acted on is not acted on twice.
    const again = await syncSigningKeys(countingClient(admin.kube), namespace);
    expect(again.wrote).toBeUndefined();
    expect((await admin.kube.getSecret(namespace, signingKeySecretName))?.metadata.resourceVersion).toBe(stored?.metadata.resourceVersion);
  });

  it('rotated twice, keeps only the last two keys: the first one is gone (emergency rotation)', async () => {
    const namespace = await freshNamespace();
    const original = await loadOrCreateSigningKey(countingClient(admin.kube), namespace);
    await kubectlOK(['-n', namespace, 'annotate', 'secret', signingKeySecretName, `${rotateAnnotation}=first`, '--overwrite']);
    const first = await syncSigningKeys(countingClient(admin.kube), namespace);
    await kubectlOK(['-n', namespace, 'annotate', 'secret', signingKeySecretName, `${rotateAnnotation}=second`, '--overwrite']);
    const second = await syncSigningKeys(countingClient(admin.kube), namespace);

    expect(second.keys.previous?.key).toEqual(first.keys.key);
    const data = (await admin.kube.getSecret(namespace, signingKeySecretName))?.data ?? {};
    expect(Object.values(data)).not.toContain(original.toString('base64'));
  });
});
