// What each kind of provider failure looks like to a person (conditions and Events) and what the
// operator does next (retry timing, recovery), against the real apiserver and sandbox.
import { describe, expect, it } from '@jest/globals';
import { stateSecretName } from '../../src/oauthapp/state.ts';
import { kubectlOK, tableRows } from '../support/kubectl.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { apply, condition, getApp, opaqueSecret, type AppView } from '../support/resources.ts';
import { useTestbed } from '../support/testbed.ts';

const testbed = useTestbed('failures');

const appWith = (name: string, type: string, status: string, reason?: string) =>
  testbed.appWith(name, (app) => {
    const found = condition(app, type);
    return found?.status === status && (!reason || found.reason === reason);
  }, `${type}=${status}${reason ? ` (${reason})` : ''}`);

async function eventReasons(name: string): Promise<string[]> {
  const events = JSON.parse(await kubectlOK(['get', 'events.events.k8s.io', '-n', testbed.namespace, '-o', 'json'])) as {
    items: Array<{ regarding: { name: string }; reason: string }>;
  };
  return events.items.filter((event) => event.regarding.name === name).map((event) => event.reason);
}

async function storedRefreshToken(app: AppView): Promise<string | undefined> {
  return (await testbed.admin.secretData(testbed.operatorNamespace, stateSecretName(app.metadata.uid)))?.refresh_token;
}

describe('a client secret the provider rejects (invalid_client)', () => {
  it("sets ClientSecretValid=False quoting the provider's error_description, status.lastFailure and an Event, keeps the refresh token, and recovers (lastFailure cleared) when the Secret is fixed", async () => {
    const provider = await testbed.newProvider();
    const bootstrap = await testbed.applyApp('wrong-secret', provider, { clientSecret: 'not-the-secret-from-the-portal' });

    const failing = await appWith('wrong-secret', 'ClientSecretValid', 'False', 'InvalidClient');

    expect(condition(failing, 'ClientSecretValid')?.message).toContain(`Secret ${testbed.namespace}/wrong-secret-client`);
    // The sandbox answers {"error":"invalid_client","error_description":"Invalid client"}.
    expect(condition(failing, 'ClientSecretValid')?.message).toContain('(invalid_client) (the provider said: "Invalid client")');
    expect(failing.status?.lastFailure).toEqual({ reason: 'InvalidClient', time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/), attempts: expect.any(Number) });
    expect(await eventReasons('wrong-secret')).toContain('InvalidClient');
    expect(await storedRefreshToken(failing)).toBe(bootstrap);

    await apply(testbed.namespace, opaqueSecret('wrong-secret-client', { client_secret: provider.clientSecret }));

    // invalid_client has no retry timer: only the Secret's change can bring it back.
    const recovered = await appWith('wrong-secret', 'Ready', 'True');
    expect(condition(recovered, 'ClientSecretValid')?.status).toBe('True');
    expect(recovered.status?.lastFailure).toBeUndefined();
  }, 120_000);

});

describe('a refresh token the provider refuses (invalid_grant)', () => {
  it('sets Authorized=False and Ready=False with an Event', async () => {
    const provider = await testbed.newProvider();
    await testbed.applyApp('dead-grant', provider, { refreshToken: 'a-refresh-token-the-provider-never-issued' });

    const app = await appWith('dead-grant', 'Authorized', 'False', 'InvalidGrant');

    expect(condition(app, 'Ready')).toMatchObject({ status: 'False', reason: 'NotAuthorized' });
    expect(await eventReasons('dead-grant')).toContain('InvalidGrant');
    expect(provider.sandbox.stats().presentedRefreshTokens).toHaveLength(1);
  }, 120_000);
});

describe('a provider that answers 429 with Retry-After', () => {
  it('sends no token request before Retry-After has passed, then succeeds', async () => {
    const provider = await testbed.newProvider();
    provider.sandbox.faults = { status429: { count: 1, retryAfterSeconds: 2 } };
    await testbed.applyApp('rate-limited', provider);

    await appWith('rate-limited', 'Ready', 'True');

    const [limited, next] = provider.sandbox.stats().presentedRefreshTokens;
    expect(limited?.outcome).toBe('status429');
    expect(next?.outcome).toBe('ok');
    expect((next?.at ?? 0) - (limited?.at ?? 0)).toBeGreaterThanOrEqual(2_000);
  }, 120_000);
});

describe('a provider that answers 503', () => {
  it('retries with a backoff of at least 5 s (10 s with jitter), then succeeds, once the provider is known to keep refresh tokens', async () => {
    const provider = await testbed.newProvider({ rotateRefreshTokens: false });
    await testbed.readyApp('unavailable', provider);
    provider.sandbox.faults = { status5xx: { count: 1, status: 503 } };

    await kubectlOK(['annotate', 'oauthapp', 'unavailable', '-n', testbed.namespace, 'oauthapp.dev/rotate=after-503', '--overwrite']);
    await testbed.appWith(
      'unavailable',
      (app) => condition(app, 'Ready')?.status === 'True' && provider.sandbox.stats().presentedRefreshTokens.length === 3,
      'refreshed again after the 503',
    );

    const [, failed, next] = provider.sandbox.stats().presentedRefreshTokens;
    expect(failed?.outcome).toBe('status5xx');
    expect(next?.outcome).toBe('ok');
    expect((next?.at ?? 0) - (failed?.at ?? 0)).toBeGreaterThanOrEqual(5_000);
  }, 120_000);
});

describe('a gateway 502 in front of a provider that rotates refresh tokens', () => {
  it('never sends that refresh token again (the provider may have rotated it), reports RefreshInterrupted (Ready=False, NotAuthorized) and keeps serving the access token', async () => {
    const provider = await testbed.newProvider();
    await testbed.readyApp('gateway', provider);
    const accessToken = (await testbed.admin.secretData(testbed.namespace, 'gateway-credentials'))?.access_token;
    provider.sandbox.faults = { status5xx: { count: 1, status: 502 } };

    await kubectlOK(['annotate', 'oauthapp', 'gateway', '-n', testbed.namespace, 'oauthapp.dev/rotate=through-502', '--overwrite']);
    const app = await appWith('gateway', 'Authorized', 'False', 'RefreshInterrupted');

    expect(app.status?.authorizationURL).toBeDefined();
    expect(condition(app, 'Ready')).toMatchObject({ status: 'False', reason: 'NotAuthorized' });
    const presented = provider.sandbox.stats().presentedRefreshTokens;
    expect(presented.map((p) => p.outcome)).toEqual(['ok', 'status5xx']);
    expect((await testbed.admin.secretData(testbed.namespace, 'gateway-credentials'))?.access_token).toBe(accessToken);
    expect(await provider.whoAmI(accessToken ?? '')).toBe(200);
  }, 120_000);
});

describe('kubectl get oapp -o wide', () => {
  it("shows Ready=False while a person must act, the target Secret, the token's expiry, and Ready's reason and message", async () => {
    // The gateway app above: its refresh token given up, its access token still valid.
    const app = await getApp(testbed.namespace, 'gateway');

    const [row] = tableRows(await kubectlOK(['get', 'oapp', 'gateway', '-n', testbed.namespace, '-o', 'wide']));

    expect(row).toMatchObject({
      NAME: 'gateway',
      READY: 'False',
      AUTHORIZED: 'False',
      SECRET: 'gateway-credentials',
      EXPIRES: app.status?.accessTokenExpiresAt,
      REASON: 'NotAuthorized',
    });
    expect(row?.MESSAGE).toContain(`the access token is valid until ${app.status?.accessTokenExpiresAt}; `);
    expect(Date.parse(row?.EXPIRES ?? '')).toBeGreaterThan(Date.now());
  });
});

describe('all of the above', () => {
  it('leaked no client secret or token into logs, Events or status', async () => {
    await expectNoSecretValuesLeaked(testbed.canaries, { namespace: testbed.namespace, logs: testbed.logs() });
  }, 120_000);
});
