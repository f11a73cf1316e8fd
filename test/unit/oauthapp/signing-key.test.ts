// loadOrCreateSigningKey against apiservers that misbehave in ways the real one rarely does on
// cue: a writer that always gets there first, an immutable Secret. It ends with a typed error after
// a few attempts; it never loops. And the rotation on request (oauthapp.dev/rotate), with an
// in-memory Secret that has resourceVersions, and the periodic re-read that picks it up.
// (test/integration/signing-key.test.ts covers the real apiserver.)
import { describe, expect, it } from '@jest/globals';
import { KubeAPIError } from '../../../src/kube/errors.ts';
import type { Secret } from '../../../src/kube/objects.ts';
import { rotateAnnotation } from '../../../src/oauthapp/labels.ts';
import {
  lastRotateRequestAnnotation,
  loadOrCreateSigningKey,
  previousKeyField,
  rotatedAtAnnotation,
  signingKeySecretName,
  SigningKeyError,
  startSigningKeyRefresh,
  syncSigningKeys,
  type SigningKeys,
  type SigningKeySecrets,
} from '../../../src/oauthapp/signing-key.ts';

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

/** Secrets with resourceVersions: a write carrying an old one is a Conflict, as on the apiserver. */
class SecretsStandIn implements SigningKeySecrets {
  readonly writes: Secret[] = [];
  stored: Secret | undefined;
  private version = 10;
  /** Runs before the next replace lands (another replica's write, say). */
  beforeReplace: (() => void) | undefined;
  getCalls = 0;
  failGets = false;

  async getSecret() {
    this.getCalls += 1;
    if (this.failGets) throw new KubeAPIError('GET', path, 503, 'InternalError', 'etcd is unhappy');
    return this.stored && structuredClone(this.stored);
  }
  async createSecret(_namespace: string, secret: Secret) {
    if (this.stored) throw new KubeAPIError('POST', path, 409, 'AlreadyExists', 'already exists');
    return this.land(secret);
  }
  async replaceSecret(_namespace: string, secret: Secret) {
    const racing = this.beforeReplace;
    this.beforeReplace = undefined;
    racing?.();
    if (secret.metadata.resourceVersion !== this.stored?.metadata.resourceVersion) throw new KubeAPIError('PUT', path, 409, 'Conflict', 'the object has been modified');
    return this.land(secret);
  }
  /** An edit by someone else (kubectl annotate, another replica). */
  edit(change: (secret: Secret) => Secret) {
    if (!this.stored) throw new Error('no Secret');
    this.land(change(structuredClone(this.stored)));
  }
  private land(secret: Secret): Secret {
    const written = { ...structuredClone(secret), metadata: { ...secret.metadata, resourceVersion: String(++this.version) } };
    this.stored = written;
    this.writes.push(written);
    return structuredClone(written);
  }
}

const b64 = (bytes: Buffer) => bytes.toString('base64');
const keyA = Buffer.alloc(32, 1);
const at = Date.parse('2026-03-01T12:00:00.000Z');

/** A Secret holding keyA (and, optionally, annotations and a previous key). */
function standIn(annotations: Record<string, string> = {}, extraData: Record<string, string> = {}): SecretsStandIn {
  const secrets = new SecretsStandIn();
  secrets.stored = { metadata: { name: signingKeySecretName, namespace, resourceVersion: '7', annotations }, type: 'Opaque', data: { key: b64(keyA), ...extraData } };
  return secrets;
}

const annotate = (value: string) => (secret: Secret): Secret => ({ ...secret, metadata: { ...secret.metadata, annotations: { ...secret.metadata.annotations, [rotateAnnotation]: value } } });

describe('syncSigningKeys: rotation on request', () => {
  it('on a new oauthapp.dev/rotate value moves key to previous-key, writes a fresh key and records the value and the time, guarded by the resourceVersion it read', async () => {
    const secrets = standIn({ [rotateAnnotation]: '1767225600', 'team.example.com/owner': 'platform' }, { note: 'kept' });

    const synced = await syncSigningKeys(secrets, namespace, () => at);

    expect(secrets.writes).toHaveLength(1);
    const written = secrets.stored;
    expect(written?.data?.[previousKeyField]).toBe(b64(keyA));
    expect(written?.data?.key).not.toBe(b64(keyA));
    expect(Buffer.from(written?.data?.key ?? '', 'base64')).toHaveLength(32);
    expect(written?.data?.note).toBe('kept');
    expect(written?.metadata.annotations).toEqual({
      [rotateAnnotation]: '1767225600',
      'team.example.com/owner': 'platform',
      [lastRotateRequestAnnotation]: '1767225600',
      [rotatedAtAnnotation]: '2026-03-01T12:00:00.000Z',
    });
    expect(synced.wrote).toEqual({ kind: 'rotated', request: '1767225600' });
    expect(b64(synced.keys.key)).toBe(written?.data?.key);
    expect(synced.keys.previous).toEqual({ key: keyA, rotatedAt: at });
  });

  it('drops the key before the previous one: a second rotation keeps two keys', async () => {
    const secrets = standIn({ [rotateAnnotation]: 'one' });
    const first = await syncSigningKeys(secrets, namespace, () => at);
    secrets.edit(annotate('two'));

    const second = await syncSigningKeys(secrets, namespace, () => at + 1000);

    expect(second.keys.previous).toEqual({ key: first.keys.key, rotatedAt: at + 1000 });
    expect(Object.values(secrets.stored?.data ?? {})).not.toContain(b64(keyA));
  });

  it.each([
    ['no annotation', {}],
    ['an empty value', { [rotateAnnotation]: '' }],
    ['a value acted on already', { [rotateAnnotation]: 'v1', [lastRotateRequestAnnotation]: 'v1' }],
  ])('does nothing with %s', async (_case, annotations) => {
    const secrets = standIn(annotations);
    const synced = await syncSigningKeys(secrets, namespace, () => at);
    expect(secrets.writes).toHaveLength(0);
    expect(synced).toEqual({ keys: { key: keyA } });
  });

  it('does not act on a value longer than 256 characters, and says why', async () => {
    const secrets = standIn({ [rotateAnnotation]: 'x'.repeat(257) });
    const synced = await syncSigningKeys(secrets, namespace, () => at);
    expect(secrets.writes).toHaveLength(0);
    expect(synced.pendingRotation).toMatch(/257 characters long; at most 256/);
  });

  it('after losing the race to another replica, reads its rotation and does not rotate again', async () => {
    const secrets = standIn({ [rotateAnnotation]: 'v1' });
    const winnersKey = Buffer.alloc(32, 3);
    secrets.beforeReplace = () =>
      secrets.edit((secret) => ({
        ...secret,
        metadata: { ...secret.metadata, annotations: { ...secret.metadata.annotations, [lastRotateRequestAnnotation]: 'v1', [rotatedAtAnnotation]: new Date(at - 5).toISOString() } },
        data: { key: b64(winnersKey), [previousKeyField]: b64(keyA) },
      }));

    const synced = await syncSigningKeys(secrets, namespace, () => at);

    expect(synced.wrote).toBeUndefined();
    expect(synced.keys).toEqual({ key: winnersKey, previous: { key: keyA, rotatedAt: at - 5 } });
    expect(secrets.writes).toHaveLength(1); // the winner's only
  });

  it('accepts no previous key without a readable rotation time, nor one that is not 32 bytes', async () => {
    for (const [annotations, previous] of [
      [{}, b64(Buffer.alloc(32, 2))],
      [{ [rotatedAtAnnotation]: 'yesterday' }, b64(Buffer.alloc(32, 2))],
      [{ [rotatedAtAnnotation]: new Date(at).toISOString() }, b64(Buffer.alloc(16, 2))],
    ] as const) {
      const synced = await syncSigningKeys(standIn(annotations, { [previousKeyField]: previous }), namespace, () => at);
      expect(synced.keys).toEqual({ key: keyA });
    }
  });

  it('keeps the current keys and says why when the Secret cannot be rotated (immutable)', async () => {
    const secrets = standIn({ [rotateAnnotation]: 'v1' });
    secrets.replaceSecret = () => Promise.reject(new KubeAPIError('PUT', path, 422, 'Invalid', 'field is immutable when `immutable` is set'));
    const synced = await syncSigningKeys(secrets, namespace, () => at);
    expect(synced.keys).toEqual({ key: keyA });
    expect(synced.pendingRotation).toMatch(/could not be rotated.*immutable/);
  });
});

describe('startSigningKeyRefresh at start', () => {
  it('waits out an apiserver answering 429 and 503 instead of failing the start (found by the randomized run)', async () => {
    const secrets = standIn();
    const refusals = [new KubeAPIError('GET', path, 429, 'TooManyRequests', 'slow down'), new KubeAPIError('GET', path, 503, 'Unknown', 'unavailable')];
    const getSecret = secrets.getSecret.bind(secrets);
    secrets.getSecret = async (...args) => {
      const refusal = refusals.shift();
      if (refusal) throw refusal;
      return getSecret(...args);
    };

    const refresh = await startSigningKeyRefresh({ kube: secrets, namespace, now: Date.now, onChange: () => undefined, onProblem: () => undefined, startRetries: [1, 1, 1] });
    try {
      expect(refresh.keys).toEqual({ key: keyA });
      expect(refusals).toEqual([]);
    } finally {
      refresh.stop();
    }
  });

  it('still fails the start on an answer retrying cannot change (403)', async () => {
    const secrets = standIn();
    secrets.getSecret = async () => {
      throw new KubeAPIError('GET', path, 403, 'Forbidden', 'forbidden');
    };

    await expect(startSigningKeyRefresh({ kube: secrets, namespace, now: Date.now, onChange: () => undefined, onProblem: () => undefined, startRetries: [1] })).rejects.toMatchObject({ status: 403 });
  });
});

describe('startSigningKeyRefresh', () => {
  const eventually = async (what: string, check: () => boolean) => {
    for (let tries = 0; tries < 1000; tries += 1) {
      if (check()) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error(`never: ${what}`);
  };

  it('re-reads the Secret, rotates on request and reports the new keys; a change by another writer too', async () => {
    const secrets = standIn();
    const changes: Array<{ keys: SigningKeys; rotatedFor?: string | undefined }> = [];
    const refresh = await startSigningKeyRefresh({ kube: secrets, namespace, now: Date.now, intervalMs: 20, onChange: (keys, { rotatedFor }) => changes.push({ keys, rotatedFor }), onProblem: () => undefined });
    try {
      expect(refresh.keys).toEqual({ key: keyA });
      secrets.edit(annotate('v1'));
      await eventually('the rotation', () => changes.length === 1);
      expect(changes[0]?.rotatedFor).toBe('v1');
      expect(refresh.keys.previous?.key).toEqual(keyA);
      expect(b64(refresh.keys.key)).toBe(secrets.stored?.data?.key);

      // Another replica rotated (v2): this one only reads it.
      const theirs = Buffer.alloc(32, 4);
      secrets.edit((secret) => ({
        ...secret,
        metadata: { ...secret.metadata, annotations: { [rotateAnnotation]: 'v2', [lastRotateRequestAnnotation]: 'v2', [rotatedAtAnnotation]: new Date().toISOString() } },
        data: { key: b64(theirs), [previousKeyField]: secret.data?.key ?? '' },
      }));
      await eventually('the other replica\'s keys', () => changes.length === 2);
      expect(changes[1]?.rotatedFor).toBeUndefined();
      expect(refresh.keys.key).toEqual(theirs);
    } finally {
      refresh.stop();
    }
  });

  it('counts the grace from no later than it first saw the previous key (a future rotated-at cannot stretch it)', async () => {
    const seenAt = Date.now();
    const secrets = standIn({ [rotatedAtAnnotation]: new Date(seenAt + 3_600_000).toISOString() }, { [previousKeyField]: b64(Buffer.alloc(32, 2)) });
    const refresh = await startSigningKeyRefresh({ kube: secrets, namespace, now: Date.now, intervalMs: 20, onChange: () => undefined, onProblem: () => undefined });
    try {
      const rotatedAt = refresh.keys.previous?.rotatedAt ?? Number.NaN;
      expect(rotatedAt).toBeGreaterThanOrEqual(seenAt);
      expect(rotatedAt).toBeLessThan(seenAt + 3_600_000);
    } finally {
      refresh.stop();
    }
  });

  it('keeps the keys in use when a read fails, and says so once', async () => {
    const secrets = standIn();
    const problems: string[] = [];
    const refresh = await startSigningKeyRefresh({ kube: secrets, namespace, now: Date.now, intervalMs: 20, onChange: () => undefined, onProblem: (message) => problems.push(message) });
    try {
      secrets.failGets = true;
      const reads = secrets.getCalls;
      await eventually('three failed reads', () => secrets.getCalls >= reads + 3);
      expect(refresh.keys).toEqual({ key: keyA });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/the keys in use stay/);
    } finally {
      refresh.stop();
    }
  });
});
