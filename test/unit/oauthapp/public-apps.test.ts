// A public app's installations when they, or the app, are deleted: each grant is revoked at the
// provider (RFC 7009) first, and a deleted app deletes its installations and waits for them. The
// real StateStore holds the installation's grant in an in-memory stand-in for the state Secrets;
// the provider, the apiserver's OAuthInstallations and the Event recorder are fakes.
import { describe, expect, it } from '@jest/globals';
import type { OAuthApp } from '../../../src/api/oauthapp.ts';
import type { OAuthInstallation } from '../../../src/api/oauthinstallation.ts';
import { noCache } from '../../../src/kube/informer.ts';
import type { KubeObject, Secret } from '../../../src/kube/objects.ts';
import { TokenRequestError } from '../../../src/oauth/errors.ts';
import type { RevocationRequest } from '../../../src/oauth/token-request.ts';
import type { Authorizations } from '../../../src/oauthapp/authorization.ts';
import { CallbackPaths } from '../../../src/oauthapp/callback-paths.ts';
import { installationIdentityName } from '../../../src/oauthapp/keys.ts';
import { PublicApps, RevocationFailedError } from '../../../src/oauthapp/public-apps.ts';
import type { SourceSecrets } from '../../../src/oauthapp/source-secrets.ts';
import { StateStore } from '../../../src/oauthapp/state-store.ts';
import type { StatusWriter } from '../../../src/oauthapp/status-writer.ts';
import type { AppIdentity, AppState } from '../../../src/oauthapp/state.ts';
import { MemoryCache } from '../../support/memory-cache.ts';
import { SecretsStandIn } from '../../support/secrets-stand-in.ts';

const now = Date.parse('2026-11-27T08:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

function publicApp(spec: Partial<OAuthApp['spec']> = {}, metadata: Partial<OAuthApp['metadata']> = {}): OAuthApp {
  return {
    apiVersion: 'oauthapp.dev/v1alpha1',
    kind: 'OAuthApp',
    metadata: { namespace: 'sales', name: 'crm-sync', uid: 'app-uid-1', ...metadata },
    spec: {
      provider: 'pipedrive',
      clientId: 'client-1',
      clientSecretRef: { name: 'crm-sync-client', key: 'client_secret' },
      redirectURI: 'https://ops.example.com/oauth/callback/crm',
      installations: 'multiple',
      revokeOnDelete: true,
      target: { includeRefreshToken: false },
      ...spec,
    },
  };
}

function installationOf(app: string, name: string, { namespace = 'sales', deleting = false } = {}): OAuthInstallation {
  return {
    apiVersion: 'oauthapp.dev/v1alpha1',
    kind: 'OAuthInstallation',
    metadata: { namespace, name, uid: `uid-${namespace}-${name}`, ...(deleting ? { deletionTimestamp: iso(now - 1_000) } : {}) },
    spec: { app, companyID: name.split('-').at(-1) ?? '1' },
  };
}


function setUp(installations: KubeObject[] = []) {
  const states = new StateStore(new SecretsStandIn(), noCache<Secret>(), 'oauthapp-system', { now: () => now });
  const revoked: RevocationRequest[] = [];
  const events: Array<{ type: string; reason: string; message: string; on: string }> = [];
  const deleted: Array<[string, string]> = [];
  let revokeAnswer: () => Promise<void> = async () => undefined;
  let clientSecret: string | undefined = 'client-secret-1';
  const cache = new MemoryCache<KubeObject>(installations);
  const publicApps = new PublicApps({
    installations: cache,
    status: {} as StatusWriter,
    appStatus: {} as StatusWriter,
    paths: new CallbackPaths(new MemoryCache<KubeObject>()),
    states,
    sources: {
      read: async () => (clientSecret === undefined ? { found: false, source: 'Secret sales/crm-sync-client', problem: 'Secret sales/crm-sync-client not found' } : { found: true, value: clientSecret, source: 'Secret sales/crm-sync-client' }),
    } as unknown as SourceSecrets,
    authorizations: {} as Pick<Authorizations, 'authorizationURL'>,
    kube: {
      deleteOAuthInstallation: async (namespace, name) => {
        deleted.push([namespace, name]);
        return true;
      },
    },
    revoke: async (request) => {
      revoked.push(request);
      return revokeAnswer();
    },
    events: { record: async (object, note) => void events.push({ type: note.type, reason: note.reason, message: note.message, on: object.metadata.name }) },
    now: () => now,
  });
  return {
    publicApps,
    states,
    revoked,
    events,
    deleted,
    answerRevoke: (next: () => Promise<void>) => (revokeAnswer = next),
    loseClientSecret: () => (clientSecret = undefined),
  };
}

const installation = installationOf('crm-sync', 'crm-sync-12345');
const identity: AppIdentity = { namespace: 'sales', name: installationIdentityName('crm-sync-12345'), uid: installation.metadata.uid };

/** The installation's state holds a grant (and whatever `record` adds). */
async function holdingGrant(world: ReturnType<typeof setUp>, overrides: Partial<AppState> = {}) {
  const state: AppState = {
    refreshToken: 'refresh-1',
    tokens: { accessToken: 'access-1', tokenType: 'Bearer', expiresAt: iso(now + 3_600_000) },
    record: { installation: { installedAt: iso(now - 3_600_000) } },
    ...overrides,
  };
  await world.states.save(identity, state, undefined);
}

const failingWith = (code: 'invalid_grant' | 'server_error' | 'network' | 'invalid_client') => async () => {
  throw new TokenRequestError(`failed: ${code}`, { code, delivery: code === 'network' ? 'not_sent' : 'answered' });
};

describe('revoking a deleted installation\'s grant', () => {
  it("sends the stored refresh token with the app's client credentials to the pipedrive preset's revocation URL", async () => {
    const world = setUp();
    await holdingGrant(world);
    await world.publicApps.revoke(installation, publicApp(), identity);
    expect(world.revoked).toEqual([
      { revokeURL: 'https://oauth.pipedrive.com/oauth/revoke', clientAuthentication: 'client_secret_basic', clientId: 'client-1', clientSecret: 'client-secret-1', refreshToken: 'refresh-1' },
    ]);
  });

  it('sends it to spec.revokeURL when the app sets one', async () => {
    const world = setUp();
    await holdingGrant(world);
    await world.publicApps.revoke(installation, publicApp({ revokeURL: 'https://sandbox.example.com/oauth/revoke' }), identity);
    expect(world.revoked.map((request) => request.revokeURL)).toEqual(['https://sandbox.example.com/oauth/revoke']);
  });

  it('records a Normal Revoked Event on the installation', async () => {
    const world = setUp();
    await holdingGrant(world);
    await world.publicApps.revoke(installation, publicApp(), identity);
    expect(world.events).toEqual([expect.objectContaining({ type: 'Normal', reason: 'Revoked', on: 'crm-sync-12345' })]);
  });

  it('counts invalid_grant from the provider (it no longer knows the token) as revoked', async () => {
    const world = setUp();
    await holdingGrant(world);
    world.answerRevoke(failingWith('invalid_grant'));
    await expect(world.publicApps.revoke(installation, publicApp(), identity)).resolves.toBeUndefined();
    expect(world.events.map((event) => event.reason)).toEqual(['Revoked']);
  });

  it.each(['server_error', 'network', 'invalid_client'] as const)('records a Warning RevocationFailed Event and throws RevocationFailedError when the revocation fails with %s', async (code) => {
    const world = setUp();
    await holdingGrant(world);
    world.answerRevoke(failingWith(code));
    await expect(world.publicApps.revoke(installation, publicApp(), identity)).rejects.toBeInstanceOf(RevocationFailedError);
    expect(world.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'RevocationFailed', on: 'crm-sync-12345' })]);
  });

  it('fails the same way, sending nothing, when the client secret cannot be read', async () => {
    const world = setUp();
    await holdingGrant(world);
    world.loseClientSecret();
    await expect(world.publicApps.revoke(installation, publicApp(), identity)).rejects.toBeInstanceOf(RevocationFailedError);
    expect(world.revoked).toEqual([]);
    expect(world.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'RevocationFailed' })]);
  });

  it('sends nothing when the app says revokeOnDelete: false', async () => {
    const world = setUp();
    await holdingGrant(world);
    await world.publicApps.revoke(installation, publicApp({ revokeOnDelete: false }), identity);
    expect(world.revoked).toEqual([]);
    expect(world.events).toEqual([]);
  });

  it('sends nothing for an installation the company uninstalled (the provider ended the grant)', async () => {
    const world = setUp();
    await holdingGrant(world, { record: { installation: { installedAt: iso(now - 3_600_000), uninstalledAt: iso(now - 60_000) } } });
    await world.publicApps.revoke(installation, publicApp(), identity);
    expect(world.revoked).toEqual([]);
    expect(world.events).toEqual([]);
  });

  it('sends nothing when the installation holds no refresh token', async () => {
    const world = setUp();
    await holdingGrant(world, { refreshToken: undefined });
    await world.publicApps.revoke(installation, publicApp(), identity);
    expect(world.revoked).toEqual([]);
  });

  it('sends nothing when the installation has no state at all', async () => {
    const world = setUp();
    await world.publicApps.revoke(installation, publicApp(), identity);
    expect(world.revoked).toEqual([]);
  });

  it('records a Warning RevocationSkipped Event, and does not throw, when the app is gone (with its client secret)', async () => {
    const world = setUp();
    await holdingGrant(world);
    await expect(world.publicApps.revoke(installation, undefined, identity)).resolves.toBeUndefined();
    expect(world.revoked).toEqual([]);
    expect(world.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'RevocationSkipped', on: 'crm-sync-12345' })]);
  });
});

describe('a deleted public app ending its installations', () => {
  const app = publicApp({}, { deletionTimestamp: iso(now - 5_000) });

  it('deletes its installations that are not being deleted yet, and only those', async () => {
    const world = setUp([installationOf('crm-sync', 'crm-sync-1'), installationOf('crm-sync', 'crm-sync-2', { deleting: true }), installationOf('crm-sync', 'crm-sync-3')]);
    await world.publicApps.endInstallations(app, () => undefined);
    expect(world.deleted).toEqual([
      ['sales', 'crm-sync-1'],
      ['sales', 'crm-sync-3'],
    ]);
  });

  it('asks for a requeue while any installation is left, even one already being deleted', async () => {
    const world = setUp([installationOf('crm-sync', 'crm-sync-2', { deleting: true })]);
    const result = await world.publicApps.endInstallations(app, () => undefined);
    expect(result?.requeueAfterMs).toBeGreaterThan(0);
    expect(world.deleted).toEqual([]);
  });

  it('is undefined once none is left', async () => {
    const world = setUp();
    expect(await world.publicApps.endInstallations(app, () => undefined)).toBeUndefined();
  });

  it("ignores other apps' installations and installations in other namespaces", async () => {
    const world = setUp([installationOf('billing', 'billing-1'), installationOf('crm-sync', 'crm-sync-1', { namespace: 'marketing' })]);
    expect(await world.publicApps.endInstallations(app, () => undefined)).toBeUndefined();
    expect(world.deleted).toEqual([]);
  });

  it('makes sure it leads before each delete', async () => {
    const world = setUp([installationOf('crm-sync', 'crm-sync-1'), installationOf('crm-sync', 'crm-sync-3')]);
    const order: string[] = [];
    const leading = () => void order.push(`leading (${world.deleted.length} deleted)`);
    await world.publicApps.endInstallations(app, leading);
    expect(order).toEqual(['leading (0 deleted)', 'leading (1 deleted)']);
  });
});
