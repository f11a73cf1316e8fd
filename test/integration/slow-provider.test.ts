// One tenant's slow provider does not hold the operator's workers (issue 11, "Fair to every
// tenant"). The real operator runs with --workers=2 and --provider-concurrency=1 over two app
// namespaces: in `slow`, four apps whose provider holds every token request for 9 s (the token
// request timeout is 10 s); in `healthy`, one app on a provider of its own. Once all four slow apps
// want a refresh at once (a rotate request each), the slow provider's one slot is busy for 36 s and
// three apps wait for it; a worker waiting for a slot would leave none for anyone else. The
// healthy app's new client secret must reach its target Secret while the slow provider still holds
// its first request: an ordering, not a stopwatch.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { eventually } from '../support/eventually.ts';
import { kubectlOK } from '../support/kubectl.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { createTestNamespace, deleteTestNamespace } from '../support/namespaces.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';
import { inFlightRecorder, maxOverlap } from '../support/provider-load.ts';
import { apply, condition, getApp, oauthAppManifest, opaqueSecret, secretData, type AppView } from '../support/resources.ts';
import { startTestProvider, type TestProvider } from '../support/sandbox.ts';

/** Just under the operator's default --token-request-timeout (10 s). */
const slowDelayMs = 9_000;
const slowApps = ['slow-1', 'slow-2', 'slow-3', 'slow-4'];
const figure = (line: string) => process.stdout.write(`[slow-provider] ${line}\n`);

let slowNamespace: string;
let healthyNamespace: string;
let operatorNamespace: string;
let operator: TestOperator;
let slow: TestProvider;
let healthy: TestProvider;
const load = inFlightRecorder();
const canaries: string[] = [];

async function applyApp(namespace: string, name: string, provider: TestProvider): Promise<void> {
  const seed = provider.sandbox.issueRefreshToken(provider.clientId);
  canaries.push(provider.clientSecret, seed);
  await apply(namespace, {
    apiVersion: 'v1',
    kind: 'List',
    items: [
      opaqueSecret(`${name}-client`, { client_secret: provider.clientSecret }),
      opaqueSecret(`${name}-bootstrap`, { refresh_token: seed }),
      oauthAppManifest({
        name,
        clientId: provider.clientId,
        tokenURL: provider.tokenURL,
        redirectURI: provider.redirectURI,
        refreshTokenRef: { name: `${name}-bootstrap`, key: 'refresh_token' },
      }),
    ],
  });
}

const ready = (app: AppView) => condition(app, 'Ready')?.status === 'True';
const appWith = (namespace: string, name: string, predicate: (app: AppView) => boolean, what: string, timeoutMs = 60_000) =>
  eventually(`${namespace}/${name}: ${what}`, async () => {
    const app = await getApp(namespace, name);
    return predicate(app) ? app : undefined;
  }, timeoutMs);

beforeAll(async () => {
  [slowNamespace, healthyNamespace, operatorNamespace] = await Promise.all([createTestNamespace('slow'), createTestNamespace('healthy'), createTestNamespace('slow-operator')]);
  operator = await startTestOperator({ namespaces: [slowNamespace, healthyNamespace], operatorNamespace, argv: ['--workers=2', '--provider-concurrency=1'] });
  slow = await startTestProvider({ sleep: load.sleep });
  healthy = await startTestProvider();
  for (const name of slowApps) await applyApp(slowNamespace, name, slow);
  await applyApp(healthyNamespace, 'tenant', healthy);
  for (const name of slowApps) await appWith(slowNamespace, name, ready, 'Ready=True');
  await appWith(healthyNamespace, 'tenant', ready, 'Ready=True');
  // From here on every token request at the slow provider is held.
  slow.sandbox.faults = { delayMs: slowDelayMs };
}, 180_000);

afterAll(async () => {
  await operator?.stop();
  await Promise.all([slow?.close(), healthy?.close()]);
  await Promise.all([deleteTestNamespace(slowNamespace), deleteTestNamespace(healthyNamespace), deleteTestNamespace(operatorNamespace)]);
});

describe('a slow provider in one namespace, --workers=2 --provider-concurrency=1', () => {
  let since: number;

  it("propagates another namespace's new client secret while the slow provider still holds its first request", async () => {
    since = Date.now();
    await kubectlOK(['annotate', 'oauthapp', ...slowApps, '-n', slowNamespace, 'oauthapp.dev/rotate=slow-wave', '--overwrite']);
    // The four rotate requests arrive together: by the time the first is held at the provider the
    // others have met its busy slot (an operator whose workers wait for a slot has both waiting).
    await eventually('the slow provider holding a token request', () => (load.inFlight() >= 1 ? true : undefined));

    const changedAt = Date.now();
    await apply(healthyNamespace, opaqueSecret('tenant-client', { client_secret: 'tenant-secret-rotated' }));
    canaries.push('tenant-secret-rotated');
    await eventually('the healthy tenant target carrying its new client secret', async () => ((await secretData(healthyNamespace, 'tenant-credentials'))?.client_secret === 'tenant-secret-rotated' ? true : undefined), 60_000);
    const seenAt = Date.now();
    const slowAnswered = load.intervals(since).length;
    figure(`healthy tenant's client secret reached its target ${seenAt - changedAt} ms after the change; slow requests answered by then ${slowAnswered}, held ${load.inFlight()}; slow apps that had found no free slot: ${[...parkedSince(since)].join(' ')}`);

    // The healthy tenant did not wait behind the slow provider: its Secret changed before the slow
    // provider answered the first of the four requests.
    expect(slowAnswered).toBe(0);
  }, 90_000);

  it('propagates a new client secret of an app whose own refresh waits for the slow provider, before that refresh is answered', async () => {
    const waiting = await eventually('a slow app whose rotate request is not answered yet', async () => {
      for (const name of [...slowApps].reverse()) {
        const app = await getApp(slowNamespace, name);
        if (app.status?.lastRotateRequest !== 'slow-wave') return name;
      }
      return undefined;
    });
    await apply(slowNamespace, opaqueSecret(`${waiting}-client`, { client_secret: `${waiting}-secret-rotated` }));
    canaries.push(`${waiting}-secret-rotated`);
    await eventually(`${waiting}'s target carrying its new client secret`, async () => ((await secretData(slowNamespace, `${waiting}-credentials`))?.client_secret === `${waiting}-secret-rotated` ? true : undefined), 60_000);
    const app = await getApp(slowNamespace, waiting);
    figure(`${waiting}: new client secret in its target while its rotate request was ${app.status?.lastRotateRequest === 'slow-wave' ? 'answered' : 'not answered yet'}`);

    expect(app.status?.lastRotateRequest).not.toBe('slow-wave');
  }, 90_000);

  it('still serves every slow app, one token request at a time', async () => {
    for (const name of slowApps) await appWith(slowNamespace, name, (app) => app.status?.lastRotateRequest === 'slow-wave', 'the rotate request handled', 120_000);
    const intervals = load.intervals(since);
    const parked = parkedSince(since);
    figure(`slow provider: ${intervals.length} requests, at most ${maxOverlap(intervals)} at once; slow apps that waited for its slot (without a worker): ${[...parked].join(' ')}`);

    // The scenario: more slow apps wanted the provider at once than its one slot serves, and
    // those waited for it by ending their reconciles (the app is queued again when it frees up).
    expect(parked.size).toBeGreaterThanOrEqual(2);
    expect(intervals.length).toBeGreaterThanOrEqual(slowApps.length);
    expect(maxOverlap(intervals)).toBe(1);
  }, 150_000);

  it('leaked no client secret or token into logs, Events or status', async () => {
    slow.sandbox.faults = {};
    const presented = [slow, healthy].flatMap((provider) => provider.sandbox.stats().presentedRefreshTokens.map((presentation) => presentation.value));
    for (const namespace of [slowNamespace, healthyNamespace]) {
      await expectNoSecretValuesLeaked([...canaries, ...presented], { namespace, logs: operator.logs() });
    }
  });
});

/** Slow apps whose reconcile found the slow provider's slot busy since `from` (epoch ms), from the debug log. */
function parkedSince(from: number): Set<string> {
  return new Set(
    operator
      .logs()
      .split('\n')
      .filter((line) => line.includes('refresh waits for a provider slot'))
      .map((line) => JSON.parse(line) as { time: string; key: string })
      .filter((line) => Date.parse(line.time) >= from)
      .map((line) => line.key),
  );
}
