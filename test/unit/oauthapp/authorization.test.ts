// First authorization to RFC 9700, with an in-memory stand-in for the state Secret (the real
// apiserver, the sandbox and oidc-provider are in test/integration/authorization.test.ts and
// custom-provider.test.ts): every authorize URL carries a PKCE S256 challenge, the code exchange
// sends the matching verifier, and with a known issuer a missing or different `iss` is refused
// before any code exchange.
import { describe, expect, it } from '@jest/globals';
import type { OAuthApp } from '../../../src/api/oauthapp.ts';
import { noCache, type ObjectCache } from '../../../src/kube/informer.ts';
import { decodeData, type KubeObject, type Secret } from '../../../src/kube/objects.ts';
import { codeChallengeS256 } from '../../../src/oauth/pkce.ts';
import { createStateSigner, replaceableStateSigner } from '../../../src/oauth/state-token.ts';
import type { TokenClient } from '../../../src/oauth/token-client.ts';
import type { TokenRequest } from '../../../src/oauth/token-request.ts';
import { Authorizations, issuerProblem } from '../../../src/oauthapp/authorization.ts';
import type { SourceSecrets } from '../../../src/oauthapp/source-secrets.ts';
import { StateStore } from '../../../src/oauthapp/state-store.ts';
import { emptyState, stateSecretName, type AppState } from '../../../src/oauthapp/state.ts';
import { SecretsStandIn } from '../../support/secrets-stand-in.ts';

const now = Date.parse('2026-11-27T08:00:00Z');
const key = Buffer.alloc(32, 5);
const issuer = 'https://idp.example.com';

function oauthApp(spec: Partial<OAuthApp['spec']> = {}): OAuthApp {
  return {
    apiVersion: 'oauthapp.dev/v1alpha1',
    kind: 'OAuthApp',
    metadata: { namespace: 'sales', name: 'crm-sync', uid: '5d1e0f8a-0c3b-4f7e-9a51-2b6c7d8e9f00' },
    spec: {
      provider: 'custom',
      tokenURL: `${issuer}/token`,
      authorizeURL: `${issuer}/authorize`,
      clientId: 'client-1',
      clientSecretRef: { name: 'crm-sync-client', key: 'client_secret' },
      redirectURI: 'https://ops.example.com/oauth/callback',
      installations: 'single',
      revokeOnDelete: true,
      target: { includeRefreshToken: false },
      ...spec,
    },
  };
}


const noSecretCache = noCache<Secret>();

function setUp(app: OAuthApp) {
  const secrets = new SecretsStandIn();
  // Replaceable, as in the operator: a test may rotate the keys.
  const signer = replaceableStateSigner(createStateSigner({ key, now: () => now }));
  const requests: TokenRequest[] = [];
  const events: Array<{ reason: string; message: string }> = [];
  const apps = { ...noSecretCache, get: (namespace: string | undefined, name: string) => (namespace === app.metadata.namespace && name === app.metadata.name ? app : undefined) } as unknown as ObjectCache<KubeObject>;
  const states = new StateStore(secrets, noSecretCache, 'oauthapp-system', { now: () => now });
  let duringExchange: () => void = () => undefined;
  let live: OAuthApp | undefined = app;
  const authorizations = new Authorizations({
    signer,
    apps,
    states,
    sources: { read: async () => ({ found: true, value: 'client-secret', source: 'test' }) } as unknown as SourceSecrets,
    tokens: {
      async requestToken(request: TokenRequest) {
        requests.push(request);
        duringExchange();
        return { accessToken: 'access-1', tokenType: 'Bearer', refreshToken: 'refresh-1', expiresInSeconds: 3600 };
      },
    } as unknown as TokenClient,
    limit: (_key, task) => task(),
    kube: { getOAuthApp: async () => live, deleteSecret: async () => undefined },
    events: { record: async (_object, note) => void events.push({ reason: note.reason, message: note.message }) },
    enqueue: () => undefined,
    now: () => now,
    random: () => 0.5,
  });
  const stored = (): AppState['record'] => {
    const secret = secrets.stored.get(stateSecretName(app.metadata.uid));
    return secret ? (JSON.parse(decodeData(secret.data)['record.json'] ?? '{}') as AppState['record']) : {};
  };
  /** The state and PKCE challenge of the app's current authorization URL. */
  const authorizationURL = (round = stored().authorizationRound ?? 0) => {
    const url = new URL(authorizations.authorizationURL(app, { ...emptyState(), record: { authorizationRound: round } }).url);
    return { url, state: url.searchParams.get('state') ?? '' };
  };
  const whileExchanging = (action: () => void) => (duringExchange = action);
  /** The app is gone from the apiserver (its finalizer ran). */
  const deleteApp = () => (live = undefined);
  return { authorizations, signer, requests, events, stored, authorizationURL, secrets, states, whileExchanging, deleteApp };
}

describe('the authorization URL', () => {
  it('carries a PKCE S256 challenge of the verifier for the app and its current round', () => {
    const app = oauthApp();
    const { signer, authorizationURL } = setUp(app);
    for (const round of [0, 1, 7]) {
      const { url } = authorizationURL(round);
      expect(url.searchParams.get('code_challenge_method')).toBe('S256');
      expect(url.searchParams.get('code_challenge')).toBe(codeChallengeS256(signer.codeVerifier({ uid: app.metadata.uid, round })));
    }
    expect(authorizationURL(0).url.searchParams.get('code_challenge')).not.toBe(authorizationURL(1).url.searchParams.get('code_challenge'));
  });

  it('names the app nowhere in clear', () => {
    const app = oauthApp();
    const { url } = setUp(app).authorizationURL();
    for (const reading of [url.href, decodeURIComponent(url.href), Buffer.from(url.searchParams.get('state') ?? '', 'base64url').toString('latin1')]) {
      for (const word of [app.metadata.namespace, app.metadata.name, app.metadata.uid]) expect(reading).not.toContain(word);
    }
  });
});

describe('the code exchange', () => {
  it('sends the code_verifier of the round the state was issued for', async () => {
    const app = oauthApp();
    const { authorizations, signer, requests, authorizationURL } = setUp(app);
    const { url, state } = authorizationURL();

    expect(await authorizations.complete({ state, code: 'code-1' })).toMatchObject({ ok: true });

    expect(requests).toHaveLength(1);
    const grant = requests[0]?.grant;
    expect(grant).toMatchObject({ type: 'authorization_code', code: 'code-1', codeVerifier: signer.codeVerifier({ uid: app.metadata.uid, round: 0 }) });
    expect(codeChallengeS256(grant?.type === 'authorization_code' ? (grant.codeVerifier ?? '') : '')).toBe(url.searchParams.get('code_challenge'));
  });
});

describe('an app deleted while its code is exchanged', () => {
  it('keeps none of the tokens: the state the exchange wrote is removed, and the person is told (issue 10, sequence 10)', async () => {
    const app = oauthApp();
    const { authorizations, authorizationURL, secrets, whileExchanging, deleteApp } = setUp(app);
    const { state } = authorizationURL();
    whileExchanging(deleteApp);

    const outcome = await authorizations.complete({ state, code: 'code-1' });

    expect(outcome).toMatchObject({ ok: false, status: 404, reason: 'app_not_found' });
    expect(secrets.stored.has(stateSecretName(app.metadata.uid))).toBe(false);
  });
});

describe('after a rotation of the signing key', () => {
  const newKey = Buffer.alloc(32, 6);
  const rotate = (signer: ReturnType<typeof setUp>['signer']) => signer.replace(createStateSigner({ key: newKey, previousKey: { key, rotatedAt: now }, now: () => now }));
  const verifierOf = (grant: TokenRequest['grant'] | undefined) => (grant?.type === 'authorization_code' ? (grant.codeVerifier ?? '') : '');

  it('a URL sealed with the previous key completes with the previous key\'s verifier, whose challenge it carried', async () => {
    const app = oauthApp();
    const { authorizations, signer, requests, authorizationURL } = setUp(app);
    const old = authorizationURL();
    const oldVerifier = signer.codeVerifier({ uid: app.metadata.uid, round: 0 });
    rotate(signer);

    expect(await authorizations.complete({ state: old.state, code: 'code-1' })).toMatchObject({ ok: true });

    expect(verifierOf(requests[0]?.grant)).toBe(oldVerifier);
    expect(codeChallengeS256(verifierOf(requests[0]?.grant))).toBe(old.url.searchParams.get('code_challenge'));
  });

  it('a URL sealed after it completes with the new key\'s verifier', async () => {
    const app = oauthApp();
    const { authorizations, signer, requests, authorizationURL } = setUp(app);
    rotate(signer);
    const fresh = authorizationURL();

    expect(await authorizations.complete({ state: fresh.state, code: 'code-1' })).toMatchObject({ ok: true });

    expect(verifierOf(requests[0]?.grant)).toBe(createStateSigner({ key: newKey, now: () => now }).codeVerifier({ uid: app.metadata.uid, round: 0 }));
    expect(codeChallengeS256(verifierOf(requests[0]?.grant))).toBe(fresh.url.searchParams.get('code_challenge'));
  });

  it('the URL in status is renewed with the new key at the next reconcile (kept while the key stays)', () => {
    const app = oauthApp();
    const { authorizations, signer } = setUp(app);
    const state = { ...emptyState(), record: { authorizationRound: 0 } };
    const shown = authorizations.authorizationURL(app, state).url;
    const showing = { ...app, status: { authorizationURL: shown } } as OAuthApp;
    expect(authorizations.authorizationURL(showing, state).url).toBe(shown);

    rotate(signer);
    const renewed = new URL(authorizations.authorizationURL(showing, state).url);

    expect(renewed.href).not.toBe(shown);
    expect(signer.verify(renewed.searchParams.get('state') ?? '')).toMatchObject({ ok: true, key: 'current' });
    expect(renewed.searchParams.get('code_challenge')).toBe(codeChallengeS256(signer.codeVerifier({ uid: app.metadata.uid, round: 0 })));
  });
});

describe('RFC 9207: iss in the authorization response', () => {
  it('is accepted when it equals the custom provider\'s spec.issuer', async () => {
    const { authorizations, requests, authorizationURL } = setUp(oauthApp({ issuer }));
    expect(await authorizations.complete({ state: authorizationURL().state, code: 'code-1', iss: issuer })).toMatchObject({ ok: true });
    expect(requests).toHaveLength(1);
  });

  it.each([
    ['missing', undefined, 'issuer_missing'],
    ['different', 'https://evil.example.com', 'issuer_mismatch'],
    ['different by a trailing slash', `${issuer}/`, 'issuer_mismatch'],
    ['empty', '', 'issuer_mismatch'],
  ] as const)('is refused when %s: no code exchange, a 403 page, Authorized=False IssuerMismatch and an Event', async (_title, iss, reason) => {
    const { authorizations, requests, events, stored, authorizationURL } = setUp(oauthApp({ issuer }));

    const outcome = await authorizations.complete({ state: authorizationURL().state, code: 'code-1', ...(iss === undefined ? {} : { iss }) });

    expect(outcome).toMatchObject({ ok: false, status: 403, reason });
    expect(requests).toHaveLength(0);
    expect(stored().authorizationFailure).toMatchObject({ reason: 'IssuerMismatch' });
    expect(events).toEqual([expect.objectContaining({ reason: 'IssuerMismatch' })]);
    // The state is used up: the next URL is for the next round.
    expect(stored().authorizationRound).toBe(1);
  });

  it('is checked on an error response too: a refusal from another issuer is reported as such', async () => {
    const { authorizations, events, authorizationURL } = setUp(oauthApp({ issuer }));
    const outcome = await authorizations.refused({ state: authorizationURL().state, error: 'access_denied', iss: 'https://evil.example.com' });
    expect(outcome).toMatchObject({ ok: false, status: 403, reason: 'issuer_mismatch' });
    expect(events.map((event) => event.reason)).toEqual(['IssuerMismatch']);
  });

  it('is ignored when the provider is not known to send it (the pipedrive preset, a custom provider without spec.issuer)', async () => {
    for (const app of [oauthApp({ provider: 'pipedrive', tokenURL: undefined, authorizeURL: undefined }), oauthApp()]) {
      for (const iss of [undefined, 'https://anything.example.com']) {
        const { authorizations, requests, authorizationURL } = setUp(app);
        expect(await authorizations.complete({ state: authorizationURL().state, code: 'code-1', ...(iss === undefined ? {} : { iss }) })).toMatchObject({ ok: true });
        expect(requests).toHaveLength(1);
      }
    }
  });
});

describe('issuerProblem', () => {
  it('compares as simple strings (RFC 3986 §6.2.1), and names what it expected', () => {
    expect(issuerProblem(undefined, 'x')).toBeUndefined();
    expect(issuerProblem(issuer, issuer)).toBeUndefined();
    expect(issuerProblem(issuer, 'HTTPS://IDP.EXAMPLE.COM')?.reason).toBe('issuer_mismatch');
    expect(issuerProblem(issuer, undefined)).toEqual({ reason: 'issuer_missing', message: expect.stringContaining(issuer) });
  });

  it('shows a received issuer on one line, quoted and capped', () => {
    const message = issuerProblem(issuer, `https://evil\n${'x'.repeat(500)}`)?.message ?? '';
    expect(message).not.toContain('\n');
    expect(message.length).toBeLessThan(400);
  });
});

describe('tokens from an exchanged code that could not be stored', () => {
  const identity = (app: OAuthApp) => ({ namespace: app.metadata.namespace, name: app.metadata.name, uid: app.metadata.uid });

  it('are written by a later flush while their authorization round is still the current one', async () => {
    const app = oauthApp();
    const { authorizations, authorizationURL, secrets, states, whileExchanging } = setUp(app);
    whileExchanging(() => (secrets.failWrites = true));

    await expect(authorizations.complete({ state: authorizationURL().state, code: 'code-1' })).rejects.toMatchObject({ reason: 'NetworkError' });
    secrets.failWrites = false;
    await states.flushUnsaved(identity(app));

    expect(decodeData(secrets.stored.get(stateSecretName(app.metadata.uid))?.data).refresh_token).toBe('refresh-1');
  });

  it('are written by the periodic retry every replica runs, with no reconcile of the app (a standby answered the callback; issue 10, sequence 3)', async () => {
    const app = oauthApp();
    const { authorizations, authorizationURL, secrets, states, whileExchanging } = setUp(app);
    whileExchanging(() => (secrets.failWrites = true));

    await expect(authorizations.complete({ state: authorizationURL().state, code: 'code-1' })).rejects.toMatchObject({ reason: 'NetworkError' });
    await states.retryHeld(); // the apiserver still refuses: kept
    expect(states.holds(identity(app))).toBe(true);
    secrets.failWrites = false;
    await states.retryHeld();

    expect(decodeData(secrets.stored.get(stateSecretName(app.metadata.uid))?.data).refresh_token).toBe('refresh-1');
    expect(states.holds(identity(app))).toBe(false);
  });

  it('are dropped, not written days later, once another authorization round has started (issue 10, sequence 3c)', async () => {
    const app = oauthApp();
    const { authorizations, authorizationURL, secrets, states, whileExchanging, stored } = setUp(app);
    whileExchanging(() => (secrets.failWrites = true));

    await expect(authorizations.complete({ state: authorizationURL().state, code: 'code-1' })).rejects.toMatchObject({ reason: 'NetworkError' });
    secrets.failWrites = false;
    // Meanwhile a person used the next link: a newer round is current.
    const live = await states.loadLive(identity(app));
    await states.save(identity(app), { ...live.state, record: { ...live.state.record, authorizationRound: (stored().authorizationRound ?? 0) + 1 } }, live.resourceVersion);
    await states.flushUnsaved(identity(app));

    expect(decodeData(secrets.stored.get(stateSecretName(app.metadata.uid))?.data).refresh_token).toBeUndefined();
    expect(states.holds(identity(app))).toBe(false);
  });
});
