// Chaos at the provider: 429 with Retry-After, 5xx, a provider slower than the token request
// timeout (with and without refresh-token rotation), and malformed 2xx bodies fuzzed with
// fast-check. The operator runs in-process with --token-request-timeout=2 against the shared
// control plane; every provider rotates refresh tokens and revokes the grant on replay unless a
// case says otherwise.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SandboxOptions } from '../../src/sandbox/server.ts';
import { chaosIterations, expectNoLeaks, replays, report } from '../support/chaos.ts';
import { eventually } from '../support/eventually.ts';
import { adminClient, type AdminClient } from '../support/kube.ts';
import { kubectlOK } from '../support/kubectl.ts';
import { createTestNamespace, deleteTestNamespace } from '../support/namespaces.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';
import { apply, condition, getApp, oauthAppManifest, opaqueSecret, type AppView } from '../support/resources.ts';
import { startTestProvider, type TestProvider } from '../support/sandbox.ts';

const iterations = chaosIterations(3);
let namespace: string;
let operatorNamespace: string;
let operator: TestOperator;
let admin: AdminClient;
const providers: TestProvider[] = [];
const canaries: string[] = [];
const metrics: string[] = [];

beforeAll(async () => {
  [namespace, operatorNamespace] = await Promise.all([createTestNamespace('chaos-provider'), createTestNamespace('chaos-provider-operator')]);
  operator = await startTestOperator({ namespaces: [namespace], operatorNamespace, argv: ['--token-request-timeout=2'] });
  admin = await adminClient();
});

afterAll(async () => {
  await operator?.stop();
  await Promise.all(providers.map((provider) => provider.close()));
  await admin?.close();
  await Promise.all([deleteTestNamespace(namespace), deleteTestNamespace(operatorNamespace)]);
});

async function newProvider(options: SandboxOptions = {}): Promise<TestProvider> {
  const provider = await startTestProvider({ rotateRefreshTokens: true, revokeGrantOnReplay: true, ...options });
  providers.push(provider);
  canaries.push(provider.clientSecret);
  return provider;
}

const appWith = (name: string, predicate: (app: AppView) => boolean, what: string, timeoutMs = 60_000) =>
  eventually(`${name}: ${what}`, async () => {
    const app = await getApp(namespace, name);
    return predicate(app) ? app : undefined;
  }, timeoutMs, 200);

async function readyApp(name: string, provider: TestProvider): Promise<AppView> {
  const seed = provider.sandbox.issueRefreshToken(provider.clientId);
  canaries.push(seed);
  await apply(namespace, opaqueSecret(`${name}-client`, { client_secret: provider.clientSecret }));
  await apply(namespace, opaqueSecret(`${name}-bootstrap`, { refresh_token: seed }));
  await apply(
    namespace,
    oauthAppManifest({ name, clientId: provider.clientId, tokenURL: provider.tokenURL, redirectURI: provider.redirectURI, refreshTokenRef: { name: `${name}-bootstrap`, key: 'refresh_token' } }),
  );
  const app = await appWith(name, (current) => condition(current, 'Ready')?.status === 'True', 'Ready=True');
  canaries.push(...(await tokensOf(app)));
  return app;
}

const rotate = (name: string, value: string) => kubectlOK(['annotate', 'oauthapp', name, '-n', namespace, `oauthapp.dev/rotate=${value}`, '--overwrite']);
const target = async (name: string) => (await admin.secretData(namespace, `${name}-credentials`)) ?? {};
const state = async (app: AppView) => (await admin.secretData(operatorNamespace, `oauthapp-state-${app.metadata.uid}`)) ?? {};
async function tokensOf(app: AppView): Promise<string[]> {
  const [t, s] = await Promise.all([target(app.metadata.name), state(app)]);
  return [t.access_token ?? '', s.refresh_token ?? '', s.access_token ?? ''];
}
const gaps = (times: number[]) => times.slice(1).map((at, index) => at - (times[index] ?? 0));

it.concurrent('429 with Retry-After: sends no token request before Retry-After has passed, however often it comes', async () => {
  const provider = await newProvider();
  await readyApp('limited', provider);
  provider.sandbox.faults = { status429: { count: iterations, retryAfterSeconds: 2 } };
  const before = provider.sandbox.stats().presentedRefreshTokens.length;
  await rotate('limited', 'now');
  await appWith('limited', (app) => app.status?.lastRotateRequest === 'now' && provider.sandbox.stats().presentedRefreshTokens.slice(before).some((p) => p.outcome === 'ok'), 'refreshed after the 429s', 30_000 + iterations * 5_000);

  const attempts = provider.sandbox.stats().presentedRefreshTokens.slice(before);
  const waits = gaps(attempts.map((p) => p.at));
  report(`429 Retry-After 2 s: ${iterations} refusals, ${attempts.length} requests, shortest wait after a 429 ${Math.min(...waits)} ms`);
  expect(attempts.map((p) => p.outcome)).toEqual([...Array<string>(iterations).fill('status429'), 'ok']);
  for (const wait of waits) expect(wait).toBeGreaterThanOrEqual(2_000);
  expect(replays(provider.sandbox.stats().presentedRefreshTokens)).toEqual([]);
}, 120_000);

it.concurrent('5xx for a while: backs off (no hot loop), then a rotate request cuts the backoff short and the app recovers', async () => {
  const provider = await newProvider();
  const names = Array.from({ length: Math.max(2, iterations) }, (_, index) => `unavailable-${index}`);
  await Promise.all(names.map((name) => readyApp(name, provider)));
  provider.sandbox.faults = { status5xx: { count: 100_000, status: 503 } };
  const before = provider.sandbox.stats().presentedRefreshTokens.length;
  const windowStart = Date.now();
  await Promise.all(names.map((name) => rotate(name, 'during-outage')));
  await sleep(12_000);
  const windowMs = Date.now() - windowStart;
  const during = provider.sandbox.stats().presentedRefreshTokens.slice(before);
  provider.sandbox.faults = {};
  await Promise.all(names.map((name) => rotate(name, 'after-outage')));
  await Promise.all(names.map((name) => appWith(name, (app) => app.status?.lastRotateRequest === 'after-outage' && condition(app, 'Ready')?.status === 'True', 'recovered')));

  // Per refresh-token value (one per app during the outage): the spacing of its retries.
  const byValue = new Map<string, number[]>();
  for (const p of during) byValue.set(p.value, [...(byValue.get(p.value) ?? []), p.at]);
  const shortest = Math.min(...[...byValue.values()].flatMap(gaps));
  report(`503 for ${windowMs} ms: ${names.length} apps, ${during.length} requests (${(during.length / names.length).toFixed(1)} per app), shortest retry gap ${Number.isFinite(shortest) ? shortest : '-'} ms`);
  expect(during.every((p) => p.outcome === 'status5xx')).toBe(true);
  // First try at once, retries after 5-10 s and 10-20 s: at most 3 per app in 12 s.
  for (const times of byValue.values()) expect(times.length).toBeLessThanOrEqual(3);
  for (const gap of [...byValue.values()].flatMap(gaps)) expect(gap).toBeGreaterThanOrEqual(5_000);
  for (const name of names) expect(await provider.whoAmI((await target(name)).access_token ?? '')).toBe(200);
  expect(replays(provider.sandbox.stats().presentedRefreshTokens)).toEqual([]);
}, 120_000);

it.concurrent('a slow provider: within the timeout: just slower', async () => {
  const provider = await newProvider();
  await readyApp('slow-ok', provider);
  provider.sandbox.faults = { delayMs: 500 };
  await rotate('slow-ok', 'slow');
  await appWith('slow-ok', (app) => app.status?.lastRotateRequest === 'slow' && condition(app, 'Authorized')?.status === 'True', 'refreshed');
  const presented = provider.sandbox.stats().presentedRefreshTokens;
  expect(presented.map((p) => p.outcome)).toEqual(['ok', 'ok']);
});

it.concurrent('a slow provider: past the timeout, rotating refresh tokens: the token may be consumed, so it is reported and never replayed', async () => {
  const provider = await newProvider();
  const app = await readyApp('slow-rotating', provider);
  const accessToken = (await target('slow-rotating')).access_token;
  provider.sandbox.faults = { delayMs: 4_000 };
  await rotate('slow-rotating', 'slow');
  const reported = await appWith('slow-rotating', (current) => condition(current, 'Authorized')?.reason === 'RefreshInterrupted', 'RefreshInterrupted');
  await sleep(5_000); // the provider finishes the request it was given, then nothing more may come
  const presented = provider.sandbox.stats().presentedRefreshTokens;
  report(`provider slower than the timeout (rotating): ${presented.length} requests, ${replays(presented).length} replays, reported ${condition(reported, 'Authorized')?.reason}`);
  expect(presented).toHaveLength(2);
  expect(replays(presented)).toEqual([]);
  expect(condition(reported, 'Ready')?.status).toBe('True');
  expect((await target('slow-rotating')).access_token).toBe(accessToken);
  expect(await provider.whoAmI(accessToken ?? '')).toBe(200);
  canaries.push(...(await tokensOf(app)), ...presented.map((p) => p.value));
}, 60_000);

it.concurrent('a slow provider: past the timeout, refresh tokens kept: resends with a backoff (no hot loop), then recovers', async () => {
  const provider = await newProvider({ rotateRefreshTokens: false });
  const app = await readyApp('slow-keeping', provider);
  provider.sandbox.faults = { delayMs: 4_000 };
  const before = provider.sandbox.stats().presentedRefreshTokens.length;
  const windowStart = Date.now();
  await rotate('slow-keeping', 'slow');
  await sleep(12_000);
  provider.sandbox.faults = {};
  await sleep(4_000); // let the requests already given to the provider finish (they are counted when answered)
  const during = provider.sandbox.stats().presentedRefreshTokens.slice(before);
  const windowMs = Date.now() - windowStart;
  await rotate('slow-keeping', 'fast-again');
  await appWith('slow-keeping', (current) => current.status?.lastRotateRequest === 'fast-again' && condition(current, 'Authorized')?.status === 'True' && condition(current, 'Ready')?.status === 'True', 'recovered');
  report(`provider slower than the timeout (not rotating): ${during.length} requests in ${windowMs} ms, gaps ${gaps(during.map((p) => p.at)).join(', ')} ms`);
  expect(during.length).toBeGreaterThanOrEqual(1);
  expect(during.length).toBeLessThanOrEqual(3);
  for (const gap of gaps(during.map((p) => p.at))) expect(gap).toBeGreaterThanOrEqual(5_000);
  expect(await provider.whoAmI((await target('slow-keeping')).access_token ?? '')).toBe(200);
  canaries.push(...(await tokensOf(app)));
}, 90_000);

/** 2xx bodies that are not a usable token response: anything without a non-empty string access_token. */
const malformedBody = fc
  .oneof(
    fc.string(),
    fc.json(),
    fc.record(
      {
        access_token: fc.oneof(fc.constant(''), fc.integer(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 }), fc.boolean()),
        token_type: fc.oneof(fc.constant('Bearer'), fc.string(), fc.integer()),
        refresh_token: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
        expires_in: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null)),
        scope: fc.oneof(fc.string(), fc.integer()),
        api_domain: fc.oneof(fc.webUrl(), fc.string()),
      },
      { requiredKeys: [] },
    ).map((body) => JSON.stringify(body)),
    fc.constantFrom('', 'null', '[]', '{}', '{"access_token": ', `{"access_token":"${'a'.repeat(70_000)}"`, '<html>502</html>'),
  )
  .filter((body) => {
    try {
      const parsed = JSON.parse(body) as { access_token?: unknown } | null;
      return !(typeof parsed === 'object' && parsed !== null && typeof parsed.access_token === 'string' && parsed.access_token !== '');
    } catch {
      return true;
    }
  });

it.concurrent('malformed 2xx bodies (fast-check): never overwrite a good token and never lead to a replay', async () => {
  const perRun = 3;
  const reasons = new Map<string, number>();
  let run = 0;
  let apps = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(malformedBody, { minLength: perRun, maxLength: perRun }), async (bodies) => {
      run += 1;
      await Promise.all(
        bodies.map(async (body, index) => {
          apps += 1;
          const name = `malformed-${run}-${index}`;
          const provider = await newProvider();
          const app = await readyApp(name, provider);
          const good = { target: await target(name), state: await state(app) };
          provider.sandbox.faults = { malformedBody: { count: 1, body } };
          await rotate(name, 'fuzz');
          const after = await appWith(name, (current) => current.status?.lastRotateRequest === 'fuzz' && provider.sandbox.stats().presentedRefreshTokens.length >= 2, 'the malformed answer handled');
          await sleep(300);
          const now = { target: await target(name), state: await state(app) };
          const reason = condition(after, 'Authorized')?.reason ?? '(none)';
          reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
          // The good tokens stay; a 2xx that cannot be read may have rotated the token: reported, not replayed.
          expect(now.target.access_token).toBe(good.target.access_token);
          expect(now.state.access_token).toBe(good.state.access_token);
          expect(now.state.refresh_token).toBe(good.state.refresh_token);
          expect(condition(after, 'Ready')?.status).toBe('True');
          expect(await provider.whoAmI(now.target.access_token ?? '')).toBe(200);
          expect(replays(provider.sandbox.stats().presentedRefreshTokens)).toEqual([]);
          canaries.push(...provider.sandbox.stats().presentedRefreshTokens.map((p) => p.value));
        }),
      );
    }),
    { numRuns: iterations, endOnFailure: true },
  );
  report(`malformed 2xx bodies: ${apps} fuzzed answers, 0 good tokens overwritten, Authorized reasons ${JSON.stringify(Object.fromEntries(reasons))}`);
}, 60_000 + iterations * 30_000);

it('all of the above: leaked no client secret or token into logs, Events, status or metrics', async () => {
  metrics.push(await (await fetch(`${operator.metricsURL}/metrics`)).text());
  for (const provider of providers) canaries.push(...provider.sandbox.stats().presentedRefreshTokens.map((p) => p.value));
  await expectNoLeaks({ canaries, namespace, logs: operator.logs(), metrics });
});
