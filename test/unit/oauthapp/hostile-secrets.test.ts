// Secrets the operator reads or caches cannot make it copy or hold unbounded or foreign data: a
// referenced value over 64 KiB is refused with a condition that names the Secret and key (never the
// value), and a Secret labelled like a target by someone else is cached without its data.
import { describe, expect, it } from '@jest/globals';
import type { KubeClient } from '../../../src/kube/client.ts';
import { dataDigest, encodeData, type Secret } from '../../../src/kube/objects.ts';
import { ownTargetsOnly, targetSelector } from '../../../src/oauthapp/controller.ts';
import { maxSecretValueBytes, SourceSecrets } from '../../../src/oauthapp/source-secrets.ts';
import { deriveStatus } from '../../../src/oauthapp/status.ts';

const secret = (name: string, data: Record<string, string>, metadata: Partial<Secret['metadata']> = {}): Secret => ({
  metadata: { name, namespace: 'sales', resourceVersion: '1', ...metadata },
  type: 'Opaque',
  data: encodeData(data),
});

const sourcesOver = (secrets: Secret[]) => new SourceSecrets({ getSecret: async (_namespace: string, name: string) => secrets.find((s) => s.metadata.name === name) } as unknown as KubeClient, undefined);

describe('a referenced Secret value', () => {
  const canary = 'CANARY-'.padEnd(maxSecretValueBytes + 1, 'x');

  it('over 64 KiB is refused as SecretValueTooLarge, naming the Secret, the key and the size, not the value', async () => {
    const read = await sourcesOver([secret('crm-client', { client_secret: canary })]).read('sales', { name: 'crm-client', key: 'client_secret' });

    expect(read).toEqual({
      found: false,
      source: 'Secret sales/crm-client, key client_secret',
      reason: 'SecretValueTooLarge',
      problem: `Secret sales/crm-client, key client_secret, holds ${maxSecretValueBytes + 1} bytes; at most ${maxSecretValueBytes} are used`,
    });
  });

  it('of exactly 64 KiB is used', async () => {
    const value = 'y'.repeat(maxSecretValueBytes);

    expect(await sourcesOver([secret('crm-client', { client_secret: value })]).read('sales', { name: 'crm-client', key: 'client_secret' })).toMatchObject({ found: true, value });
  });

  it('too large makes ClientSecretValid=False with that reason, and Ready=False with ClientSecretInvalid', async () => {
    const clientSecret = await sourcesOver([secret('crm-client', { client_secret: canary })]).read('sales', { name: 'crm-client', key: 'client_secret' });
    const status = deriveStatus({ now: Date.now(), state: { refreshToken: 'refresh-one', record: {} }, clientSecret, targetSecretName: 'crm-credentials' });

    expect(status.conditions.find((condition) => condition.type === 'ClientSecretValid')).toMatchObject({ status: 'False', reason: 'SecretValueTooLarge' });
    expect(status.conditions.find((condition) => condition.type === 'Ready')).toMatchObject({ status: 'False', reason: 'ClientSecretInvalid' });
    expect(JSON.stringify(status)).not.toContain('CANARY');
  });

  it('too large in refreshTokenRef makes Authorized=False with that reason while no refresh token is held', () => {
    const status = deriveStatus({
      now: Date.now(),
      state: { record: {} },
      clientSecret: { found: true, value: 'client-secret', source: 'Secret sales/crm-client, key client_secret' },
      targetSecretName: 'crm-credentials',
      refreshTokenSourceProblem: { reason: 'SecretValueTooLarge', message: 'Secret sales/crm-seed, key refresh_token, holds 70000 bytes; at most 65536 are used' },
    });

    expect(status.conditions.find((condition) => condition.type === 'Authorized')).toMatchObject({ status: 'False', reason: 'SecretValueTooLarge' });
    expect(status.conditions.find((condition) => condition.type === 'Authorized')?.message).toContain('Secret sales/crm-seed, key refresh_token');
  });
});

describe('the target Secret cache', () => {
  const owner = { apiVersion: 'oauthapp.dev/v1alpha1', kind: 'OAuthApp', name: 'crm', uid: 'uid-crm', controller: true };

  it('selects only Secrets with both labels the operator puts on its targets', () => {
    expect(targetSelector).toBe('oauthapp.dev/role=credentials,app.kubernetes.io/managed-by=oauthapp-operator');
  });

  it('keeps a Secret an OAuthApp controls with its metadata, and its data as a digest', () => {
    const ours = secret('crm-credentials', { access_token: 'token' }, { ownerReferences: [owner], annotations: { note: 'ours' } });

    const kept = ownTargetsOnly(ours);

    expect(kept.metadata).toEqual(ours.metadata);
    expect(kept.data).toBeUndefined();
    expect(kept.dataDigest).toBe(dataDigest(ours.data));
    expect(JSON.stringify(kept)).not.toContain(encodeData({ access_token: 'token' }).access_token);
  });

  it.each([
    ['no owner', {}],
    ['an owner that is not an OAuthApp', { ownerReferences: [{ ...owner, apiVersion: 'apps/v1', kind: 'Deployment' }] }],
    ['an OAuthApp owner that is not its controller', { ownerReferences: [{ ...owner, controller: false }] }],
  ])('keeps only the metadata of a Secret with %s: no data, no annotations (a client-side apply copies the data there)', (_case, metadata) => {
    const foreign = secret('theirs', { password: 'CANARY-theirs' }, { labels: { 'oauthapp.dev/role': 'credentials' }, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"data":{"password":"CANARY"}}' }, ...metadata });

    const kept = ownTargetsOnly(foreign);

    expect(kept.data).toBeUndefined();
    expect(kept.metadata.annotations).toBeUndefined();
    expect(kept.metadata).toMatchObject({ name: 'theirs', namespace: 'sales', resourceVersion: '1', labels: { 'oauthapp.dev/role': 'credentials' } });
    expect(JSON.stringify(kept)).not.toContain('CANARY');
  });
});
