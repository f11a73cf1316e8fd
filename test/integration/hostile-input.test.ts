// Hostile or broken input on the real apiserver: a provider issuing 1-second tokens, oversized
// Secret values, Secrets labelled like ours by someone else, a condition flapping fast. Each ends
// with the leak check. (Size limits on the OAuthApp itself are refused by the apiserver: see
// crd-validation.test.ts, "more than 64 target labels" and the cases after it.)
import { describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { oauthAppPath } from '../../src/kube/client.ts';
import { maxSecretValueBytes } from '../../src/oauthapp/source-secrets.ts';
import { eventually } from '../support/eventually.ts';
import { eventsAbout as eventsAboutIn } from '../support/events.ts';
import { kubectlOK } from '../support/kubectl.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { apply, condition, opaqueSecret, type AppView } from '../support/resources.ts';
import { useTestbed } from '../support/testbed.ts';

const minRefreshIntervalSeconds = 5;
const testbed = useTestbed('hostile', { operatorArgv: [`--min-refresh-interval=${minRefreshIntervalSeconds}`] });

/** A value no one else has, `bytes` long. */
const canary = (label: string, bytes: number) => `CANARY-${label}-${Math.random().toString(36).slice(2)}-`.padEnd(bytes, 'z');

const appNow = async (name: string) => (await testbed.admin.http.json<AppView>({ method: 'GET', path: oauthAppPath(testbed.namespace, name) }));

const eventsAbout = (name: string) => eventsAboutIn(testbed.namespace, name);

describe('--min-refresh-interval', () => {
  it('refreshes an app whose provider issues 1-second tokens at most once per interval, and says so in Ready (TokenLifetimeTooShort)', async () => {
    const provider = await testbed.newProvider({ expiresIn: 1 });
    await testbed.applyApp('short-lived', provider);

    const reported = await testbed.appWith('short-lived', (app) => condition(app, 'Ready')?.reason === 'TokenLifetimeTooShort', 'Ready reason TokenLifetimeTooShort');
    expect(condition(reported, 'Ready')).toMatchObject({ status: 'False' });
    expect(condition(reported, 'Ready')?.message).toContain(`less than --min-refresh-interval (${minRefreshIntervalSeconds} s)`);

    const windowMs = 10_000;
    const from = Date.now();
    await sleep(windowMs);
    const presented = provider.sandbox.stats().presentedRefreshTokens;
    const inWindow = presented.filter((presentation) => presentation.at >= from && presentation.at < from + windowMs);
    process.stdout.write(`1-second tokens, --min-refresh-interval=${minRefreshIntervalSeconds}: ${inWindow.length} refreshes in ${windowMs / 1000} s, ${presented.length} in all\n`);

    // Chasing a 1 s token would be a refresh every ~0.7 s: about 15 in the window.
    expect(inWindow.length).toBeGreaterThanOrEqual(1);
    expect(inWindow.length).toBeLessThanOrEqual(Math.ceil(windowMs / 1000 / minRefreshIntervalSeconds) + 1);
    const gaps = presented.slice(1).map((presentation, index) => presentation.at - (presented[index]?.at ?? 0));
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(minRefreshIntervalSeconds * 1000 - 100);
    // Still the same steady reason, not a flip between TokenValid and TokenExpired per cycle.
    expect(condition(await appNow('short-lived'), 'Ready')).toMatchObject({ status: 'False', reason: 'TokenLifetimeTooShort' });
    const readyEvents = (await eventsAbout('short-lived')).filter((event) => event.note.startsWith('Ready='));
    expect(readyEvents.length).toBeLessThanOrEqual(2);
    testbed.canaries.push(...presented.map((presentation) => presentation.value));
  }, 60_000);

  it('acts on a rotate request made right after a refresh once the interval is over, not at once and not never', async () => {
    const provider = await testbed.newProvider();
    await testbed.readyApp('rotate-soon', provider);
    const initial = provider.sandbox.stats().presentedRefreshTokens.at(-1);

    await kubectlOK(['annotate', 'oauthapp', 'rotate-soon', '-n', testbed.namespace, 'oauthapp.dev/rotate=right-away', '--overwrite']);
    await testbed.appWith('rotate-soon', (app) => app.status?.lastRotateRequest === 'right-away', 'rotate request right-away handled');

    const presented = provider.sandbox.stats().presentedRefreshTokens;
    expect(presented).toHaveLength(2);
    expect((presented[1]?.at ?? 0) - (initial?.at ?? 0)).toBeGreaterThanOrEqual(minRefreshIntervalSeconds * 1000 - 100);
    testbed.canaries.push(...presented.map((presentation) => presentation.value));
  }, 60_000);
});

describe('referenced Secret values over 64 KiB', () => {
  it('are not used: ClientSecretValid=False (SecretValueTooLarge) names the Secret and key, and no target Secret carries the value', async () => {
    const provider = await testbed.newProvider();
    const huge = canary('client-secret', maxSecretValueBytes + 1);
    await testbed.applyApp('huge-secret', provider, { clientSecret: huge });

    const refused = await testbed.appWith('huge-secret', (app) => condition(app, 'ClientSecretValid')?.reason === 'SecretValueTooLarge', 'ClientSecretValid reason SecretValueTooLarge');

    expect(condition(refused, 'ClientSecretValid')).toMatchObject({ status: 'False' });
    expect(condition(refused, 'ClientSecretValid')?.message).toContain(`Secret ${testbed.namespace}/huge-secret-client, key client_secret, holds ${maxSecretValueBytes + 1} bytes`);
    expect(condition(refused, 'Ready')).toMatchObject({ status: 'False' });
    expect((await testbed.admin.secretData(testbed.namespace, 'huge-secret-credentials'))?.client_secret).toBeUndefined();
    expect(provider.sandbox.stats().tokenRequests).toBe(0);

    // Fixed by putting the real one there.
    await apply(testbed.namespace, opaqueSecret('huge-secret-client', { client_secret: provider.clientSecret }));
    await testbed.appWith('huge-secret', (app) => condition(app, 'Ready')?.status === 'True', 'Ready=True once the value is fixed');
    testbed.canaries.push(...provider.sandbox.stats().presentedRefreshTokens.map((presentation) => presentation.value));
  }, 60_000);

  it('in refreshTokenRef are not planted: Authorized=False (SecretValueTooLarge) names the Secret and key', async () => {
    const provider = await testbed.newProvider();
    const huge = canary('seed', maxSecretValueBytes + 1);
    await testbed.applyApp('huge-seed', provider, { refreshToken: huge });

    const refused = await testbed.appWith('huge-seed', (app) => condition(app, 'Authorized')?.reason === 'SecretValueTooLarge', 'Authorized reason SecretValueTooLarge');

    expect(condition(refused, 'Authorized')).toMatchObject({ status: 'False' });
    expect(condition(refused, 'Authorized')?.message).toContain(`Secret ${testbed.namespace}/huge-seed-bootstrap, key refresh_token`);
    // Nothing was sent as a refresh token (the client secret is checked, with a token of our own).
    expect(provider.sandbox.stats().presentedRefreshTokens).toHaveLength(0);
  }, 60_000);
});

describe('Secrets labelled like ours by someone else', () => {
  it('are not held by the operator with their data: one labelled oauthapp.dev/role=credentials is not cached, one that also claims managed-by is cached without data or annotations', async () => {
    const { namespace } = testbed;
    const provider = await testbed.newProvider();
    await testbed.readyApp('owner', provider);
    const theirs = canary('labelled', 32 * 1024);
    const impostors = canary('impostor', 32 * 1024);
    const labelled = (name: string, value: string, labels: Record<string, string>) => ({ ...opaqueSecret(name, { password: value }), metadata: { name, labels } });
    // kubectl apply (client-side) also copies the data into the last-applied-configuration annotation.
    await apply(namespace, labelled('someone-elses', theirs, { 'oauthapp.dev/role': 'credentials' }));
    await apply(namespace, labelled('impostor', impostors, { 'oauthapp.dev/role': 'credentials', 'app.kubernetes.io/managed-by': 'oauthapp-operator' }));
    testbed.canaries.push(theirs, impostors);

    const { caches } = testbed.operator;
    // The impostor matches the selector, so its watch event arrives; once it has, the other one's would have too.
    const cachedImpostor = await eventually('the impostor in the target cache', () => caches.targets.get(namespace, 'impostor'));

    expect(cachedImpostor.data).toBeUndefined();
    expect(cachedImpostor.metadata.annotations).toBeUndefined();
    expect(caches.targets.get(namespace, 'someone-elses')).toBeUndefined();
    // Ours keep their metadata, and their data as a digest of what the operator wrote.
    expect(caches.targets.get(namespace, 'owner-credentials')?.dataDigest).toBeDefined();
    const everything = JSON.stringify([caches.targets.list(), caches.sources.list(), caches.states.list(), caches.apps.list()]);
    expect(everything.includes(theirs.slice(0, 40))).toBe(false);
    expect(everything.includes(impostors.slice(0, 40))).toBe(false);
    expect(everything.includes(Buffer.from(theirs).toString('base64').slice(0, 40))).toBe(false);
    expect(everything.includes(Buffer.from(impostors).toString('base64').slice(0, 40))).toBe(false);

    // An app whose target name the impostor took reports the conflict from the cached metadata.
    await testbed.applyApp('squatted', provider, { spec: { target: { name: 'impostor' } } });
    const conflict = await testbed.appWith('squatted', (app) => condition(app, 'Ready')?.reason === 'TargetConflict', 'Ready reason TargetConflict');
    expect(condition(conflict, 'Ready')?.message).toContain(`Secret ${namespace}/impostor already exists`);
    testbed.canaries.push(...provider.sandbox.stats().presentedRefreshTokens.map((presentation) => presentation.value));
  }, 60_000);
});

describe('Events of a flapping condition', () => {
  it('are rate-limited per app and aggregated into series, while the condition itself ends right', async () => {
    const provider = await testbed.newProvider();
    await testbed.readyApp('flapping', provider);
    await testbed.appWith('flapping', (app) => condition(app, 'ClientSecretValid')?.status === 'True', 'ClientSecretValid=True');
    const bad = canary('bad-client-secret', 40);
    testbed.canaries.push(bad);

    // 20 changes of the client secret, each seen by the operator: ClientSecretValid flips between
    // True (the verified secret) and not True (Unknown until the operator's check of the bad one
    // answers, False after).
    const started = Date.now();
    const toggles = 20;
    for (let toggle = 1; toggle <= toggles; toggle += 1) {
      const good = toggle % 2 === 0;
      await apply(testbed.namespace, opaqueSecret('flapping-client', { client_secret: good ? provider.clientSecret : bad }));
      await eventually(`flip ${toggle} seen`, async () => ((condition(await appNow('flapping'), 'ClientSecretValid')?.status === 'True') === good ? true : undefined), 30_000, 20);
    }
    const elapsedMs = Date.now() - started;

    const events = await eventsAbout('flapping');
    const transitions = events.filter((event) => event.note.startsWith('ClientSecretValid='));
    process.stdout.write(`flapping: ${toggles} transitions in ${(elapsedMs / 1000).toFixed(1)} s made ${events.length} Events (${transitions.length} about ClientSecretValid)\n`);
    // Burst 8 per app, then one per 30 s; unlimited, it would be one Event per flip.
    expect(events.length).toBeLessThanOrEqual(8 + Math.ceil(elapsedMs / 30_000));
    expect(transitions.length).toBeLessThan(toggles / 2);

    // The condition ends right, and so does the target Secret.
    const final = await appNow('flapping');
    expect(condition(final, 'ClientSecretValid')).toMatchObject({ status: 'True', reason: 'Verified' });
    expect(condition(final, 'Ready')).toMatchObject({ status: 'True' });
    expect((await testbed.admin.secretData(testbed.namespace, 'flapping-credentials'))?.client_secret).toBe(provider.clientSecret);

    // What was held back comes out as one Event counting its repetitions (accepted by the apiserver).
    const series = await eventually('an aggregated Event', async () => (await eventsAbout('flapping')).find((event) => (event.series?.count ?? 0) >= 2), 60_000, 1_000);
    expect(series.note).toMatch(/^(ClientSecretValid|Ready)=/);
    testbed.canaries.push(...provider.sandbox.stats().presentedRefreshTokens.map((presentation) => presentation.value));
  }, 150_000);
});

describe('through all of it', () => {
  it('writes no client secret, token or foreign Secret value into logs, Events or status', async () => {
    await expectNoSecretValuesLeaked(testbed.canaries, { namespace: testbed.namespace, logs: testbed.logs() });
  });
});
