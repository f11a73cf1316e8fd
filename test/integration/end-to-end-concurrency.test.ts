// The per-provider cap on concurrent token requests (--provider-concurrency), end to end: the
// real operator started with --provider-concurrency=2, sandbox providers that hold every token
// request for 3 s, and more requests wanted at once than the cap, for refreshes (rotate
// annotations), for code exchanges (people completing the consent through the operator's
// callback), and for both mixed. The provider's side counts the requests it holds at any moment.
//
// Each test also checks its scenario: more requests were wanted at once than the cap allows (rotate
// requests made and not answered; code exchanges whose authorization round the operator had
// already bumped but the provider had not answered, so queued or in flight), and for refreshes
// that the ones over the cap waited for a slot (their reconciles said so and ended: the wait
// holds no worker, see src/oauthapp/refresher.ts).
import { beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Secret } from '../../src/kube/objects.ts';
import { appUIDLabel, decodeState, roleLabel } from '../../src/oauthapp/state.ts';
import { appList } from '../support/app-list.ts';
import { kubectlOK } from '../support/kubectl.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { consent, visit } from '../support/person.ts';
import { inFlightRecorder, maxOverlap, observationsAbove, type Interval } from '../support/provider-load.ts';
import { condition, type AppView } from '../support/resources.ts';
import type { TestProvider } from '../support/sandbox.ts';
import { useTestbed } from '../support/testbed.ts';

const cap = 2;
/** Each token request is held this long at the provider, so requests sent together overlap there. */
const delayMs = 3_000;

const testbed = useTestbed('concurrency', { operatorArgv: [`--provider-concurrency=${cap}`] });
const apps = appList(testbed);
const load = { main: inFlightRecorder(), other: inFlightRecorder() };
let provider: TestProvider;
let other: TestProvider;

const names = (prefix: string, count: number) => Array.from({ length: count }, (_, index) => `${prefix}-${index + 1}`);
const refreshApps = names('refresh', 6);
const otherProviderApps = names('other', 4);
const consentApps = names('consent', 6);
const mixedConsentApps = names('mixed-consent', 3);
const mixedRefreshApps = refreshApps.slice(0, 3);

const ready = (app: AppView) => condition(app, 'Ready')?.status === 'True';
const refreshesAnswered = (of: TestProvider) => of.sandbox.stats().presentedRefreshTokens.length;
const codesAnswered = (of: TestProvider) => of.sandbox.stats().presentedAuthorizationCodes.length;
const metrics = async () => (await fetch(`${testbed.operator.metricsURL}/metrics`)).text();
const figure = (line: string) => process.stdout.write(`[concurrency] ${line}\n`);
/** Apps whose reconcile found no free provider slot since `since` (epoch ms), from the debug log. */
const parkedApps = (since: number) =>
  new Set(
    testbed
      .logs()
      .split('\n')
      .filter((line) => line.includes('refresh waits for a provider slot'))
      .map((line) => JSON.parse(line) as { time: string; key: string })
      .filter((line) => Date.parse(line.time) >= since)
      .map((line) => line.key),
  );
const describeIntervals = (intervals: readonly Interval[], since: number) =>
  intervals.map(({ start, end }) => `${start - since}-${end - since}`).join(' ');

beforeAll(async () => {
  provider = await testbed.newProvider({ sleep: load.main.sleep }, testbed.operator.callbackURL);
  other = await testbed.newProvider({ sleep: load.other.sleep });
  await apps.applyApps(provider, refreshApps);
  await apps.applyApps(other, otherProviderApps);
  await apps.applyApps(provider, [...consentApps, ...mixedConsentApps], { seeded: false });
  await apps.allWith([...refreshApps, ...otherProviderApps], ready, 'Ready=True', 120_000);
  await apps.allWith([...consentApps, ...mixedConsentApps], (app) => Boolean(app.status?.authorizationURL), 'an authorization URL');
  // From here on every token request is held at the provider.
  provider.sandbox.faults = { delayMs };
  other.sandbox.faults = { delayMs };
}, 240_000);

interface DemandSample {
  at: number;
  /** Code exchanges whose round the operator bumped (it is past the state check) and the provider has not answered. */
  exchangesPending: number;
  /** Rotate requests made and not answered by the provider yet. */
  refreshesPending: number;
}

/**
 * Samples the demand every 100 ms. An exchange counts as pending from the moment its app's state
 * shows the bumped authorization round (written before the operator asks for a slot) until the
 * provider answers; the answers are read after the states, so a sample never over-counts.
 */
function sampleDemand(exchangeApps: readonly AppView[], refreshesWanted: () => number): { stop(): Promise<DemandSample[]> } {
  const uids = new Set(exchangeApps.map((app) => app.metadata.uid));
  const codesBefore = codesAnswered(provider);
  const refreshesBefore = refreshesAnswered(provider);
  const samples: DemandSample[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const states = await testbed.admin.http.json<{ items: Secret[] }>({
        method: 'GET',
        path: `/api/v1/namespaces/${testbed.operatorNamespace}/secrets`,
        query: { labelSelector: `${roleLabel}=state` },
      });
      const takenUp = states.items.filter((secret) => uids.has(secret.metadata.labels?.[appUIDLabel] ?? '') && (decodeState(secret).record.authorizationRound ?? 0) >= 1).length;
      samples.push({
        at: Date.now(),
        exchangesPending: takenUp - (codesAnswered(provider) - codesBefore),
        refreshesPending: refreshesWanted() - (refreshesAnswered(provider) - refreshesBefore),
      });
      await sleep(100);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return samples;
    },
  };
}

/** Consents for each app as its person would; the callback URLs, not visited yet. */
async function consentAll(names: readonly string[]): Promise<{ views: AppView[]; callbacks: string[] }> {
  const views = await apps.allWith(names, (app) => Boolean(app.status?.authorizationURL), 'an authorization URL');
  const callbacks: string[] = [];
  for (const app of views) callbacks.push(await consent(app.status?.authorizationURL ?? '', 'allow'));
  return { views, callbacks };
}

describe('--provider-concurrency=2', () => {
  it('holds refreshes to 2 token requests in flight per provider when 6 (and 4 at another provider) are wanted at once', async () => {
    const since = Date.now();
    const before = { metrics: await metrics(), main: refreshesAnswered(provider), other: refreshesAnswered(other) };
    let wanted = 0;
    const demand = sampleDemand([], () => wanted);

    await kubectlOK(['annotate', 'oauthapp', ...refreshApps, ...otherProviderApps, '-n', testbed.namespace, 'oauthapp.dev/rotate=all-at-once', '--overwrite']);
    wanted = refreshApps.length;
    const annotatedAt = Date.now();
    await apps.allWith([...refreshApps, ...otherProviderApps], (app) => app.status?.lastRotateRequest === 'all-at-once', 'the rotate request handled', 120_000);
    const samples = await demand.stop();
    const after = await metrics();

    const main = load.main.intervals(since);
    const atOther = load.other.intervals(since);
    const longReconciles = observationsAbove(after, 'oauthapp_reconcile_duration_seconds', '5') - observationsAbove(before.metrics, 'oauthapp_reconcile_duration_seconds', '5');
    const longRequests = observationsAbove(after, 'oauthapp_token_refresh_duration_seconds', '5') - observationsAbove(before.metrics, 'oauthapp_token_refresh_duration_seconds', '5');
    figure(`refreshes: annotated ${annotatedAt - since} ms after the start; provider A held [ms] ${describeIntervals(main, since)}; provider B held ${describeIntervals(atOther, since)}`);
    const parked = parkedApps(since);
    figure(`refreshes: most in flight at A ${maxOverlap(main)}, at B ${maxOverlap(atOther)}, at both ${maxOverlap([...main, ...atOther])}; most rotate requests of A unanswered at once ${Math.max(0, ...samples.map((sample) => sample.refreshesPending))}; apps that waited for a provider slot ${[...parked].join(' ')}; reconciles over 5 s ${longReconciles}, token requests over 5 s ${longRequests}`);

    // The scenario: more refreshes wanted at once than the cap, and every app refreshed.
    expect(Math.max(0, ...samples.map((sample) => sample.refreshesPending))).toBeGreaterThan(cap);
    expect(refreshesAnswered(provider) - before.main).toBe(refreshApps.length);
    expect(refreshesAnswered(other) - before.other).toBe(otherProviderApps.length);
    expect(main).toHaveLength(refreshApps.length);
    expect(atOther).toHaveLength(otherProviderApps.length);
    // The cap, reached and never exceeded, at each provider on its own.
    expect(maxOverlap(main)).toBe(cap);
    expect(maxOverlap(atOther)).toBe(cap);
    expect(maxOverlap([...main, ...atOther])).toBeGreaterThan(cap);
    // Those over the cap waited for a slot: their reconciles found none and ended (the app is
    // queued again when a slot frees up), instead of holding a worker for a 3 s request.
    const keyOf = (name: string) => `${testbed.namespace}/${name}`;
    expect(refreshApps.filter((name) => parked.has(keyOf(name))).length).toBeGreaterThanOrEqual(1);
    expect([...parked].every((key) => [...refreshApps, ...otherProviderApps].some((name) => key === keyOf(name)))).toBe(true);
  }, 180_000);

  it('holds code exchanges to the same cap when 6 people complete their consent at once through the callback', async () => {
    const { views, callbacks } = await consentAll(consentApps);
    const codesBefore = codesAnswered(provider);
    const since = Date.now();
    const demand = sampleDemand(views, () => 0);

    const pages = await Promise.all(callbacks.map((url) => visit(url)));
    const samples = await demand.stop();

    const intervals = load.main.intervals(since);
    const mostPending = Math.max(0, ...samples.map((sample) => sample.exchangesPending));
    figure(`code exchanges: provider held [ms] ${describeIntervals(intervals, since)}; most in flight ${maxOverlap(intervals)}; most exchanges taken up and unanswered at once ${mostPending} (${samples.length} samples)`);

    expect(pages.map((page) => page.status)).toEqual(callbacks.map(() => 200));
    const exchanges = provider.sandbox.stats().presentedAuthorizationCodes.slice(codesBefore);
    expect(exchanges.map((exchange) => exchange.outcome)).toEqual(callbacks.map(() => 'ok'));
    expect(intervals).toHaveLength(consentApps.length);
    // The scenario: more exchanges were past the state check and waiting or in flight than the cap.
    expect(mostPending).toBeGreaterThan(cap);
    expect(maxOverlap(intervals)).toBe(cap);
    await apps.allWith(consentApps, ready, 'Ready=True after the consent', 60_000);
  }, 180_000);

  it('counts refreshes and code exchanges against one cap when 3 of each are wanted at once', async () => {
    const { views, callbacks } = await consentAll(mixedConsentApps);
    const before = { codes: codesAnswered(provider), refreshes: refreshesAnswered(provider) };
    const since = Date.now();
    let wanted = 0;
    const demand = sampleDemand(views, () => wanted);

    const [, ...pages] = await Promise.all([
      kubectlOK(['annotate', 'oauthapp', ...mixedRefreshApps, '-n', testbed.namespace, 'oauthapp.dev/rotate=mixed', '--overwrite']).then(() => (wanted = mixedRefreshApps.length)),
      ...callbacks.map((url) => visit(url)),
    ]);
    await apps.allWith(mixedRefreshApps, (app) => app.status?.lastRotateRequest === 'mixed', 'the rotate request handled', 120_000);
    const samples = await demand.stop();

    const intervals = load.main.intervals(since);
    const stats = provider.sandbox.stats();
    const answered = [
      ...stats.presentedRefreshTokens.slice(before.refreshes).map((presentation) => ({ at: presentation.at, kind: 'refresh' })),
      ...stats.presentedAuthorizationCodes.slice(before.codes).map((presentation) => ({ at: presentation.at, kind: 'code' })),
    ].sort((a, b) => a.at - b.at);
    const both = samples.filter((sample) => sample.exchangesPending >= 1 && sample.refreshesPending >= 1);
    const mostPending = Math.max(0, ...both.map((sample) => sample.exchangesPending + sample.refreshesPending));
    figure(`mixed: provider held [ms] ${describeIntervals(intervals, since)}; answered in order ${answered.map(({ at, kind }) => `${kind}@${at - since}`).join(' ')}; most in flight ${maxOverlap(intervals)}; most wanted at once with both kinds pending ${mostPending}`);

    expect(pages.map((page) => page.status)).toEqual(callbacks.map(() => 200));
    expect(answered.filter(({ kind }) => kind === 'refresh')).toHaveLength(mixedRefreshApps.length);
    expect(answered.filter(({ kind }) => kind === 'code')).toHaveLength(mixedConsentApps.length);
    expect(intervals).toHaveLength(mixedRefreshApps.length + mixedConsentApps.length);
    // The scenario: at one moment both kinds were pending, more of them than the cap.
    expect(mostPending).toBeGreaterThan(cap);
    expect(maxOverlap(intervals)).toBe(cap);
    await apps.allWith(mixedConsentApps, ready, 'Ready=True after the consent', 60_000);
  }, 180_000);

  it('leaked no client secret, code or token into logs, Events or status', async () => {
    provider.sandbox.faults = {};
    other.sandbox.faults = {};
    const stats = [provider, other].map((each) => each.sandbox.stats());
    const targets = await Promise.all([...refreshApps, ...otherProviderApps, ...consentApps, ...mixedConsentApps].map((name) => testbed.admin.secretData(testbed.namespace, `${name}-credentials`)));
    await expectNoSecretValuesLeaked(
      [
        ...testbed.canaries,
        ...stats.flatMap((each) => [...each.presentedRefreshTokens, ...each.presentedAuthorizationCodes].map((presentation) => presentation.value)),
        ...targets.map((data) => data?.access_token ?? ''),
      ],
      { namespace: testbed.namespace, logs: testbed.logs() },
    );
  });
});
