// What ops do day to day: refresh the client secret (portal first or Secret first), restart the
// workloads that use it exactly once per change, and refresh tokens on demand by annotation.
import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { fingerprint, stateSecretName } from '../../src/oauthapp/state.ts';
import { eventually } from '../support/eventually.ts';
import { occurrences } from '../support/events.ts';
import { kubectlOK } from '../support/kubectl.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { apply, condition, opaqueSecret, type AppView } from '../support/resources.ts';
import type { TestProvider } from '../support/sandbox.ts';
import { useTestbed } from '../support/testbed.ts';

const testbed = useTestbed('rotation');
const { readyApp, appWith } = testbed;

const credentials = async (name: string) => (await testbed.admin.secretData(testbed.namespace, `${name}-credentials`)) ?? {};

async function annotateRotate(name: string, value: string): Promise<AppView> {
  await kubectlOK(['annotate', 'oauthapp', name, '-n', testbed.namespace, `oauthapp.dev/rotate=${value}`, '--overwrite']);
  return appWith(name, (app) => app.status?.lastRotateRequest === value, `rotate request ${value} handled`);
}

const newSecret = () => {
  const secret = `rotated-${randomBytes(16).toString('hex')}`;
  testbed.canaries.push(secret);
  return secret;
};

const refreshesSent = (provider: TestProvider) => provider.sandbox.stats().presentedRefreshTokens.length;

describe('client secret refreshed in the portal first, then in the Secret', () => {
  it('puts the new secret into the target Secret, refreshes with it, keeps the old access token valid, and needs no re-authorization', async () => {
    const provider = await testbed.newProvider();
    await readyApp('portal-first', provider);
    const before = await credentials('portal-first');

    const rotated = provider.sandbox.rotateClientSecret(provider.clientId);
    testbed.canaries.push(rotated);
    expect(await provider.whoAmI(before.access_token ?? '')).toBe(200);
    await apply(testbed.namespace, opaqueSecret('portal-first-client', { client_secret: rotated }));

    await eventually('the target Secret carries the new secret', async () => ((await credentials('portal-first')).client_secret === rotated ? true : undefined));
    const app = await annotateRotate('portal-first', 'after-portal-rotation');

    expect(condition(app, 'ClientSecretValid')).toMatchObject({ status: 'True', reason: 'Verified' });
    expect(condition(app, 'Authorized')?.status).toBe('True');
    const after = await credentials('portal-first');
    expect(after.access_token).not.toBe(before.access_token);
    expect(await provider.whoAmI(before.access_token ?? '')).toBe(200);
    expect(await provider.whoAmI(after.access_token ?? '')).toBe(200);
    expect(provider.sandbox.stats().presentedAuthorizationCodes).toHaveLength(0);
  }, 120_000);
});

describe('a changed client secret is checked with the provider at once, without a refresh', () => {
  it('shows ClientSecretValid=True within seconds of a portal-first rotation, and no refresh token is sent', async () => {
    const provider = await testbed.newProvider();
    const app = await readyApp('checked-good', provider);
    const refreshes = refreshesSent(provider);
    const checks = provider.sandbox.stats().clientChecks.length;

    const rotated = provider.sandbox.rotateClientSecret(provider.clientId);
    testbed.canaries.push(rotated);
    await apply(testbed.namespace, opaqueSecret('checked-good-client', { client_secret: rotated }));

    // Tokens of this testbed live an hour: only the check can verify the new secret this soon.
    await eventually('the new secret verified', async () => {
      const record = JSON.parse((await testbed.admin.secretData(testbed.operatorNamespace, stateSecretName(app.metadata.uid)))?.['record.json'] ?? '{}') as { verifiedClientSecretFingerprint?: string };
      return record.verifiedClientSecretFingerprint === fingerprint(rotated) ? true : undefined;
    });
    const verified = await appWith('checked-good', (current) => condition(current, 'ClientSecretValid')?.status === 'True', 'ClientSecretValid=True');
    expect(condition(verified, 'Ready')?.status).toBe('True');
    expect(refreshesSent(provider)).toBe(refreshes);
    expect(provider.sandbox.stats().clientChecks.slice(checks).map((check) => check.outcome)).toEqual(['invalid_grant']);
  }, 60_000);

  it('shows ClientSecretValid=False (Ready=False) for a wrong secret, keeps the grant, and no refresh token is sent', async () => {
    const provider = await testbed.newProvider();
    await readyApp('checked-bad', provider);
    const refreshes = refreshesSent(provider);

    await apply(testbed.namespace, opaqueSecret('checked-bad-client', { client_secret: newSecret() }));

    const rejected = await appWith('checked-bad', (app) => condition(app, 'ClientSecretValid')?.reason === 'InvalidClient', 'ClientSecretValid=False InvalidClient');
    expect(condition(rejected, 'ClientSecretValid')?.message).toContain('when the operator checked it');
    expect(condition(rejected, 'Ready')).toMatchObject({ status: 'False', reason: 'ClientSecretInvalid' });
    expect(condition(rejected, 'Authorized')?.status).toBe('True');
    expect(refreshesSent(provider)).toBe(refreshes);
    expect(provider.sandbox.stats().clientChecks.at(-1)?.outcome).toBe('invalid_client');

    // Put back: the secret the provider accepted before is valid again at once.
    await apply(testbed.namespace, opaqueSecret('checked-bad-client', { client_secret: provider.clientSecret }));
    await appWith('checked-bad', (app) => condition(app, 'ClientSecretValid')?.status === 'True' && condition(app, 'Ready')?.status === 'True', 'ClientSecretValid=True again');
  }, 60_000);
});

describe('client secret changed in the Secret before the portal', () => {
  it('reports invalid_client (Ready=False, ClientSecretInvalid, while the access token still works) until the portal catches up, then recovers by itself', async () => {
    const provider = await testbed.newProvider();
    await readyApp('secret-first', provider);
    const { access_token: accessToken = '' } = await credentials('secret-first');
    const upcoming = newSecret();

    await apply(testbed.namespace, opaqueSecret('secret-first-client', { client_secret: upcoming }));
    await kubectlOK(['annotate', 'oauthapp', 'secret-first', '-n', testbed.namespace, 'oauthapp.dev/rotate=before-portal', '--overwrite']);
    const rejected = await appWith('secret-first', (app) => condition(app, 'ClientSecretValid')?.reason === 'InvalidClient', 'ClientSecretValid=False InvalidClient');
    expect(condition(rejected, 'ClientSecretValid')?.message).toContain('developer portal');
    expect(condition(rejected, 'Ready')).toMatchObject({ status: 'False', reason: 'ClientSecretInvalid' });
    expect(condition(rejected, 'Ready')?.message).toContain(`the access token is valid until ${rejected.status?.accessTokenExpiresAt}`);
    expect(await provider.whoAmI(accessToken)).toBe(200);

    provider.sandbox.rotateClientSecret(provider.clientId, upcoming);

    await appWith('secret-first', (app) => condition(app, 'ClientSecretValid')?.status === 'True' && condition(app, 'Ready')?.status === 'True', 'ClientSecretValid=True and Ready=True after the portal caught up');
  }, 120_000);

  it('retries at once, without waiting for the backoff, when the Secret is fixed', async () => {
    const provider = await testbed.newProvider();
    const app = await readyApp('fixed-quickly', provider);
    await apply(testbed.namespace, opaqueSecret('fixed-quickly-client', { client_secret: newSecret() }));
    // Refused five times in a row with the wrong secret (each rotate request cuts the backoff short
    // and counts as one more attempt): the backoff grows to 80-160 s, far beyond the waits below.
    for (const attempt of [1, 2, 3, 4, 5]) {
      await kubectlOK(['annotate', 'oauthapp', 'fixed-quickly', '-n', testbed.namespace, `oauthapp.dev/rotate=wrong-${attempt}`, '--overwrite']);
      await appWith('fixed-quickly', (current) => current.status?.lastRotateRequest === `wrong-${attempt}` && condition(current, 'ClientSecretValid')?.reason === 'InvalidClient', `InvalidClient for wrong-${attempt}`);
    }
    const failure = await eventually('the backoff of the fifth refusal recorded', async () => {
      const record = JSON.parse((await testbed.admin.secretData(testbed.operatorNamespace, stateSecretName(app.metadata.uid)))?.['record.json'] ?? '{}') as {
        failure?: { kind: string; attempts: number; retryAt?: string };
      };
      return record.failure?.kind === 'invalid_client' && record.failure.attempts >= 5 && record.failure.retryAt ? { attempts: record.failure.attempts, retryAt: Date.parse(record.failure.retryAt) } : undefined;
    });
    const refusals = refreshesSent(provider);
    const fixedAt = Date.now();
    // The scenario needs a backoff that cannot run out while we wait: only the fix may cause the retry.
    expect(failure.retryAt - fixedAt).toBeGreaterThan(30_000);

    await apply(testbed.namespace, opaqueSecret('fixed-quickly-client', { client_secret: provider.clientSecret }));

    // The retry itself, not ClientSecretValid: the fixed secret was verified before, so status may
    // show it valid as soon as the Secret changes, while --min-refresh-interval (1 s here) still
    // defers the retry when the fix came within a second of the last refusal.
    await eventually('the retry with the fixed secret', () => (refreshesSent(provider) > refusals ? true : undefined), Math.max(1_000, failure.retryAt - Date.now() - 5_000));
    await appWith('fixed-quickly', (current) => condition(current, 'ClientSecretValid')?.status === 'True', 'ClientSecretValid=True');
    const retried = provider.sandbox.stats().presentedRefreshTokens.slice(refusals);
    // One request, with the fixed secret, well before the backoff would have allowed it.
    expect(retried.map((p) => p.outcome)).toEqual(['ok']);
    expect(retried[0]?.at ?? Infinity).toBeLessThan(failure.retryAt);
    // Timeout: seven waits of up to 30 s (Ready, five refusals, the record), then one shorter than the backoff (at most 160 s).
  }, 7 * 30_000 + 160_000 + 10_000);
});

describe('rolloutRestartTargets', () => {
  const restartedAt = async () => {
    const deployment = JSON.parse(await kubectlOK(['get', 'deployment', 'worker', '-n', testbed.namespace, '-o', 'json'])) as {
      metadata: { generation: number };
      spec: { template: { metadata: { annotations?: Record<string, string> } } };
    };
    return { generation: deployment.metadata.generation, value: deployment.spec.template.metadata.annotations?.['kubectl.kubernetes.io/restartedAt'] };
  };

  it('restarts a Deployment exactly once per client secret change, and never for refreshes or an operator restart', async () => {
    const provider = await testbed.newProvider();
    await kubectlOK(['create', 'deployment', 'worker', '-n', testbed.namespace, '--image=registry.invalid/worker:1']);
    await readyApp('restarts', provider, { spec: { rolloutRestartTargets: [{ kind: 'Deployment', name: 'worker' }, { kind: 'Deployment', name: 'not-deployed' }] } });
    const initial = await restartedAt();
    expect(initial.value).toBeUndefined();

    const rotated = provider.sandbox.rotateClientSecret(provider.clientId);
    testbed.canaries.push(rotated);
    await apply(testbed.namespace, opaqueSecret('restarts-client', { client_secret: rotated }));
    const first = await eventually('one restart', async () => ((await restartedAt()).value ? restartedAt() : undefined));
    expect(first.generation).toBe(initial.generation + 1);

    await annotateRotate('restarts', 'refresh-1');
    await annotateRotate('restarts', 'refresh-2');
    await testbed.restartOperator();
    await annotateRotate('restarts', 'refresh-after-operator-restart');
    expect(await restartedAt()).toEqual(first);

    const again = provider.sandbox.rotateClientSecret(provider.clientId);
    testbed.canaries.push(again);
    await apply(testbed.namespace, opaqueSecret('restarts-client', { client_secret: again }));
    const second = await eventually('a second restart', async () => {
      const current = await restartedAt();
      return current.value !== first.value ? current : undefined;
    });
    expect(second.generation).toBe(first.generation + 1);
    // Counted as occurrences: an Event held back by the per-app rate limit comes out as one series.
    expect(await occurrences(testbed.namespace, 'restarts', 'RolloutRestarted')).toBe(2);
    expect(await occurrences(testbed.namespace, 'restarts', 'RolloutRestartTargetNotFound')).toBeGreaterThan(0);
  }, 300_000);
});

describe('the oauthapp.dev/rotate annotation', () => {
  it('refreshes once per distinct value, and not at all when the same value is applied again', async () => {
    const provider = await testbed.newProvider();
    await readyApp('on-demand', provider);
    const initial = refreshesSent(provider);

    await annotateRotate('on-demand', 'first');
    await annotateRotate('on-demand', 'second');
    expect(refreshesSent(provider)).toBe(initial + 2);

    await kubectlOK(['annotate', 'oauthapp', 'on-demand', '-n', testbed.namespace, 'oauthapp.dev/rotate=second', '--overwrite']);
    await kubectlOK(['label', 'oauthapp', 'on-demand', '-n', testbed.namespace, 'touched=yes']);
    // The reconcile that handles "third" has seen the label's change too: one refresh, not two.
    await annotateRotate('on-demand', 'third');
    expect(refreshesSent(provider)).toBe(initial + 3);
  }, 150_000);
});

describe('all of the above', () => {
  it('leaked no client secret or token into logs, Events or status', async () => {
    await expectNoSecretValuesLeaked(testbed.canaries, { namespace: testbed.namespace, logs: testbed.logs() });
  });
});
