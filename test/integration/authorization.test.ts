// First authorization as a person does it: read status.authorizationURL, consent at the
// provider, land on the operator's callback, find working credentials. And every hard input at
// the callback refused with zero code exchanges. The sandbox app here requires PKCE (RFC 9700), so
// every authorization below also shows that the operator sends an S256 challenge and its verifier.
import { beforeAll, describe, expect, it } from '@jest/globals';
import { codeChallengeS256 } from '../../src/oauth/pkce.ts';
import { createStateSigner } from '../../src/oauth/state-token.ts';
import { signingKeySecretName } from '../../src/oauthapp/signing-key.ts';
import { kubectlOK } from '../support/kubectl.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { consentForm } from '../support/person.ts';
import { condition, secretData, type AppView } from '../support/resources.ts';
import type { TestProvider } from '../support/sandbox.ts';
import { useTestbed } from '../support/testbed.ts';

const testbed = useTestbed('authorize');
let provider: TestProvider;

beforeAll(async () => {
  provider = await testbed.newProvider({}, testbed.operator.callbackURL, { requirePkce: true });
});

async function applyUnauthorizedApp(name: string): Promise<AppView> {
  await testbed.applyApp(name, provider, { refreshToken: null });
  return testbed.appWith(name, (app) => Boolean(app.status?.authorizationURL), 'an authorization URL');
}

/** What a person's browser does at the sandbox's consent page; returns where it is sent next. */
async function consent(authorizationURL: string, decision: 'allow' | 'deny'): Promise<string> {
  const page = await fetch(authorizationURL);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain('<form');
  const answer = await fetch(new URL('/oauth/authorize/decision', authorizationURL), { method: 'POST', redirect: 'manual', body: consentForm(authorizationURL, decision) });
  expect(answer.status).toBe(302);
  return answer.headers.get('location') ?? '';
}

async function visit(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { redirect: 'manual' });
  return { status: response.status, body: await response.text() };
}

const codeExchanges = () => provider.sandbox.stats().presentedAuthorizationCodes.length;

async function readSigningKey(): Promise<Buffer> {
  const secret = await testbed.admin.kube.getSecret(testbed.operatorNamespace, signingKeySecretName);
  return Buffer.from(secret?.data?.key ?? '', 'base64');
}

describe('an OAuthApp without a refresh token', () => {
  it('is Authorized=False and shows the provider authorize URL for its one callback URL', async () => {
    const app = await applyUnauthorizedApp('needs-consent');

    expect(condition(app, 'Authorized')).toMatchObject({ status: 'False', reason: 'AuthorizationRequired' });
    const url = new URL(app.status?.authorizationURL ?? '');
    expect(`${url.origin}${url.pathname}`).toBe(provider.authorizeURL);
    expect(url.searchParams.get('client_id')).toBe(provider.clientId);
    expect(url.searchParams.get('redirect_uri')).toBe(testbed.operator.callbackURL);
    expect(url.searchParams.get('response_type')).toBe('code');
    expect(url.searchParams.get('state')).toBeTruthy();
  });

  it('asks for PKCE: an S256 challenge of the verifier derived from the signing key, the app uid and its round', async () => {
    const app = await applyUnauthorizedApp('pkce-challenge');
    const url = new URL(app.status?.authorizationURL ?? '');

    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    const verifier = createStateSigner({ key: await readSigningKey(), now: Date.now }).codeVerifier({ uid: app.metadata.uid, round: 0 });
    expect(url.searchParams.get('code_challenge')).toBe(codeChallengeS256(verifier));
    // Nothing of the verifier is in the URL or in status.
    expect(JSON.stringify(app)).not.toContain(verifier);
  });

  it('names the app nowhere in its state: not the namespace, the name or the uid, in clear or decoded as base64', async () => {
    const app = await applyUnauthorizedApp('opaque-state-of-a-long-name');
    const state = new URL(app.status?.authorizationURL ?? '').searchParams.get('state') ?? '';

    const readings = [state, ...[Buffer.from(state, 'base64url'), Buffer.from(state, 'base64')].flatMap((bytes) => [bytes.toString('utf8'), bytes.toString('latin1')])];
    for (const reading of readings) {
      for (const word of [testbed.namespace, app.metadata.name, app.metadata.uid]) expect(reading).not.toContain(word);
    }
  });

  it('is authorized by a person following status.authorizationURL, and then Ready with working credentials', async () => {
    await applyUnauthorizedApp('first-install');
    const authorizationURL = await kubectlOK(['get', 'oauthapp', 'first-install', '-n', testbed.namespace, '-o', 'jsonpath={.status.authorizationURL}']);

    const callback = await visit(await consent(authorizationURL, 'allow'));

    expect(callback.status).toBe(200);
    expect(callback.body).toContain(`${testbed.namespace}/first-install`);
    const app = await testbed.appWith('first-install', (current) => condition(current, 'Ready')?.status === 'True', 'Ready');
    expect(condition(app, 'Authorized')?.status).toBe('True');
    expect(app.status?.authorizationURL).toBeUndefined();
    const data = await secretData(testbed.namespace, 'first-install-credentials');
    expect(await provider.whoAmI(data?.access_token ?? '')).toBe(200);
    testbed.canaries.push(data?.access_token ?? '');
    expect(codeExchanges()).toBe(1);
    // The exchange carried the verifier whose S256 challenge was on the authorization URL.
    const [exchange] = provider.sandbox.stats().presentedAuthorizationCodes;
    expect(exchange).toMatchObject({ outcome: 'ok', codeVerifier: expect.any(String) });
    expect(codeChallengeS256(exchange?.codeVerifier ?? '')).toBe(new URL(authorizationURL).searchParams.get('code_challenge'));
    testbed.canaries.push(exchange?.codeVerifier ?? '');
  });

  it('cannot be completed with a tampered verifier: the provider refuses the code, which then still works for the operator', async () => {
    const app = await applyUnauthorizedApp('tampered-verifier');
    const authorizationURL = app.status?.authorizationURL ?? '';
    const location = new URL(await consent(authorizationURL, 'allow'));
    const code = location.searchParams.get('code') ?? '';
    const verifier = createStateSigner({ key: await readSigningKey(), now: Date.now }).codeVerifier({ uid: app.metadata.uid, round: 0 });
    const tampered = `${verifier.slice(0, -1)}${verifier.endsWith('A') ? 'B' : 'A'}`;
    const exchange = (codeVerifier: string) =>
      fetch(provider.tokenURL, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${provider.clientId}:${provider.clientSecret}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: testbed.operator.callbackURL, code_verifier: codeVerifier }),
      });

    for (const wrong of [tampered, createStateSigner({ key: await readSigningKey(), now: Date.now }).codeVerifier({ uid: app.metadata.uid, round: 1 })]) {
      const refused = await exchange(wrong);
      expect(refused.status).toBe(400);
      expect(await refused.json()).toMatchObject({ error: 'invalid_grant' });
    }

    const callback = await visit(location.toString());
    expect(callback.status).toBe(200);
    await testbed.appWith('tampered-verifier', (current) => condition(current, 'Ready')?.status === 'True', 'Ready');
  });

  it("refuses a code issued for another authorization request (code injection): its challenge is not ours, and Authorized quotes the provider's reason", async () => {
    const app = await applyUnauthorizedApp('injected-code');
    const authorizationURL = new URL(app.status?.authorizationURL ?? '');
    // An attacker's own authorization request, with the attacker's verifier, and the victim's state.
    const attackers = new URL(authorizationURL);
    attackers.searchParams.set('code_challenge', codeChallengeS256('attacker-verifier-attacker-verifier-attack'));
    const injected = await consent(attackers.toString(), 'allow');
    const before = provider.sandbox.stats().presentedAuthorizationCodes.length;

    const callback = await visit(injected);

    expect(callback.status).toBe(502);
    const presented = provider.sandbox.stats().presentedAuthorizationCodes.slice(before);
    expect(presented).toEqual([expect.objectContaining({ outcome: 'invalid_grant', codeVerifier: expect.any(String) })]);
    const refused = await testbed.appWith('injected-code', (current) => condition(current, 'Authorized')?.reason === 'ExchangeFailed', 'Authorized=False ExchangeFailed');
    expect(refused.status?.authorizationURL).toBeTruthy();
    // The provider's error_description, quoted: why it refused the code.
    expect(condition(refused, 'Authorized')?.message).toContain('(the provider said: "code_verifier does not match the code_challenge")');
  });

  it('reports a refusal at the provider as a condition, an Event and a page', async () => {
    const app = await applyUnauthorizedApp('refused');

    const callback = await visit(await consent(app.status?.authorizationURL ?? '', 'deny'));

    expect(callback.status).toBe(403);
    expect(callback.body).toContain('access_denied');
    const refused = await testbed.appWith('refused', (current) => condition(current, 'Authorized')?.reason === 'AccessDenied', 'Authorized=False AccessDenied');
    expect(refused.status?.authorizationURL).toBeTruthy();
    const events = await kubectlOK(['get', 'events.events.k8s.io', '-n', testbed.namespace, '--field-selector', 'regarding.name=refused', '-o', 'jsonpath={.items[*].reason}']);
    expect(events).toContain('AccessDenied');
  });
});

describe('the callback refuses, with no code exchange,', () => {
  let app: AppView;
  let signingKey: Buffer;

  beforeAll(async () => {
    app = await applyUnauthorizedApp('guarded');
    signingKey = await readSigningKey();
  });

  /** A fresh code from the provider for this app, with the state replaced by `state`. */
  async function callbackWithState(state: string): Promise<string> {
    const location = new URL(await consent(app.status?.authorizationURL ?? '', 'allow'));
    location.searchParams.set('state', state);
    return location.toString();
  }

  it.each([
    ['a forged state', (): string => 'eyJucyI6ImZvcmdlZCJ9.not-a-signature', 403],
    ['a state signed by another installation', (): string => createStateSigner({ key: Buffer.alloc(32, 7), now: Date.now }).sign(claimsOf(app)), 403],
    ['an expired state', (): string => createStateSigner({ key: signingKey, now: () => Date.now() - 11 * 60_000 }).sign(claimsOf(app)), 410],
    ['a state for another app', (): string => createStateSigner({ key: signingKey, now: Date.now }).sign({ ...claimsOf(app), name: 'first-install' }), 404],
  ] as const)('%s', async (_title, makeState, status) => {
    const before = codeExchanges();

    const callback = await visit(await callbackWithState(makeState()));

    expect(callback.status).toBe(status);
    expect(callback.body).not.toMatch(/at .*\.ts:\d+/);
    expect(codeExchanges()).toBe(before);
  });

  it('a replayed state', async () => {
    const first = await consent(app.status?.authorizationURL ?? '', 'allow');
    expect((await visit(first)).status).toBe(200);
    const before = codeExchanges();

    const replay = await visit(await callbackWithState(new URL(first).searchParams.get('state') ?? ''));

    expect(replay.status).toBe(409);
    expect(codeExchanges()).toBe(before);
  });

  it('a state for an app that was deleted and re-created', async () => {
    const recreated = await applyUnauthorizedApp('recreated');
    const oldURL = recreated.status?.authorizationURL ?? '';
    await kubectlOK(['delete', 'oauthapp', 'recreated', '-n', testbed.namespace, '--wait=true']);
    await applyUnauthorizedApp('recreated');
    const before = codeExchanges();

    const callback = await visit(await consent(oldURL, 'allow'));

    expect(callback.status).toBe(404);
    expect(codeExchanges()).toBe(before);
  });

  it.each([
    ['an unknown path', (base: string) => `${base.replace('/oauth/callback', '/oauth/other')}?code=x&state=y`, 404],
    ['a missing code and error', (base: string) => `${base}?state=abc`, 400],
    ['a missing state', (base: string) => `${base}?code=abc`, 400],
    ['an oversized query string', (base: string) => `${base}?code=${'x'.repeat(6000)}&state=y`, 414],
    ['malformed percent-encoding', (base: string) => `${base}?code=%E0%A4%A&state=y`, 400],
  ] as const)('%s', async (_title, makeURL, status) => {
    const before = codeExchanges();

    const callback = await visit(makeURL(testbed.operator.callbackURL));

    expect(callback.status).toBe(status);
    expect(callback.body).toContain('<html');
    expect(codeExchanges()).toBe(before);
  });
});

describe('after the refresh token dies (invalid_grant)', () => {
  it('goes back to Authorized=False with a fresh authorizationURL', async () => {
    await testbed.applyApp('uninstalled', provider, { refreshToken: 'revoked-when-the-user-uninstalled-the-app' });

    const app = await testbed.appWith('uninstalled', (current) => condition(current, 'Authorized')?.reason === 'InvalidGrant' && Boolean(current.status?.authorizationURL), 'InvalidGrant with a URL');

    expect(new URL(app.status?.authorizationURL ?? '').searchParams.get('state')).toBeTruthy();
  });
});

describe('all of the above', () => {
  it('leaked no client secret, code or token into logs, Events or status', async () => {
    const codes = provider.sandbox.stats().presentedAuthorizationCodes.map((presentation) => presentation.value);
    await expectNoSecretValuesLeaked([...testbed.canaries, ...codes], { namespace: testbed.namespace, logs: testbed.logs() });
  });
});

function claimsOf(app: AppView): { namespace: string; name: string; uid: string; round: number } {
  return { namespace: app.metadata.namespace, name: app.metadata.name, uid: app.metadata.uid, round: 0 };
}
