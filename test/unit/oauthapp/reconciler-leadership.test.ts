// A replica that stops leading in the middle of a reconcile writes nothing more (issue 10,
// sequence 9): not the target Secret, not a rollout, not status (an unguarded status write from a
// former leader would roll back the new leader's conditions and lastRotateRequest). The
// reconciler's other collaborators are stand-ins that record what was written.
import { describe, expect, it } from '@jest/globals';
import { NotLeadingError } from '../../../src/controller/errors.ts';
import type { KubeObject } from '../../../src/kube/objects.ts';
import type { ObjectCache } from '../../../src/kube/informer.ts';
import { createLogger } from '../../../src/log.ts';
import { finalizerName } from '../../../src/oauthapp/labels.ts';
import { Reconciler, type ReconcilerDependencies } from '../../../src/oauthapp/reconciler.ts';
import { fingerprint, type AppState } from '../../../src/oauthapp/state.ts';

const now = Date.parse('2026-12-01T12:00:00Z');
const clientSecret = 'client-secret';
const app: KubeObject = {
  apiVersion: 'oauthapp.dev/v1alpha1',
  kind: 'OAuthApp',
  metadata: { namespace: 'sales', name: 'crm-sync', uid: '5d1e0f8a-0c3b-4f7e-9a51-2b6c7d8e9f00', generation: 1, resourceVersion: '7', finalizers: [finalizerName] },
  spec: {
    provider: 'pipedrive',
    clientId: 'client-1',
    clientSecretRef: { name: 'crm-sync-client', key: 'client_secret' },
    redirectURI: 'https://ops.example.com/oauth/callback',
    target: { includeRefreshToken: false },
  },
} as KubeObject;

/** A healthy app: a valid token, the client secret verified, the next refresh in half an hour. */
const healthy: AppState = {
  refreshToken: 'refresh-1',
  tokens: { accessToken: 'access-1', tokenType: 'Bearer', expiresAt: new Date(now + 3_600_000).toISOString() },
  record: { refreshAt: new Date(now + 1_800_000).toISOString(), verifiedClientSecretFingerprint: fingerprint(clientSecret) },
};

function setUp(whileReadingSecret: () => void) {
  const writes: string[] = [];
  const stored = { state: healthy, resourceVersion: '3' };
  const dependencies = {
    apps: { get: () => app } as unknown as ObjectCache<KubeObject>,
    sources: {
      read: async () => {
        whileReadingSecret();
        return { found: true, value: clientSecret, source: 'Secret sales/crm-sync-client key client_secret' };
      },
    },
    states: {
      flushUnsaved: async () => undefined,
      load: () => stored,
      save: async () => {
        writes.push('state');
        return stored;
      },
    },
    refresher: { inFlight: () => false, claimNeverSent: () => false },
    targets: {
      ensure: async () => {
        writes.push('target');
        return undefined;
      },
    },
    rollouts: {
      reconcile: async () => {
        writes.push('rollout');
        return stored;
      },
    },
    status: { write: async () => void writes.push('status') },
    now: () => now,
    logger: createLogger({ level: 'silent' }),
  } as unknown as ReconcilerDependencies;
  return { reconciler: new Reconciler(dependencies), writes };
}

describe('a reconcile whose replica stops leading half-way', () => {
  it('writes the target Secret, rollouts and status while it leads', async () => {
    const { reconciler, writes } = setUp(() => undefined);

    await reconciler.reconcile('sales/crm-sync', undefined, new AbortController().signal);

    expect(writes).toEqual(['target', 'rollout', 'status']);
  });

  it('stops before its next write, with NotLeadingError, once leadership ends', async () => {
    const leadership = new AbortController();
    const { reconciler, writes } = setUp(() => leadership.abort());

    await expect(reconciler.reconcile('sales/crm-sync', undefined, leadership.signal)).rejects.toBeInstanceOf(NotLeadingError);

    expect(writes).toEqual([]);
  });
});
