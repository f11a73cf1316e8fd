// Chaos at the provider: 429 with Retry-After, 5xx (retried with a backoff when the provider keeps
// refresh tokens; a possibly consumed token when it rotates them), a provider slower than the
// token request timeout (with and without refresh-token rotation), and malformed 2xx bodies
// fuzzed with fast-check. The operator runs in-process with --token-request-timeout=2 against the
// shared control plane; every provider rotates refresh tokens and revokes the grant on replay
// unless a case says otherwise.
//
// The operator and the sandbox providers share this process's event loop with the test, so the
// test must stay light: objects are applied in one kubectl call, and every wait reads one shared
// `kubectl get oauthapps` list. (A kubectl process per app and poll, 125 spawns a second with 25
// apps, stalled the event loop for up to 2 s: token requests ran past the 2 s timeout, and a
// rotating provider's token that may have been consumed is rightly given up as RefreshInterrupted,
// so those apps never became Ready.)
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
import { apply, condition, oauthAppManifest, opaqueSecret, type AppView } from '../support/resources.ts';
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

/** Every waiter reads the same `kubectl get oauthapps` list, started at most every 300 ms. */
let listing: { startedAt: number; apps: Promise<Map<string, AppView>> } | undefined;
function listApps(): Promise<Map<string, AppView>> {
  if (!listing || Date.now() - listing.startedAt >= 300) {
    const apps = kubectlOK(['get', 'oauthapps', '-n', namespace, '-o', 'json']).then(
      (output) => new Map((JSON.parse(output) as { items: AppView[] }).items.map((app) => [app.metadata.name, app])),
    );
    listing = { startedAt: Date.now(), apps };
  }
  return listing.apps;
}

/** How long a wait for one app's change lasts (not a claim about speed; tests' timeouts add these up). */
const appWaitMs = 60_000;
const appWith = (name: string, predicate: (app: AppView) => boolean, what: string, timeoutMs = appWaitMs) =>
  eventually(`${name}: ${what}`, async () => {
    const app = (await listApps()).get(name);
    return app && predicate(app) ? app : undefined;
  }, timeoutMs, 300);

/** Waits that cover creating `count` apps at once: generous, and never a claim about speed. */
const readyTimeoutMs = (count: number) => 60_000 + count * 2_000;

/** Creates the apps (their Secrets first) in one kubectl call and waits until each is Ready. */
async function readyApps(provider: TestProvider, names: readonly string[]): Promise<AppView[]> {
  const secrets: object[] = [];
  const apps: object[] = [];
  for (const name of names) {
    const seed = provider.sandbox.issueRefreshToken(provider.clientId);
    canaries.push(seed);
    secrets.push(opaqueSecret(`${name}-client`, { client_secret: provider.clientSecret }), opaqueSecret(`${name}-bootstrap`, { refresh_token: seed }));
    apps.push(
      oauthAppManifest({ name, clientId: provider.clientId, tokenURL: provider.tokenURL, redirectURI: provider.redirectURI, refreshTokenRef: { name: `${name}-bootstrap`, key: 'refresh_token' } }),
    );
  }
  await apply(namespace, { apiVersion: 'v1', kind: 'List', items: [...secrets, ...apps] });
  const ready = await Promise.all(names.map((name) => appWith(name, (current) => condition(current, 'Ready')?.status === 'True', 'Ready=True', readyTimeoutMs(names.length))));
  for (const app of ready) canaries.push(...(await tokensOf(app)));
  return ready;
}

async function readyApp(name: string, provider: TestProvider): Promise<AppView> {
  const [app] = await readyApps(provider, [name]);
  if (!app) throw new Error(`${name} was not created`);
  return app;
}

/** One kubectl call annotates every app named. */
const rotate = (names: readonly string[], value: string) => kubectlOK(['annotate', 'oauthapp', ...names, '-n', namespace, `oauthapp.dev/rotate=${value}`, '--overwrite']);
const target = async (name: string) => (await admin.secretData(namespace, `${name}-credentials`)) ?? {};
const state = async (app: AppView) => (await admin.secretData(operatorNamespace, `oauthapp-state-${app.metadata.uid}`)) ?? {};
async function tokensOf(app: AppView): Promise<string[]> {
  const [t, s] = await Promise.all([target(app.metadata.name), state(app)]);
  return [t.access_token ?? '', s.refresh_token ?? '', s.access_token ?? ''];
}
/**
 * Refresh tokens presented to `provider` that it issued: all but those it refused as unknown
 * (a refresh token salvaged from a fuzzed body is test-made text, not a secret, and may be short
 * and ordinary enough to occur in a log by chance).
 */
const issuedTokens = (provider: TestProvider) => provider.sandbox.stats().presentedRefreshTokens.filter((p) => p.outcome !== 'invalid_grant').map((p) => p.value);
const gaps = (times: number[]) => times.slice(1).map((at, index) => at - (times[index] ?? 0));

it.concurrent('429 with Retry-After: sends no token request before Retry-After has passed, however often it comes', async () => {
  const provider = await newProvider();
  await readyApp('limited', provider);
  provider.sandbox.faults = { status429: { count: iterations, retryAfterSeconds: 2 } };
  const before = provider.sandbox.stats().presentedRefreshTokens.length;
  await rotate(['limited'], 'now');
  await appWith('limited', (app) => app.status?.lastRotateRequest === 'now' && provider.sandbox.stats().presentedRefreshTokens.slice(before).some((p) => p.outcome === 'ok'), 'refreshed after the 429s', 30_000 + iterations * 5_000);

  const attempts = provider.sandbox.stats().presentedRefreshTokens.slice(before);
  const waits = gaps(attempts.map((p) => p.at));
  report(`429 Retry-After 2 s: ${iterations} refusals, ${attempts.length} requests, shortest wait after a 429 ${Math.min(...waits)} ms`);
  expect(attempts.map((p) => p.outcome)).toEqual([...Array<string>(iterations).fill('status429'), 'ok']);
  for (const wait of waits) expect(wait).toBeGreaterThanOrEqual(2_000);
  expect(replays(provider.sandbox.stats().presentedRefreshTokens)).toEqual([]);
}, readyTimeoutMs(1) + 30_000 + iterations * 5_000 + 10_000);

it.concurrent('5xx for a while (provider keeps refresh tokens): backs off (no hot loop), then a rotate request cuts the backoff short and the app recovers', async () => {
  // Resending after a 5xx is safe only with a provider that keeps refresh tokens (for one that
  // rotates them, a 5xx may have consumed the token: the 502 case below).
  const provider = await newProvider({ rotateRefreshTokens: false });
  const names = Array.from({ length: Math.max(2, iterations) }, (_, index) => `unavailable-${index}`);
  const apps = await readyApps(provider, names);
  // Without rotation each app keeps presenting its own refresh token: its requests are found by value.
  const appByValue = new Map(await Promise.all(apps.map(async (app) => [(await state(app)).refresh_token ?? '', app.metadata.name] as const)));
  expect([...appByValue.values()].sort()).toEqual([...names].sort());

  provider.sandbox.faults = { status5xx: { count: 100_000, status: 503 } };
  const before = provider.sandbox.stats().presentedRefreshTokens.length;
  const during = () => provider.sandbox.stats().presentedRefreshTokens.slice(before);
  const windowStart = Date.now();
  await rotate(names, 'during-outage');
  // The scenario: every app's rotate request reached the provider while it answered 503 …
  await eventually('every app sent its rotate request during the outage', () => {
    const tried = new Set(during().map((p) => appByValue.get(p.value)));
    return names.every((name) => tried.has(name)) ? true : undefined;
  }, readyTimeoutMs(names.length), 200);
  // … and the outage lasted long enough for the first backoff step (5-10 s) to come round.
  await sleep(Math.max(0, windowStart + 12_000 - Date.now()));
  const windowMs = Date.now() - windowStart;
  const inWindow = during();
  provider.sandbox.faults = {};
  await rotate(names, 'after-outage');
  await Promise.all(
    names.map((name) =>
      appWith(
        name,
        (app) => app.status?.lastRotateRequest === 'after-outage' && condition(app, 'Ready')?.status === 'True' && condition(app, 'Authorized')?.status === 'True',
        'recovered',
        readyTimeoutMs(names.length),
      ),
    ),
  );

  // Per app (one refresh-token value each): the spacing of its tries during the outage.
  const byApp = new Map<string, number[]>(names.map((name) => [name, []]));
  for (const p of inWindow) byApp.get(appByValue.get(p.value) ?? '(unknown)')?.push(p.at);
  const retryGaps = [...byApp.values()].flatMap(gaps);
  const shortest = Math.min(...retryGaps);
  // The first try at once, retries after 5-10 s, 10-20 s, …: the n-th try comes 5·(2^(n-1) - 1) s or more after the first.
  const mostTries = 1 + Math.floor(Math.log2(windowMs / 5_000 + 1));
  report(
    `503 for ${windowMs} ms: ${names.length} apps, ${inWindow.length} requests (${(inWindow.length / names.length).toFixed(1)} per app, at most ${mostTries} allowed), ` +
      `${retryGaps.length} retries, shortest retry gap ${Number.isFinite(shortest) ? shortest : '-'} ms`,
  );
  expect(inWindow.every((p) => appByValue.has(p.value))).toBe(true);
  expect(inWindow.every((p) => p.outcome === 'status5xx')).toBe(true);
  for (const [name, times] of byApp) expect({ name, tried: times.length >= 1, noHotLoop: times.length <= mostTries }).toEqual({ name, tried: true, noHotLoop: true });
  for (const gap of retryGaps) expect(gap).toBeGreaterThanOrEqual(5_000);
  for (const name of names) expect(await provider.whoAmI((await target(name)).access_token ?? '')).toBe(200);
  // Without rotation a refresh token is presented again by design; the grant must never have been refused.
  expect(provider.sandbox.stats().presentedRefreshTokens.filter((p) => p.outcome === 'invalid_grant')).toEqual([]);
}, 3 * readyTimeoutMs(Math.max(2, iterations)) + 12_000 + 10_000);

it.concurrent('a 502 from a provider that rotates refresh tokens: the token may be consumed, so it is reported and never resent; the access token in use stays', async () => {
  const provider = await newProvider();
  const app = await readyApp('gateway-502', provider);
  const accessToken = (await target('gateway-502')).access_token;
  const refreshToken = (await state(app)).refresh_token;
  const before = provider.sandbox.stats().presentedRefreshTokens.length;
  provider.sandbox.faults = { status5xx: { count: 1, status: 502 } };
  await rotate(['gateway-502'], 'behind-a-gateway');
  const reported = await appWith('gateway-502', (current) => condition(current, 'Authorized')?.reason === 'RefreshInterrupted', 'Authorized=False RefreshInterrupted');
  await sleep(11_000); // past the longest first backoff step (10 s): a resend would have come by now
  const presented = provider.sandbox.stats().presentedRefreshTokens.slice(before);
  report(`502 (rotating provider): ${presented.length} requests, reported Authorized=${condition(reported, 'Authorized')?.status} ${condition(reported, 'Authorized')?.reason}`);
  expect(presented.map((p) => p.outcome)).toEqual(['status5xx']);
  expect(presented[0]?.value).toBe(refreshToken);
  expect(condition(reported, 'Authorized')?.status).toBe('False');
  expect(condition(reported, 'Ready')).toMatchObject({ status: 'False', reason: 'NotAuthorized' });
  expect((await target('gateway-502')).access_token).toBe(accessToken);
  expect(await provider.whoAmI(accessToken ?? '')).toBe(200);
  expect(replays(provider.sandbox.stats().presentedRefreshTokens)).toEqual([]);
  canaries.push(...(await tokensOf(app)));
}, readyTimeoutMs(1) + appWaitMs + 11_000 + 10_000);

it.concurrent('a slow provider: within the timeout: just slower', async () => {
  const provider = await newProvider();
  await readyApp('slow-ok', provider);
  provider.sandbox.faults = { delayMs: 500 };
  await rotate(['slow-ok'], 'slow');
  await appWith('slow-ok', (app) => app.status?.lastRotateRequest === 'slow' && condition(app, 'Authorized')?.status === 'True', 'refreshed');
  const presented = provider.sandbox.stats().presentedRefreshTokens;
  expect(presented.map((p) => p.outcome)).toEqual(['ok', 'ok']);
}, readyTimeoutMs(1) + appWaitMs + 10_000);

it.concurrent('a slow provider: past the timeout, rotating refresh tokens: the token may be consumed, so it is reported and never replayed', async () => {
  const provider = await newProvider();
  const app = await readyApp('slow-rotating', provider);
  const accessToken = (await target('slow-rotating')).access_token;
  provider.sandbox.faults = { delayMs: 4_000 };
  await rotate(['slow-rotating'], 'slow');
  const reported = await appWith('slow-rotating', (current) => condition(current, 'Authorized')?.reason === 'RefreshInterrupted', 'RefreshInterrupted');
  await sleep(5_000); // the provider finishes the request it was given, then nothing more may come
  const presented = provider.sandbox.stats().presentedRefreshTokens;
  report(`provider slower than the timeout (rotating): ${presented.length} requests, ${replays(presented).length} replays, reported ${condition(reported, 'Authorized')?.reason}`);
  expect(presented).toHaveLength(2);
  expect(replays(presented)).toEqual([]);
  expect(condition(reported, 'Ready')).toMatchObject({ status: 'False', reason: 'NotAuthorized' });
  expect((await target('slow-rotating')).access_token).toBe(accessToken);
  expect(await provider.whoAmI(accessToken ?? '')).toBe(200);
  canaries.push(...(await tokensOf(app)), ...presented.map((p) => p.value));
}, readyTimeoutMs(1) + appWaitMs + 5_000 + 10_000);

it.concurrent('a slow provider: past the timeout, refresh tokens kept: resends with a backoff (no hot loop), then recovers', async () => {
  const provider = await newProvider({ rotateRefreshTokens: false });
  const app = await readyApp('slow-keeping', provider);
  provider.sandbox.faults = { delayMs: 4_000 };
  const before = provider.sandbox.stats().presentedRefreshTokens.length;
  const windowStart = Date.now();
  await rotate(['slow-keeping'], 'slow');
  await sleep(12_000);
  provider.sandbox.faults = {};
  await sleep(4_000); // let the requests already given to the provider finish (they are counted when answered)
  const during = provider.sandbox.stats().presentedRefreshTokens.slice(before);
  const windowMs = Date.now() - windowStart;
  await rotate(['slow-keeping'], 'fast-again');
  await appWith('slow-keeping', (current) => current.status?.lastRotateRequest === 'fast-again' && condition(current, 'Authorized')?.status === 'True' && condition(current, 'Ready')?.status === 'True', 'recovered');
  report(`provider slower than the timeout (not rotating): ${during.length} requests in ${windowMs} ms, gaps ${gaps(during.map((p) => p.at)).join(', ')} ms`);
  expect(during.length).toBeGreaterThanOrEqual(1);
  expect(during.length).toBeLessThanOrEqual(3);
  for (const gap of gaps(during.map((p) => p.at))) expect(gap).toBeGreaterThanOrEqual(5_000);
  expect(await provider.whoAmI((await target('slow-keeping')).access_token ?? '')).toBe(200);
  canaries.push(...(await tokensOf(app)));
}, readyTimeoutMs(1) + 16_000 + appWaitMs + 10_000);

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

/**
 * The refresh token a malformed 2xx still carries (a JSON object with a non-empty string
 * refresh_token): after a 2xx the provider may have retired the sent token, so the operator must
 * store this one although the rest of the answer is refused.
 */
function carriedRefreshToken(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { refresh_token?: unknown } | null;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
    return typeof parsed.refresh_token === 'string' && parsed.refresh_token !== '' ? parsed.refresh_token : undefined;
  } catch {
    return undefined;
  }
}

it.concurrent('malformed 2xx bodies (fast-check): never overwrite a good access token, keep a refresh token the body carries, and never lead to a replay', async () => {
  const perRun = 3;
  const reasons = new Map<string, number>();
  let run = 0;
  let apps = 0;
  let salvaged = 0;
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
          await rotate([name], 'fuzz');
          const after = await appWith(name, (current) => current.status?.lastRotateRequest === 'fuzz' && provider.sandbox.stats().presentedRefreshTokens.length >= 2, 'the malformed answer handled');
          await sleep(300);
          const now = { target: await target(name), state: await state(app) };
          const reason = condition(after, 'Authorized')?.reason ?? '(none)';
          reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
          const carried = carriedRefreshToken(body);
          if (carried) salvaged += 1;
          // The good access token stays. A 2xx that cannot be read may have rotated the refresh token:
          // one it carries is stored; without one the sent token is reported, never replayed.
          expect(now.target.access_token).toBe(good.target.access_token);
          expect(now.state.access_token).toBe(good.state.access_token);
          expect(now.state.refresh_token).toBe(carried ?? good.state.refresh_token);
          // Ready=False only while a person must re-authorize; either way the good token is valid.
          expect(condition(after, 'Ready')?.status).toBe(condition(after, 'Authorized')?.status === 'False' ? 'False' : 'True');
          expect(condition(after, 'Ready')?.message).toMatch(/^the access token is valid until /);
          expect(await provider.whoAmI(now.target.access_token ?? '')).toBe(200);
          expect(replays(provider.sandbox.stats().presentedRefreshTokens)).toEqual([]);
          canaries.push(...issuedTokens(provider));
        }),
      );
    }),
    { numRuns: iterations, endOnFailure: true },
  );
  report(`malformed 2xx bodies: ${apps} fuzzed answers (${salvaged} carrying a refresh token, stored), 0 good access tokens overwritten, Authorized reasons ${JSON.stringify(Object.fromEntries(reasons))}`);
}, iterations * (readyTimeoutMs(1) + appWaitMs + 5_000) + 10_000);

it('all of the above: leaked no client secret or token into logs, Events, status or metrics', async () => {
  metrics.push(await (await fetch(`${operator.metricsURL}/metrics`)).text());
  for (const provider of providers) canaries.push(...issuedTokens(provider));
  await expectNoLeaks({ canaries, namespace, logs: operator.logs(), metrics });
});
