// How the reconciler takes an OAuthInstallation through its end: a deleted one first stores any
// refresh result it holds, then revokes, then removes its Secret and state; not while a refresh is
// out; an uninstalled one loses its Secret and refreshes nothing; one whose app is gone says so.
// The collaborators are stand-ins that record what was called, in order.
import { describe, expect, it } from '@jest/globals';
import type { KubeObject } from '../../../src/kube/objects.ts';
import type { ObjectCache } from '../../../src/kube/informer.ts';
import { createLogger } from '../../../src/log.ts';
import { installationKey } from '../../../src/oauthapp/keys.ts';
import { finalizerName } from '../../../src/oauthapp/labels.ts';
import { Reconciler, type ReconcilerDependencies } from '../../../src/oauthapp/reconciler.ts';
import type { AppState } from '../../../src/oauthapp/state.ts';
import type { DerivedStatus } from '../../../src/oauthapp/status.ts';

const now = Date.parse('2026-12-01T12:00:00Z');
const key = installationKey('sales', 'crm-1234');

const app = {
  apiVersion: 'oauthapp.dev/v1alpha1',
  kind: 'OAuthApp',
  metadata: { namespace: 'sales', name: 'crm', uid: 'app-uid', generation: 1, resourceVersion: '7', finalizers: [finalizerName] },
  spec: {
    provider: 'pipedrive',
    installations: 'multiple',
    revokeOnDelete: true,
    clientId: 'client-1',
    clientSecretRef: { name: 'crm-client', key: 'client_secret' },
    redirectURI: 'https://ops.example.com/oauth/callback/crm',
    target: { includeRefreshToken: false },
  },
} as KubeObject;

const installation = (metadata: Partial<KubeObject['metadata']> = {}) =>
  ({
    apiVersion: 'oauthapp.dev/v1alpha1',
    kind: 'OAuthInstallation',
    metadata: { namespace: 'sales', name: 'crm-1234', uid: 'installation-uid', generation: 1, resourceVersion: '9', finalizers: [finalizerName], ...metadata },
    spec: { app: 'crm', companyID: '1234' },
  }) as KubeObject;

const granted: AppState = {
  refreshToken: 'refresh-1',
  tokens: { accessToken: 'access-1', tokenType: 'Bearer', expiresAt: new Date(now + 3_600_000).toISOString() },
  record: { refreshAt: new Date(now + 1_800_000).toISOString(), installation: { installedAt: new Date(now - 60_000).toISOString() } },
};

function setUp({ object, state = granted, appPresent = true, refreshOut = false, stateWritten = true }: { object: KubeObject; state?: AppState; appPresent?: boolean; refreshOut?: boolean; stateWritten?: boolean }) {
  const calls: string[] = [];
  const statuses: DerivedStatus[] = [];
  const stored = { state, resourceVersion: stateWritten ? '3' : undefined };
  const dependencies = {
    apps: { get: () => (appPresent ? app : undefined) } as unknown as ObjectCache<KubeObject>,
    sources: { read: async () => ({ found: true, value: 'client-secret', source: 'Secret sales/crm-client key client_secret' }) },
    states: {
      flushUnsaved: async () => void calls.push('flush held answer'),
      load: () => stored,
      delete: async () => void calls.push('delete state'),
    },
    refresher: { inFlight: () => refreshOut, claimNeverSent: () => false },
    targets: {
      ensure: async () => void calls.push('write Secret'),
      remove: async () => void calls.push('delete Secret'),
    },
    seeds: { remember: async () => undefined },
    kube: { setFinalizers: async (_kind: string, _namespace: string, _name: string, finalizers: string[]) => (calls.push(`finalizers [${finalizers.join(',')}]`), object) },
    publicApps: {
      installations: { get: () => object, observeWrite: () => undefined },
      status: { write: async (_object: KubeObject, status: DerivedStatus) => void statuses.push(status) },
      revoke: async () => void calls.push('revoke'),
    },
    now: () => now,
    logger: createLogger({ level: 'silent' }),
  } as unknown as ReconcilerDependencies;
  return { reconciler: new Reconciler(dependencies), calls, statuses };
}

const deleted = () => installation({ deletionTimestamp: new Date(now - 1_000).toISOString() });

describe('a deleted installation', () => {
  it('stores a held refresh result, revokes, deletes its Secret and state, then lets go of its finalizer', async () => {
    const { reconciler, calls } = setUp({ object: deleted() });

    await expect(reconciler.reconcile(key)).resolves.toEqual({});

    expect(calls).toEqual(['flush held answer', 'revoke', 'delete Secret', 'delete state', 'finalizers []']);
  });

  it('waits while a refresh is out: the answer may carry the refresh token to revoke', async () => {
    const { reconciler, calls } = setUp({ object: deleted(), refreshOut: true });

    await expect(reconciler.reconcile(key)).resolves.toMatchObject({ requeueAfterMs: 1_000 });

    expect(calls).toEqual([]);
  });
});

describe('an uninstalled installation', () => {
  it('deletes its Secret, refreshes nothing, and says Uninstalled', async () => {
    const uninstalled: AppState = { record: { installation: { installedAt: new Date(now - 60_000).toISOString(), uninstalledAt: new Date(now - 1_000).toISOString() } } };
    const { reconciler, calls, statuses } = setUp({ object: installation(), state: uninstalled });

    await expect(reconciler.reconcile(key)).resolves.toEqual({});

    expect(calls).toEqual(['flush held answer', 'delete Secret']);
    expect(statuses.at(-1)?.conditions.find((condition) => condition.type === 'Ready')).toMatchObject({ status: 'False', reason: 'Uninstalled' });
  });
});

describe('a new installation whose grant the callback has not stored yet', () => {
  const noGrant: AppState = { record: {} };

  it('writes nothing (no Pending status, no Event) and looks again when its grace ends', async () => {
    const { reconciler, calls, statuses } = setUp({ object: installation({ creationTimestamp: new Date(now - 2_000).toISOString() }), state: noGrant, stateWritten: false });

    await expect(reconciler.reconcile(key)).resolves.toMatchObject({ requeueAfterMs: 28_000 });

    expect(calls.filter((call) => call !== 'flush held answer')).toEqual([]);
    expect(statuses).toEqual([]);
  });

  it('says Pending once the grace is over', async () => {
    const { reconciler, statuses } = setUp({ object: installation({ creationTimestamp: new Date(now - 31_000).toISOString() }), state: noGrant, stateWritten: false });

    await expect(reconciler.reconcile(key)).resolves.toEqual({});

    expect(statuses.at(-1)?.conditions.find((condition) => condition.type === 'Ready')).toMatchObject({ status: 'False', reason: 'Pending' });
  });
});

describe('an installation whose app is gone', () => {
  it('says AppNotFound and writes nothing else', async () => {
    const { reconciler, calls, statuses } = setUp({ object: installation(), appPresent: false });

    await expect(reconciler.reconcile(key)).resolves.toEqual({});

    expect(calls).toEqual([]);
    expect(statuses.at(-1)?.conditions[0]).toMatchObject({ type: 'Ready', status: 'False', reason: 'AppNotFound' });
  });
});
