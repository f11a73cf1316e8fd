// The first-authorization flow against an OAuth server that is not ours: a `custom` provider
// pointed at oidc-provider (OpenID Certified, RFC 6749 authorization code and refresh token
// grants, RFC 7662 introspection), with either client authentication method. A scripted person
// signs in and consents on its own pages; the operator's callback does the rest. The server
// requires PKCE of the client and sends `iss` (RFC 9207), as RFC 9700 asks: the operator sends an
// S256 challenge and its verifier, and with spec.issuer refuses a response without that iss.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { eventually } from '../support/eventually.ts';
import { kubectlOK } from '../support/kubectl.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { createTestNamespace, deleteTestNamespace } from '../support/namespaces.ts';
import { startOidcProvider, type ClientAuthentication, type TestOidcProvider } from '../support/oidc-provider.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';
import { apply, condition, getApp, opaqueSecret, secretData, type AppView } from '../support/resources.ts';

const accessTokenTTLSeconds = 20;
// The operator refreshes a third of the lifetime before expiry; this is the lifetime plus room
// for a busy machine.
const refreshWaitMs = accessTokenTTLSeconds * 1000 + 30_000;
const scopes = ['offline_access', 'crm:read'];

let namespace: string;
let operatorNamespace: string;
let operator: TestOperator;
const providers: Partial<Record<ClientAuthentication, TestOidcProvider>> = {};
/** For the RFC 9207 and PKCE refusals: its token endpoint sees requests other than the operator's. */
let strict: TestOidcProvider;
const tokensSeen: string[] = [];

beforeAll(async () => {
  [namespace, operatorNamespace] = await Promise.all([createTestNamespace('custom'), createTestNamespace('custom-operator')]);
  operator = await startTestOperator({ namespaces: [namespace], operatorNamespace });
  for (const method of ['client_secret_basic', 'client_secret_post'] as const) {
    providers[method] = await startOidcProvider({ redirectURI: operator.callbackURL, clientAuthentication: method, accessTokenTTLSeconds });
  }
  strict = await startOidcProvider({ redirectURI: operator.callbackURL, clientAuthentication: 'client_secret_basic', accessTokenTTLSeconds: 3600 });
});

afterAll(async () => {
  await operator?.stop();
  await Promise.all([...Object.values(providers), strict].filter(Boolean).map((provider) => provider.close()));
  await Promise.all([deleteTestNamespace(namespace), deleteTestNamespace(operatorNamespace)]);
});

function providerFor(method: ClientAuthentication): TestOidcProvider {
  const provider = providers[method];
  if (!provider) throw new Error(`no provider for ${method}`);
  return provider;
}

/** `issuer`: spec.issuer (RFC 9207); by default the provider's own, null for none. */
async function applyCustomApp(name: string, provider: TestOidcProvider, issuer: string | null = provider.issuer): Promise<void> {
  await apply(namespace, opaqueSecret(`${name}-client`, { client_secret: provider.clientSecret }));
  await apply(namespace, {
    apiVersion: 'oauthapp.dev/v1alpha1',
    kind: 'OAuthApp',
    metadata: { name },
    spec: {
      provider: 'custom',
      authorizeURL: provider.authorizeURL,
      tokenURL: provider.tokenURL,
      ...(issuer === null ? {} : { issuer }),
      clientAuthentication: provider.clientAuthentication,
      clientId: provider.clientId,
      clientSecretRef: { name: `${name}-client`, key: 'client_secret' },
      redirectURI: operator.callbackURL,
      scopes,
      // OpenID Connect Core §11: offline_access (a refresh token) is granted with prompt=consent.
      authorizeParams: { prompt: 'consent' },
    },
  });
}

/** status.authorizationURL, read as a person would with kubectl. */
function authorizationURLOf(name: string): Promise<string> {
  return eventually(`${name}: status.authorizationURL`, async () => {
    const url = await kubectlOK(['get', 'oauthapp', name, '-n', namespace, '-o', 'jsonpath={.status.authorizationURL}']);
    return url.trim() === '' ? undefined : url.trim();
  });
}

function appWith(name: string, predicate: (app: AppView) => boolean, what: string, timeoutMs?: number): Promise<AppView> {
  return eventually(
    `${name}: ${what}`,
    async () => {
      const app = await getApp(namespace, name);
      return predicate(app) ? app : undefined;
    },
    timeoutMs,
  );
}

/** The target Secret once it carries an access token other than those in `previous`. */
function credentialsWithNewToken(name: string, previous: readonly string[], timeoutMs?: number): Promise<Record<string, string>> {
  return eventually(
    `${name}-credentials with a new access token`,
    async () => {
      const data = await secretData(namespace, `${name}-credentials`);
      return data?.access_token && !previous.includes(data.access_token) ? data : undefined;
    },
    timeoutMs,
  );
}

/** Everything from status.authorizationURL to a Ready app whose access token the provider accepts. */
async function authorizeToReady(name: string, provider: TestOidcProvider): Promise<Record<string, string>> {
  await applyCustomApp(name, provider);
  const waiting = await appWith(name, (app) => condition(app, 'Authorized')?.status === 'False', 'Authorized=False');
  expect(condition(waiting, 'Authorized')?.reason).toBe('AuthorizationRequired');

  const authorizationURL = await authorizationURLOf(name);
  const url = new URL(authorizationURL);
  expect(`${url.origin}${url.pathname}`).toBe(provider.authorizeURL);
  expect(Object.fromEntries(url.searchParams)).toMatchObject({
    response_type: 'code',
    client_id: provider.clientId,
    redirect_uri: operator.callbackURL,
    scope: scopes.join(' '),
    prompt: 'consent',
    code_challenge_method: 'S256',
  });
  expect(url.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(url.searchParams.get('state')).toBeTruthy();

  const outcome = await provider.authorize(authorizationURL);

  // The person went through the provider's own sign-in and consent pages, then to the callback.
  expect(outcome.hops.filter((hop) => hop.startsWith(`POST ${provider.issuer}/interaction/`))).toHaveLength(2);
  expect(outcome.hops.at(-1)).toBe(`GET ${operator.callbackURL}`);
  expect(outcome.callbackParameters).toEqual(expect.arrayContaining(['code', 'state', 'iss']));
  expect(outcome.status).toBe(200);
  expect(outcome.body).toContain('Authorization complete');
  expect(outcome.body).toContain(`${namespace}/${name}`);
  for (const secret of [provider.clientSecret, ...provider.issuedSecrets()]) expect(outcome.body).not.toContain(secret);

  const data = await credentialsWithNewToken(name, []);
  tokensSeen.push(data.access_token ?? '');
  expect(data).toMatchObject({ client_id: provider.clientId, client_secret: provider.clientSecret, token_type: 'Bearer', scope: scopes.join(' ') });
  expect(data.refresh_token).toBeUndefined();
  const expiresAt = Date.parse(data.expires_at ?? '');
  expect(expiresAt).toBeGreaterThan(Date.now());
  expect(expiresAt).toBeLessThanOrEqual(Date.now() + accessTokenTTLSeconds * 1000 + 1000);
  expect(await provider.isActive(data.access_token ?? '')).toBe(true);

  const ready = await appWith(name, (app) => condition(app, 'Ready')?.status === 'True', 'Ready=True');
  expect(condition(ready, 'Authorized')).toMatchObject({ status: 'True' });
  expect(condition(ready, 'ClientSecretValid')).toMatchObject({ status: 'True' });
  expect(ready.status?.authorizationURL).toBeUndefined();
  // One code exchange, first; a refresh may already have followed on a slow machine.
  expect(tokenRequests(provider)[0]).toEqual({ grantType: 'authorization_code', clientAuthentication: provider.clientAuthentication, outcome: 'ok' });
  expect(tokenRequests(provider).filter((request) => request.grantType === 'authorization_code')).toHaveLength(1);
  // The operator checked the client secret while the app waited for its person: a real RFC 6749
  // server authenticated the client, then refused the grant it had never issued.
  expect(provider.tokenRequests().filter((request) => request.clientCheck)).toEqual([{ grantType: 'refresh_token', clientAuthentication: provider.clientAuthentication, outcome: 'invalid_grant', clientCheck: true }]);
  return data;
}

describe('a custom provider (oidc-provider) with client_secret_basic', () => {
  it(
    'is authorized by a person following status.authorizationURL, then keeps a live access token by refreshing with the rotated refresh token',
    async () => {
      const provider = providerFor('client_secret_basic');
      const first = await authorizeToReady('crm-basic', provider);

      const second = await credentialsWithNewToken('crm-basic', [first.access_token ?? ''], refreshWaitMs);
      tokensSeen.push(second.access_token ?? '');
      expect(await provider.isActive(second.access_token ?? '')).toBe(true);
      expect(Date.parse(second.expires_at ?? '')).toBeGreaterThan(Date.parse(first.expires_at ?? ''));

      // The first refresh rotated the refresh token (and consumed the old one): a second refresh
      // works only if the operator stored the new one, and a replay would have revoked the grant.
      const third = await credentialsWithNewToken('crm-basic', [first.access_token ?? '', second.access_token ?? ''], refreshWaitMs);
      tokensSeen.push(third.access_token ?? '');
      expect(await provider.isActive(third.access_token ?? '')).toBe(true);

      const requests = tokenRequests(provider);
      expect(requests.every((request) => request.outcome === 'ok' && request.clientAuthentication === 'client_secret_basic')).toBe(true);
      expect(requests.filter((request) => request.grantType === 'refresh_token').length).toBeGreaterThanOrEqual(2);
      expect(provider.revokedGrants()).toBe(0);
      const app = await appWith('crm-basic', (current) => condition(current, 'Ready')?.status === 'True', 'Ready=True');
      expect(condition(app, 'Authorized')?.status).toBe('True');
    },
    60_000 + 2 * refreshWaitMs,
  );
});

describe('a custom provider (oidc-provider) with client_secret_post', () => {
  it(
    'is authorized the same way and refreshes with the client secret in the request body',
    async () => {
      const provider = providerFor('client_secret_post');
      const first = await authorizeToReady('crm-post', provider);

      const second = await credentialsWithNewToken('crm-post', [first.access_token ?? ''], refreshWaitMs);
      tokensSeen.push(second.access_token ?? '');
      expect(await provider.isActive(second.access_token ?? '')).toBe(true);
      const requests = tokenRequests(provider);
      expect(requests.map((request) => request.grantType)).toEqual(expect.arrayContaining(['authorization_code', 'refresh_token']));
      expect(requests.every((request) => request.outcome === 'ok' && request.clientAuthentication === 'client_secret_post')).toBe(true);
    },
    60_000 + refreshWaitMs,
  );
});

/** The callback URL the provider sent the person to, with `change` applied to its query. */
async function callbackURL(provider: TestOidcProvider, name: string, change: (query: URLSearchParams) => void = () => undefined): Promise<string> {
  const url = await provider.authorizeToCallback(await authorizationURLOf(name));
  expect([...url.searchParams.keys()].sort()).toEqual(['code', 'iss', 'state']);
  change(url.searchParams);
  return url.href;
}

/** A visit to the callback, without following redirects. */
async function visit(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { redirect: 'manual' });
  return { status: response.status, body: await response.text() };
}

const codeExchanges = (provider: TestOidcProvider) => provider.tokenRequests().filter((request) => request.grantType === 'authorization_code');
/** Code exchanges and refreshes: the token requests that use a grant (client checks left out). */
function tokenRequests(provider: TestOidcProvider) {
  return provider.tokenRequests().filter((request) => !request.clientCheck);
}

/** Waits for the app's next authorization URL: the one after `previous` (a refused callback used up its round). */
async function nextAuthorizationURL(name: string, previous: string): Promise<string> {
  return eventually(`${name}: a new status.authorizationURL`, async () => {
    const url = (await getApp(namespace, name)).status?.authorizationURL;
    return url && url !== previous ? url : undefined;
  });
}

describe('RFC 9207: a custom provider with spec.issuer (oidc-provider sends iss)', () => {
  it(
    'refuses a response with the iss missing or different, with no code exchange, then authorizes with the right one',
    async () => {
      await applyCustomApp('crm-iss', strict);
      const before = codeExchanges(strict).length;

      for (const [change, reason] of [
        [(query: URLSearchParams) => query.delete('iss'), 'issuer_missing'],
        [(query: URLSearchParams) => query.set('iss', 'https://idp.example.com'), 'issuer_mismatch'],
        [(query: URLSearchParams) => query.set('iss', `${strict.issuer}/`), 'issuer_mismatch'],
      ] as const) {
        const shown = await authorizationURLOf('crm-iss');
        const callback = await visit(await callbackURL(strict, 'crm-iss', change));

        expect(callback.status).toBe(403);
        expect(callback.body).toContain(reason);
        expect(codeExchanges(strict)).toHaveLength(before);
        const refused = await appWith('crm-iss', (app) => condition(app, 'Authorized')?.reason === 'IssuerMismatch', 'Authorized=False IssuerMismatch');
        expect(condition(refused, 'Ready')?.status).toBe('False');
        await nextAuthorizationURL('crm-iss', shown);
      }
      const events = await kubectlOK(['get', 'events.events.k8s.io', '-n', namespace, '--field-selector', 'regarding.name=crm-iss', '-o', 'jsonpath={.items[*].reason}']);
      expect(events).toContain('IssuerMismatch');

      // The provider's own response, iss and all, is accepted.
      const outcome = await strict.authorize(await authorizationURLOf('crm-iss'));
      expect(outcome.status).toBe(200);
      expect(outcome.callbackParameters).toContain('iss');
      const ready = await appWith('crm-iss', (app) => condition(app, 'Ready')?.status === 'True', 'Ready=True');
      expect(condition(ready, 'Authorized')?.status).toBe('True');
      expect(codeExchanges(strict).slice(before)).toEqual([expect.objectContaining({ outcome: 'ok' })]);
      tokensSeen.push((await secretData(namespace, 'crm-iss-credentials'))?.access_token ?? '');
    },
    120_000,
  );

  it('refuses every response of a provider that is not the one spec.issuer names', async () => {
    await applyCustomApp('crm-other-issuer', strict, 'https://idp.example.com');
    const before = codeExchanges(strict).length;

    const outcome = await strict.authorize(await authorizationURLOf('crm-other-issuer'));

    expect(outcome.status).toBe(403);
    expect(outcome.body).toContain('issuer_mismatch');
    expect(codeExchanges(strict)).toHaveLength(before);
    await appWith('crm-other-issuer', (app) => condition(app, 'Authorized')?.reason === 'IssuerMismatch', 'Authorized=False IssuerMismatch');
  });

  it('ignores iss without spec.issuer, as for providers not known to send it', async () => {
    await applyCustomApp('crm-no-issuer', strict, null);

    const callback = await visit(await callbackURL(strict, 'crm-no-issuer', (query) => query.set('iss', 'https://idp.example.com')));

    expect(callback.status).toBe(200);
    await appWith('crm-no-issuer', (app) => condition(app, 'Ready')?.status === 'True', 'Ready=True');
  });
});

describe('PKCE with a custom provider that requires it (oidc-provider)', () => {
  it('a code exchange with a tampered or missing verifier fails; the operator\'s own works', async () => {
    await applyCustomApp('crm-pkce', strict);
    const callback = new URL(await callbackURL(strict, 'crm-pkce'));
    const code = callback.searchParams.get('code') ?? '';
    const exchange = (extra: Record<string, string>) => strict.tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: operator.callbackURL, ...extra });

    const attempts: Array<Record<string, string>> = [{ code_verifier: 'A'.repeat(43) }, { code_verifier: 'tampered-verifier-tampered-verifier-tampered' }, {}];
    for (const extra of attempts) {
      const refused = await exchange(extra);
      expect(refused.status).toBe(400);
      expect(refused.body).toMatchObject({ error: 'invalid_grant' });
    }

    expect((await visit(callback.href)).status).toBe(200);
    const ready = await appWith('crm-pkce', (app) => condition(app, 'Ready')?.status === 'True', 'Ready=True');
    expect(condition(ready, 'Authorized')?.status).toBe('True');
    expect(codeExchanges(strict).at(-1)).toMatchObject({ outcome: 'ok', clientAuthentication: 'client_secret_basic' });
    tokensSeen.push((await secretData(namespace, 'crm-pkce-credentials'))?.access_token ?? '');
  });
});

describe('secrets in play with a custom provider', () => {
  it('never appear in operator logs, Events or OAuthApp status', async () => {
    const canaries = [...Object.values(providers), strict].flatMap((provider) => [provider.clientSecret, ...provider.issuedSecrets()]);
    expect(canaries).toEqual(expect.arrayContaining(tokensSeen.filter(Boolean)));

    await expectNoSecretValuesLeaked(canaries, { namespace, logs: operator.logs() });
  });
});
