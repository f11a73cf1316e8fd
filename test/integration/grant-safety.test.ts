// Ways to lose a grant or loop without any crash (issue 10's review), on the real apiserver with the
// real operator and the rotating sandbox provider: a rotate value that cannot be recorded, an
// authorization URL that cannot be written, and a seed an earlier OAuthApp already exchanged.
import { describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { kubectlOK } from '../support/kubectl.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { condition, getApp, oauthAppManifest, apply } from '../support/resources.ts';
import { useTestbed } from '../support/testbed.ts';

const testbed = useTestbed('grant-safety');

const refreshesSeen = (provider: { sandbox: { stats(): { presentedRefreshTokens: readonly unknown[] } } }) => provider.sandbox.stats().presentedRefreshTokens.length;

describe('an oauthapp.dev/rotate value longer than status.lastRotateRequest can hold (256)', () => {
  it('is refused with Ready=False InvalidRotateRequest and refreshes nothing, instead of refreshing in a loop', async () => {
    const provider = await testbed.newProvider();
    await testbed.readyApp('long-rotate', provider);
    const before = refreshesSeen(provider);

    await kubectlOK(['annotate', 'oauthapp', 'long-rotate', '-n', testbed.namespace, `oauthapp.dev/rotate=${'x'.repeat(300)}`, '--overwrite']);

    const refused = await testbed.appWith('long-rotate', (app) => condition(app, 'Ready')?.reason === 'InvalidRotateRequest', 'Ready=False InvalidRotateRequest');
    expect(condition(refused, 'Ready')?.message).toContain('300 characters');
    await sleep(3_000);
    expect(refreshesSeen(provider)).toBe(before);

    await kubectlOK(['annotate', 'oauthapp', 'long-rotate', '-n', testbed.namespace, 'oauthapp.dev/rotate=short', '--overwrite']);
    await testbed.appWith('long-rotate', (app) => app.status?.lastRotateRequest === 'short' && condition(app, 'Ready')?.status === 'True', 'the short value acted on');
    expect(refreshesSeen(provider)).toBe(before + 1);
  }, 120_000);
});

describe('an authorization URL longer than status.authorizationURL can hold (8192)', () => {
  it('is reported as Authorized=False AuthorizationURLTooLong naming the fields to shorten, and status is still written', async () => {
    const provider = await testbed.newProvider();
    const authorizeParams = Object.fromEntries(Array.from({ length: 10 }, (_, index) => [`p${index}`, 'v'.repeat(1000)]));
    await testbed.applyApp('long-url', provider, { refreshToken: null, spec: { authorizeParams } });

    const app = await testbed.appWith('long-url', (current) => condition(current, 'Authorized')?.reason === 'AuthorizationURLTooLong', 'AuthorizationURLTooLong');

    expect(condition(app, 'Authorized')?.message).toContain('spec.authorizeParams');
    expect(app.status?.authorizationURL).toBeUndefined();
    expect(app.status?.observedGeneration).toBe(app.metadata.generation);
  }, 120_000);
});

describe('an OAuthApp re-created with the refreshTokenRef of a deleted one', () => {
  it('does not send the seed again (the deleted app exchanged it), and asks for a fresh one', async () => {
    const provider = await testbed.newProvider();
    const seed = await testbed.applyApp('recreated', provider);
    await testbed.appWith('recreated', (app) => condition(app, 'Ready')?.status === 'True', 'Ready=True');
    const sentBefore = refreshesSeen(provider);

    await kubectlOK(['delete', 'oauthapp', 'recreated', '-n', testbed.namespace, '--wait=true']);
    await apply(
      testbed.namespace,
      oauthAppManifest({
        name: 'recreated',
        clientId: provider.clientId,
        tokenURL: provider.tokenURL,
        authorizeURL: provider.authorizeURL,
        redirectURI: provider.redirectURI,
        refreshTokenRef: { name: 'recreated-bootstrap', key: 'refresh_token' },
      }),
    );

    const app = await testbed.appWith('recreated', (current) => condition(current, 'Authorized')?.reason === 'SeedAlreadyUsed', 'Authorized=False SeedAlreadyUsed');
    expect(app.status?.authorizationURL).toContain(provider.authorizeURL);
    await sleep(2_000);
    expect(refreshesSeen(provider)).toBe(sentBefore);
    expect(provider.sandbox.stats().presentedRefreshTokens.filter((presented) => (presented as { value: string }).value === seed)).toHaveLength(1);
  }, 120_000);
});

describe('secrets', () => {
  it('no client secret, code or token reached logs, Events or status', async () => {
    await getApp(testbed.namespace, 'long-rotate');
    await expectNoSecretValuesLeaked(testbed.canaries, { namespace: testbed.namespace, logs: testbed.logs() });
  }, 120_000);
});
