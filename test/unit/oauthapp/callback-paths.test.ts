// Which public app a state-less request (a Marketplace install, Pipedrive's uninstall callback) is
// for: the oldest public app (installations: multiple) whose redirect URI has the request's path.
// The apps come from an in-memory cache that plays the informer's events.
import { describe, expect, it } from '@jest/globals';
import type { OAuthApp } from '../../../src/api/oauthapp.ts';
import type { KubeObject } from '../../../src/kube/objects.ts';
import { CallbackPaths, callbackPathOf } from '../../../src/oauthapp/callback-paths.ts';
import { MemoryCache } from '../../support/memory-cache.ts';

const host = 'https://ops.example.com';

interface AppOptions {
  name: string;
  uid?: string;
  createdAt?: string;
  path?: string;
  installations?: 'single' | 'multiple';
  deletionTimestamp?: string;
}

/** An OAuthApp as the cache holds it (the apiserver's JSON, creationTimestamp included). */
function publicApp({ name, uid = `uid-${name}`, createdAt = '2026-11-01T00:00:00Z', path = '/oauth/callback/crm', installations = 'multiple', deletionTimestamp }: AppOptions): OAuthApp {
  return {
    apiVersion: 'oauthapp.dev/v1alpha1',
    kind: 'OAuthApp',
    metadata: { namespace: 'sales', name, uid, creationTimestamp: createdAt, ...(deletionTimestamp ? { deletionTimestamp } : {}) },
    spec: {
      provider: 'pipedrive',
      clientId: `client-${name}`,
      clientSecretRef: { name: `${name}-client`, key: 'client_secret' },
      redirectURI: `${host}${path}`,
      installations,
      revokeOnDelete: true,
      target: { includeRefreshToken: false },
    },
  } as OAuthApp;
}

function setUp(...apps: OAuthApp[]) {
  const cache = new MemoryCache<KubeObject>();
  const paths = new CallbackPaths(cache);
  for (const app of apps) cache.put(app);
  return { cache, paths, nameAt: (path: string) => paths.appAt(path)?.metadata.name };
}

const older = publicApp({ name: 'crm-sync', createdAt: '2026-11-01T00:00:00Z' });
const newer = publicApp({ name: 'crm-sync-2', createdAt: '2026-11-02T00:00:00Z' });

describe('a state-less request', () => {
  it('goes to the public app whose redirect URI has its path', () => {
    const { nameAt } = setUp(publicApp({ name: 'crm-sync', path: '/oauth/callback/crm' }), publicApp({ name: 'billing', path: '/oauth/callback/billing' }));
    expect(nameAt('/oauth/callback/crm')).toBe('crm-sync');
    expect(nameAt('/oauth/callback/billing')).toBe('billing');
  });

  it('goes nowhere on a path no public app claims', () => {
    const { nameAt } = setUp(publicApp({ name: 'crm-sync', path: '/oauth/callback/crm' }));
    expect(nameAt('/oauth/callback/other')).toBeUndefined();
    expect(nameAt('/oauth/callback')).toBeUndefined();
  });

  it('goes nowhere on the path of a single app (installations: single), which claims nothing', () => {
    const { paths, nameAt } = setUp(publicApp({ name: 'one-grant', installations: 'single' }));
    expect(nameAt('/oauth/callback/crm')).toBeUndefined();
    expect(paths.takenFrom(newer)).toBeUndefined();
  });

  it('does not go to a public app being deleted (deletionTimestamp set)', () => {
    const { nameAt } = setUp(publicApp({ name: 'crm-sync', deletionTimestamp: '2026-11-27T08:00:00Z' }));
    expect(nameAt('/oauth/callback/crm')).toBeUndefined();
  });

  it('stops going to a public app once it is marked for deletion', () => {
    const { cache, nameAt } = setUp(older);
    expect(nameAt('/oauth/callback/crm')).toBe('crm-sync');
    cache.put({ ...older, metadata: { ...older.metadata, deletionTimestamp: '2026-11-27T08:00:00Z' } });
    expect(nameAt('/oauth/callback/crm')).toBeUndefined();
  });
});

describe('two public apps on one path', () => {
  it('the older receives the requests, whichever the cache saw first', () => {
    expect(setUp(older, newer).nameAt('/oauth/callback/crm')).toBe('crm-sync');
    expect(setUp(newer, older).nameAt('/oauth/callback/crm')).toBe('crm-sync');
  });

  it("the newer's takenFrom names the older and the path; the older's is undefined", () => {
    const { paths } = setUp(newer, older);
    expect(paths.takenFrom(newer)).toContain('OAuthApp sales/crm-sync already receives the installs and uninstalls sent to /oauth/callback/crm');
    expect(paths.takenFrom(older)).toBeUndefined();
  });

  it('with the same creationTimestamp, the lower uid wins, the same on every replica', () => {
    const a = publicApp({ name: 'a', uid: 'uid-b', createdAt: '2026-11-01T00:00:00Z' });
    const b = publicApp({ name: 'b', uid: 'uid-a', createdAt: '2026-11-01T00:00:00Z' });
    expect(setUp(a, b).nameAt('/oauth/callback/crm')).toBe('b');
    expect(setUp(b, a).nameAt('/oauth/callback/crm')).toBe('b');
  });

  it('the newer receives them once the older is deleted', () => {
    const { cache, paths, nameAt } = setUp(older, newer);
    cache.remove(older.metadata.namespace, older.metadata.name);
    expect(nameAt('/oauth/callback/crm')).toBe('crm-sync-2');
    expect(paths.takenFrom(newer)).toBeUndefined();
  });

  it('the newer receives them once the older moves to another path', () => {
    const { cache, paths, nameAt } = setUp(older, newer);
    cache.put(publicApp({ name: 'crm-sync', createdAt: '2026-11-01T00:00:00Z', path: '/oauth/callback/crm-v2' }));
    expect(nameAt('/oauth/callback/crm')).toBe('crm-sync-2');
    expect(paths.takenFrom(newer)).toBeUndefined();
  });
});

describe("changing an app's redirectURI", () => {
  it('moves its claim: the new path reaches it, the old one nothing', () => {
    const { cache, nameAt } = setUp(older);
    cache.put(publicApp({ name: 'crm-sync', createdAt: '2026-11-01T00:00:00Z', path: '/oauth/callback/crm-v2' }));
    expect(nameAt('/oauth/callback/crm-v2')).toBe('crm-sync');
    expect(nameAt('/oauth/callback/crm')).toBeUndefined();
  });

  it('onto a path an older app claims makes it the newer there', () => {
    const { cache, paths, nameAt } = setUp(older, publicApp({ name: 'crm-sync-2', createdAt: '2026-11-02T00:00:00Z', path: '/oauth/callback/other' }));
    expect(nameAt('/oauth/callback/other')).toBe('crm-sync-2');
    cache.put(newer);
    expect(nameAt('/oauth/callback/crm')).toBe('crm-sync');
    expect(nameAt('/oauth/callback/other')).toBeUndefined();
    expect(paths.takenFrom(newer)).toContain('sales/crm-sync ');
  });
});

describe('paths', () => {
  it('compare after WHATWG URL normalization: dot segments, percent-encoding of non-ASCII, the query dropped', () => {
    const { nameAt } = setUp(publicApp({ name: 'cafe', path: '/oauth/callback/café?from=marketplace' }));
    expect(nameAt('/oauth/callback/caf%C3%A9')).toBe('cafe');
    expect(nameAt('/oauth/callback/x/../caf%C3%A9')).toBe('cafe');
    expect(nameAt('/oauth/callback/./café')).toBe('cafe');
  });

  it('differ by a percent-encoded unreserved character, which WHATWG URL leaves encoded (%7E is not ~)', () => {
    expect(callbackPathOf('/oauth/callback/%7Eteam')).not.toBe(callbackPathOf(`${host}/oauth/callback/~team`));
    const { nameAt } = setUp(publicApp({ name: 'team', path: '/oauth/callback/~team' }));
    expect(nameAt('/oauth/callback/~team')).toBe('team');
    expect(nameAt('/oauth/callback/%7Eteam')).toBeUndefined();
  });

  it('differ by a trailing slash', () => {
    const { nameAt } = setUp(publicApp({ name: 'crm-sync', path: '/oauth/callback/crm' }));
    expect(nameAt('/oauth/callback/crm/')).toBeUndefined();
  });
});
