// Public apps (installations: multiple), the callback's side: a company's install becomes an
// OAuthInstallation holding its grant, and Pipedrive's uninstall callback (HTTP Basic with the
// app's client credentials, a JSON body) ends one. The real StateStore writes to an in-memory
// stand-in for the state Secrets; the apiserver's OAuthInstallations, the provider, the clock and
// the work queue are fakes (the real ones are in test/integration/public-apps.test.ts).
import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import type { OAuthApp } from '../../../src/api/oauthapp.ts';
import { KubeAPIError } from '../../../src/kube/errors.ts';
import { noCache } from '../../../src/kube/informer.ts';
import type { KubeObject, Secret } from '../../../src/kube/objects.ts';
import { TokenRequestError } from '../../../src/oauth/errors.ts';
import type { Company } from '../../../src/oauth/company.ts';
import type { InstallationCalls, TokenClient } from '../../../src/oauth/token-client.ts';
import type { RevocationRequest } from '../../../src/oauth/token-request.ts';
import type { TokenSet } from '../../../src/oauth/token-response.ts';
import { CallbackPaths } from '../../../src/oauthapp/callback-paths.ts';
import { Installations } from '../../../src/oauthapp/installations.ts';
import { installationIdentityName, installationKey } from '../../../src/oauthapp/keys.ts';
import type { SourceSecrets } from '../../../src/oauthapp/source-secrets.ts';
import { StateStore } from '../../../src/oauthapp/state-store.ts';
import { fingerprint, type AppIdentity, type AppState } from '../../../src/oauthapp/state.ts';
import { MemoryCache } from '../../support/memory-cache.ts';
import { SecretsStandIn } from '../../support/secrets-stand-in.ts';

const start = Date.parse('2026-11-27T08:00:00Z');
const minute = 60_000;
const graceMs = 10 * minute;
const iso = (ms: number) => new Date(ms).toISOString();

const clientId = 'client-1';
const clientSecret = 'client-secret-current';
const previousSecret = 'client-secret-previous';
const path = '/oauth/callback/crm';
const company = '12345';
const installation = `crm-sync-${company}`;

const app: OAuthApp = {
  apiVersion: 'oauthapp.dev/v1alpha1',
  kind: 'OAuthApp',
  metadata: { namespace: 'sales', name: 'crm-sync', uid: 'app-uid-1' },
  spec: {
    provider: 'pipedrive',
    clientId,
    clientSecretRef: { name: 'crm-sync-client', key: 'client_secret' },
    redirectURI: `https://ops.example.com${path}`,
    installations: 'multiple',
    revokeOnDelete: true,
    target: { includeRefreshToken: false },
  },
};
const appIdentity: AppIdentity = { namespace: 'sales', name: 'crm-sync', uid: 'app-uid-1' };


/** The apiserver's OAuthInstallations: created ones get a uid. */
class InstallationsStandIn {
  readonly objects = new Map<string, KubeObject>();
  readonly created: KubeObject[] = [];
  reads = 0;
  private uids = 0;
  async getOAuthInstallation(_namespace: string, name: string) {
    this.reads += 1;
    return this.objects.get(name);
  }
  async createOAuthInstallation(_namespace: string, object: KubeObject) {
    if (this.objects.has(object.metadata.name)) throw new KubeAPIError('POST', '/oauthinstallations', 409, 'AlreadyExists', 'exists');
    const written = { ...object, metadata: { ...object.metadata, uid: `installation-uid-${++this.uids}`, resourceVersion: '1' } };
    this.created.push(written);
    this.objects.set(object.metadata.name, written);
    return written;
  }
  /** An installation that exists already, as the operator would have created it. */
  put(name: string, companyID: string, uid = `existing-uid-${name}`) {
    this.objects.set(name, {
      apiVersion: 'oauthapp.dev/v1alpha1',
      kind: 'OAuthInstallation',
      metadata: { namespace: 'sales', name, uid },
      spec: { app: app.metadata.name, companyID },
    } as KubeObject);
    return { namespace: 'sales', name: installationIdentityName(name), uid };
  }
}

const answer = (overrides: Partial<TokenSet> = {}): TokenSet => ({
  accessToken: 'access-1',
  tokenType: 'Bearer',
  refreshToken: 'refresh-1',
  expiresInSeconds: 3600,
  scope: 'base',
  apiDomain: 'https://acme.pipedrive.com',
  ...overrides,
});

function setUp() {
  let now = start;
  const secrets = new SecretsStandIn();
  const kube = new InstallationsStandIn();
  const apps = new MemoryCache<KubeObject>([]);
  const paths = new CallbackPaths(apps);
  apps.put({ ...app, metadata: { ...app.metadata, creationTimestamp: '2026-11-01T00:00:00Z' } });
  const states = new StateStore(secrets, noCache<Secret>(), 'oauthapp-system', { now: () => now });
  const revoked: RevocationRequest[] = [];
  const lookups: Array<{ apiDomain: string; accessToken: string }> = [];
  const enqueued: string[] = [];
  const events: Array<{ type: string; reason: string }> = [];
  let who: () => Promise<Company> = async () => ({ companyID: company, userID: '678' });
  let revoke: () => Promise<void> = async () => undefined;
  let sourceSecret: string | undefined = clientSecret;
  const tokens: TokenClient & InstallationCalls = {
    requestToken: async () => answer(),
    revokeToken: async (request) => {
      revoked.push(request);
      return revoke();
    },
    whoInstalled: async (request) => {
      lookups.push(request);
      return who();
    },
  };
  const installations = new Installations({
    paths,
    states,
    sources: {
      read: async () => (sourceSecret === undefined ? { found: false, source: 'Secret sales/crm-sync-client', problem: 'Secret sales/crm-sync-client not found' } : { found: true, value: sourceSecret, source: 'Secret sales/crm-sync-client' }),
    } as unknown as SourceSecrets,
    tokens,
    limit: (_key, task) => task(),
    kube,
    events: { record: async (_object, note) => void events.push({ type: note.type, reason: note.reason }) },
    enqueue: (key) => void enqueued.push(key),
    now: () => now,
    random: () => 0.5,
    previousSecretGraceMs: graceMs,
    logger: pino({ level: 'silent' }),
  });
  return {
    installations,
    states,
    secrets,
    kube,
    revoked,
    lookups,
    enqueued,
    events,
    setNow: (at: number) => (now = at),
    answerWho: (next: () => Promise<Company>) => (who = next),
    answerRevoke: (next: () => Promise<void>) => (revoke = next),
    setSourceSecret: (value: string | undefined) => (sourceSecret = value),
    /** The live state of an identity (empty when it has no Secret). */
    stateOf: async (identity: AppIdentity) => (await states.loadLive(identity)).state,
    resourceVersionOf: async (identity: AppIdentity) => (await states.loadLive(identity)).resourceVersion,
  };
}

/** The company's installation, holding a grant installed at `installedAt`. */
async function installed(world: ReturnType<typeof setUp>, installedAt = start - 60 * minute): Promise<AppIdentity> {
  const identity = world.kube.put(installation, company);
  const state: AppState = {
    refreshToken: 'refresh-1',
    tokens: { accessToken: 'access-1', tokenType: 'Bearer', expiresAt: iso(start + 60 * minute), apiDomain: 'https://acme.pipedrive.com' },
    record: { refreshAt: iso(start + 30 * minute), installation: { installedAt: iso(installedAt), userID: '678' } },
  };
  await world.states.save(identity, state, undefined);
  return identity;
}

/** The app's own state remembers `previousSecret` as replaced at `replacedAt`. */
const rotated = (world: ReturnType<typeof setUp>, replacedAt: number) =>
  world.states.save(appIdentity, { record: { clientSecretHistory: { current: fingerprint(clientSecret), previous: fingerprint(previousSecret), replacedAt: iso(replacedAt) } } }, undefined);

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`, 'utf8').toString('base64')}`;
const uninstallTime = iso(start - 5 * minute);
const body = (overrides: Record<string, unknown> = {}) => ({ client_id: clientId, company_id: Number(company), user_id: 678, timestamp: uninstallTime, ...overrides });

describe('the uninstall callback: authentication', () => {
  it.each([
    ['without an Authorization header', undefined],
    ['with a Bearer header carrying the credentials', `Bearer ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`],
    ['with a Basic header that is not base64 of id:secret', `Basic ${Buffer.from(clientId).toString('base64')}`],
    ['with another client id', basic('client-2', clientSecret)],
    ['with a wrong secret', basic(clientId, 'not-the-secret')],
    ['with the client id as the secret', basic(clientId, clientId)],
  ])('refuses an uninstall %s with 401 and changes nothing', async (_title, authorization) => {
    const world = setUp();
    const identity = await installed(world);
    const before = await world.resourceVersionOf(identity);

    expect(await world.installations.uninstall({ path, authorization, body: body() })).toEqual({ status: 401, reason: 'unauthorized' });

    expect(await world.resourceVersionOf(identity)).toBe(before);
    expect((await world.stateOf(identity)).refreshToken).toBe('refresh-1');
    expect(world.enqueued).toEqual([]);
  });

  it('accepts the current client secret', async () => {
    const world = setUp();
    await installed(world);
    expect(await world.installations.uninstall({ path, authorization: basic(clientId, clientSecret), body: body() })).toEqual({ status: 200, reason: 'uninstalled' });
  });

  it('reads the credentials as RFC 7617 has them: the secret is all after the first colon, not form-decoded', async () => {
    const world = setUp();
    await installed(world);
    world.setSourceSecret('se:cr+et%2F=');
    expect(await world.installations.uninstall({ path, authorization: basic(clientId, 'se:cr+et%2F='), body: body() })).toEqual({ status: 200, reason: 'uninstalled' });
  });

  it('accepts the previous client secret within previousSecretGraceMs of its replacement', async () => {
    const world = setUp();
    await installed(world);
    await rotated(world, start);
    world.setNow(start + graceMs - 1);
    expect(await world.installations.uninstall({ path, authorization: basic(clientId, previousSecret), body: body() })).toEqual({ status: 200, reason: 'uninstalled' });
  });

  it('refuses the previous client secret once previousSecretGraceMs has passed', async () => {
    const world = setUp();
    const identity = await installed(world);
    await rotated(world, start);
    world.setNow(start + graceMs + 1);
    expect(await world.installations.uninstall({ path, authorization: basic(clientId, previousSecret), body: body() })).toEqual({ status: 401, reason: 'unauthorized' });
    expect((await world.stateOf(identity)).refreshToken).toBe('refresh-1');
  });

  it('refuses a secret older than the previous one, even within the grace', async () => {
    const world = setUp();
    await installed(world);
    await rotated(world, start);
    expect(await world.installations.uninstall({ path, authorization: basic(clientId, 'client-secret-before-previous'), body: body() })).toMatchObject({ status: 401 });
  });

  it('answers 404 on a path no public app receives, before looking at credentials', async () => {
    const world = setUp();
    await installed(world);
    expect(await world.installations.uninstall({ path: '/oauth/callback/other', authorization: basic(clientId, clientSecret), body: body() })).toEqual({ status: 404, reason: 'no_public_app' });
  });
});

describe('the uninstall callback: its body', () => {
  it.each([
    ['that is a string', 'uninstall'],
    ['that is missing', undefined],
    ['without a timestamp', { client_id: clientId, company_id: Number(company) }],
    ['without a company_id', { client_id: clientId, timestamp: uninstallTime }],
    ['with a timestamp that is not a date-time', body({ timestamp: 'yesterday' })],
    ['with a company_id that is not a label value', body({ company_id: '12 345' })],
    ['with a negative company_id', body({ company_id: -1 })],
  ])('refuses with 400 a body %s (not Pipedrive\'s shape)', async (_title, sent) => {
    const world = setUp();
    const identity = await installed(world);
    expect(await world.installations.uninstall({ path, authorization: basic(clientId, clientSecret), body: sent })).toEqual({ status: 400, reason: 'malformed_body' });
    expect((await world.stateOf(identity)).refreshToken).toBe('refresh-1');
    expect(world.enqueued).toEqual([]);
  });

  it('is refused with 400 when it names another client_id', async () => {
    const world = setUp();
    const identity = await installed(world);
    expect(await world.installations.uninstall({ path, authorization: basic(clientId, clientSecret), body: body({ client_id: 'client-2' }) })).toEqual({ status: 400, reason: 'malformed_body' });
    expect((await world.stateOf(identity)).refreshToken).toBe('refresh-1');
  });

  it('may name the company as a string', async () => {
    const world = setUp();
    await installed(world);
    expect(await world.installations.uninstall({ path, authorization: basic(clientId, clientSecret), body: body({ company_id: company }) })).toEqual({ status: 200, reason: 'uninstalled' });
  });
});

describe('the uninstall callback: what it changes', () => {
  it("answers 200 not_installed for a company that has no installation, and writes nothing", async () => {
    const world = setUp();
    await installed(world);
    const outcome = await world.installations.uninstall({ path, authorization: basic(clientId, clientSecret), body: body({ company_id: 999 }) });
    expect(outcome).toEqual({ status: 200, reason: 'not_installed' });
    expect(world.kube.created).toEqual([]);
    expect(world.enqueued).toEqual([]);
  });

  it('drops the tokens, records uninstalledAt as the body says and keeps installedAt and userID', async () => {
    const world = setUp();
    const identity = await installed(world, start - 60 * minute);

    await world.installations.uninstall({ path, authorization: basic(clientId, clientSecret), body: body() });

    const state = await world.stateOf(identity);
    expect(state.refreshToken).toBeUndefined();
    expect(state.tokens).toBeUndefined();
    expect(Date.parse(state.record.installation?.uninstalledAt ?? '')).toBe(Date.parse(uninstallTime));
    expect(state.record.installation).toMatchObject({ installedAt: iso(start - 60 * minute), userID: '678' });
    expect(state.record.refreshAt).toBeUndefined();
  });

  it("enqueues the installation's key, so its reconcile removes its Secret", async () => {
    const world = setUp();
    await installed(world);
    await world.installations.uninstall({ path, authorization: basic(clientId, clientSecret), body: body() });
    expect(world.enqueued).toEqual([installationKey('sales', installation)]);
  });

  it('is superseded by a later install: an uninstall older than installedAt writes nothing and enqueues nothing', async () => {
    const world = setUp();
    const identity = await installed(world, start - minute);
    const before = await world.resourceVersionOf(identity);

    const outcome = await world.installations.uninstall({ path, authorization: basic(clientId, clientSecret), body: body({ timestamp: iso(start - 2 * minute) }) });

    expect(outcome).toEqual({ status: 200, reason: 'superseded' });
    expect(await world.resourceVersionOf(identity)).toBe(before);
    expect((await world.stateOf(identity)).refreshToken).toBe('refresh-1');
    expect(world.enqueued).toEqual([]);
  });

  it('is superseded when replayed: the same uninstall again writes nothing', async () => {
    const world = setUp();
    const identity = await installed(world);
    await world.installations.uninstall({ path, authorization: basic(clientId, clientSecret), body: body() });
    const before = await world.resourceVersionOf(identity);

    expect(await world.installations.uninstall({ path, authorization: basic(clientId, clientSecret), body: body() })).toEqual({ status: 200, reason: 'superseded' });
    expect(await world.resourceVersionOf(identity)).toBe(before);
  });
});

describe('an install', () => {
  it('creates the company\'s OAuthInstallation, owned by the app, labelled with app and company, and with its finalizer (no patch to add it)', async () => {
    const world = setUp();
    expect(await world.installations.install(app, answer(), clientSecret)).toEqual({ ok: true, app: { namespace: 'sales', name: 'crm-sync' } });
    expect(world.kube.created).toEqual([
      expect.objectContaining({
        kind: 'OAuthInstallation',
        metadata: expect.objectContaining({
          name: installation,
          namespace: 'sales',
          labels: { 'oauthapp.dev/app': 'crm-sync', 'oauthapp.dev/company-id': company },
          finalizers: ['oauthapp.dev/state-cleanup'],
          ownerReferences: [expect.objectContaining({ kind: 'OAuthApp', name: 'crm-sync', uid: 'app-uid-1', controller: true })],
        }),
        spec: { app: 'crm-sync', companyID: company },
      }),
    ]);
  });

  it('creates a first installation without reading it first (most installs are a company\'s first)', async () => {
    const world = setUp();
    await world.installations.install(app, answer(), clientSecret);
    expect(world.kube.reads).toBe(0);
  });

  it("stores the grant in the installation's state with installedAt and the installing user, and enqueues the installation", async () => {
    const world = setUp();
    await world.installations.install(app, answer(), clientSecret);
    const uid = world.kube.created[0]?.metadata.uid ?? '';
    const state = await world.stateOf({ namespace: 'sales', name: installationIdentityName(installation), uid });
    expect(state.refreshToken).toBe('refresh-1');
    expect(state.tokens?.accessToken).toBe('access-1');
    expect(state.record.installation).toEqual({ installedAt: iso(start), userID: '678' });
    expect(world.enqueued).toEqual([installationKey('sales', installation)]);
  });

  it("looks the company up with the answer's access token on its api_domain", async () => {
    const world = setUp();
    await world.installations.install(app, answer(), clientSecret);
    expect(world.lookups).toEqual([{ apiDomain: 'https://acme.pipedrive.com', accessToken: 'access-1' }]);
  });

  it.each([
    ['without a refresh token', answer({ refreshToken: undefined }), 'no_refresh_token', 0],
    ['without api_domain', answer({ apiDomain: undefined }), 'company_unknown', 1],
  ])('is refused with 502 for an answer %s: no lookup, nothing created or stored, a refresh token revoked (%#)', async (_title, response, reason, revocations) => {
    const world = setUp();
    expect(await world.installations.install(app, response, clientSecret)).toMatchObject({ ok: false, status: 502, reason });
    expect(world.lookups).toEqual([]);
    expect(world.kube.created).toEqual([]);
    expect(world.secrets.stored.size).toBe(0);
    expect(world.enqueued).toEqual([]);
    expect(world.revoked).toHaveLength(revocations);
  });

  it('revokes the just-issued refresh token when the installation cannot be created, and lets the apiserver\'s error through', async () => {
    const world = setUp();
    world.kube.createOAuthInstallation = async () => {
      throw new KubeAPIError('POST', '/oauthinstallations', 503, 'Unknown', 'the apiserver is away');
    };

    await expect(world.installations.install(app, answer(), clientSecret)).rejects.toThrow(KubeAPIError);
    expect(world.revoked.map((request) => request.refreshToken)).toEqual(['refresh-1']);
    expect(world.secrets.stored.size).toBe(0);
  });

  it('does not write a held grant again once a refresh moved the state on (its first write committed, its answer was lost)', async () => {
    const world = setUp();
    world.secrets.loseNextAnswer = true;
    await expect(world.installations.install(app, answer(), clientSecret)).rejects.toThrow();
    const identity = { namespace: 'sales', name: installationIdentityName(`crm-sync-${company}`), uid: 'installation-uid-1' };
    expect(world.states.holds(identity)).toBe(true);

    // Meanwhile the leader refreshed with the stored grant, and the provider rotated its refresh token.
    world.setNow(start + minute);
    const live = await world.states.loadLive(identity);
    await world.states.save(identity, { ...live.state, refreshToken: 'refresh-2', record: { ...live.state.record, lastRefreshTime: iso(start + minute) } }, live.resourceVersion);

    await world.states.retryHeld();
    expect((await world.stateOf(identity)).refreshToken).toBe('refresh-2');
    expect(world.states.holds(identity)).toBe(false);
  });

  it('does not revoke a grant it could not store yet but holds for the periodic retry', async () => {
    const world = setUp();
    world.secrets.failWrites = true;

    await expect(world.installations.install(app, answer(), clientSecret)).rejects.toThrow();
    expect(world.revoked).toEqual([]);
    expect(world.states.holds({ namespace: 'sales', name: installationIdentityName(`crm-sync-${company}`), uid: 'installation-uid-1' })).toBe(true);
  });

  it('revokes the just-issued refresh token and answers 502 when the company lookup fails; nothing is created', async () => {
    const world = setUp();
    world.answerWho(async () => {
      throw new TokenRequestError('HTTP 401', { code: 'invalid_client', delivery: 'answered', status: 401 });
    });

    expect(await world.installations.install(app, answer(), clientSecret)).toMatchObject({ ok: false, status: 502, reason: 'company_unknown' });

    expect(world.revoked).toEqual([
      { revokeURL: 'https://oauth.pipedrive.com/oauth/revoke', clientAuthentication: 'client_secret_basic', clientId, clientSecret, refreshToken: 'refresh-1' },
    ]);
    expect(world.kube.created).toEqual([]);
    expect(world.secrets.stored.size).toBe(0);
  });

  it('still answers 502 when that revocation fails too (it is best effort)', async () => {
    const world = setUp();
    world.answerWho(async () => {
      throw new TokenRequestError('HTTP 500', { code: 'server_error', delivery: 'answered', status: 500 });
    });
    world.answerRevoke(async () => {
      throw new TokenRequestError('connection refused', { code: 'network', delivery: 'not_sent' });
    });

    expect(await world.installations.install(app, answer(), clientSecret)).toMatchObject({ ok: false, status: 502, reason: 'company_unknown' });
    expect(world.revoked).toHaveLength(1);
  });

  it('is refused with 409 when the installation name is taken by another company (ids differing in case), and stores nothing', async () => {
    const world = setUp();
    world.kube.put(`crm-sync-abc`, 'ABC', 'uid-of-ABC');
    world.answerWho(async () => ({ companyID: 'abc', userID: '1' }));

    expect(await world.installations.install(app, answer(), clientSecret)).toMatchObject({ ok: false, status: 409, reason: 'installation_name_taken' });
    expect(world.secrets.stored.size).toBe(0);
    expect(world.enqueued).toEqual([]);
    // Nobody holds the grant Pipedrive just issued: it is handed back.
    expect(world.revoked.map((request) => request.refreshToken)).toEqual(['refresh-1']);
  });

  it('by a company that installed before replaces the refresh token and tokens, and clears uninstalledAt and any claim', async () => {
    const world = setUp();
    const identity = await installed(world, start - 60 * minute);
    const live = await world.states.loadLive(identity);
    await world.states.save(
      identity,
      {
        ...live.state,
        record: {
          ...live.state.record,
          claim: { holder: 'replica-b', refreshTokenFingerprint: fingerprint('refresh-1'), claimedAt: iso(start - minute), expiresAt: iso(start + minute) },
          installation: { installedAt: iso(start - 60 * minute), userID: '678', uninstalledAt: iso(start - 30 * minute) },
        },
      },
      live.resourceVersion,
    );

    expect(await world.installations.install(app, answer({ refreshToken: 'refresh-2', accessToken: 'access-2' }), clientSecret)).toMatchObject({ ok: true });

    const state = await world.stateOf(identity);
    expect(state.refreshToken).toBe('refresh-2');
    expect(state.tokens?.accessToken).toBe('access-2');
    expect(state.record.claim).toBeUndefined();
    expect(state.record.installation).toEqual({ installedAt: iso(start), userID: '678' });
    expect(world.kube.created).toEqual([]);
  });
});
