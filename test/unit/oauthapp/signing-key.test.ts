// loadOrCreateSigningKey against apiservers that misbehave in ways the real one rarely does on
// cue: a writer that always gets there first, an immutable Secret. It ends with a typed error after
// a few attempts; it never loops. (test/integration/signing-key.test.ts covers the real apiserver.)
import { describe, expect, it } from '@jest/globals';
import { KubeAPIError } from '../../../src/kube/errors.ts';
import type { Secret } from '../../../src/kube/objects.ts';
import { loadOrCreateSigningKey, signingKeySecretName, SigningKeyError, type SigningKeySecrets } from '../../../src/oauthapp/signing-key.ts';

const namespace = 'oauthapp-system';
const path = `/api/v1/namespaces/${namespace}/secrets/${signingKeySecretName}`;
const keyless: Secret = { metadata: { name: signingKeySecretName, namespace, resourceVersion: '7' }, type: 'Opaque', data: {} };

function fake(replace: () => Promise<Secret>): SigningKeySecrets & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    getSecret: async () => {
      calls.push('get');
      return keyless;
    },
    createSecret: async () => {
      calls.push('create');
      throw new KubeAPIError('POST', path, 409, 'AlreadyExists', 'already exists');
    },
    replaceSecret: async () => {
      calls.push('replace');
      return replace();
    },
  };
}

describe('loadOrCreateSigningKey', () => {
  it('gives up with a SigningKeyError when its repair keeps losing to another writer', async () => {
    const client = fake(() => Promise.reject(new KubeAPIError('PUT', path, 409, 'Conflict', 'the object has been modified')));
    const error = await loadOrCreateSigningKey(client, namespace).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SigningKeyError);
    expect((error as SigningKeyError).code).toBe('SIGNING_KEY');
    expect((error as Error).message).toContain(`${namespace}/${signingKeySecretName}`);
    expect(client.calls.length).toBeLessThanOrEqual(10);
    expect(client.calls).not.toContain('create');
  });

  it('says to delete a Secret that cannot be updated (immutable)', async () => {
    const client = fake(() => Promise.reject(new KubeAPIError('PUT', path, 422, 'Invalid', 'field is immutable when `immutable` is set')));
    await expect(loadOrCreateSigningKey(client, namespace)).rejects.toThrow(/delete it/);
    expect(client.calls).toEqual(['get', 'replace']);
  });

  it('passes other apiserver errors on as they are', async () => {
    const client = fake(() => Promise.reject(new KubeAPIError('PUT', path, 403, 'Forbidden', 'no update')));
    await expect(loadOrCreateSigningKey(client, namespace)).rejects.toBeInstanceOf(KubeAPIError);
  });

  it('writes the repair with the resourceVersion it read', async () => {
    let written: Secret | undefined;
    const client = fake(() => Promise.resolve(keyless));
    client.replaceSecret = async (_namespace, secret) => {
      written = secret;
      return secret;
    };
    const key = await loadOrCreateSigningKey(client, namespace);
    expect(written?.metadata.resourceVersion).toBe('7');
    expect(written?.data?.key).toBe(key.toString('base64'));
  });
});
