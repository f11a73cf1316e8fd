// Short-lived tokens, many refreshes: workloads never see an expired token, every refresh-token
// value goes to the provider exactly once, and nothing secret reaches logs, Events or status.
import { beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { eventually } from '../support/eventually.ts';
import type { TestProvider } from '../support/sandbox.ts';
import { useTestbed } from '../support/testbed.ts';

const lifetimeSeconds = 4;
const observeForMs = 16_000;

const testbed = useTestbed('cycles');
let provider: TestProvider;

beforeAll(async () => {
  provider = await testbed.newProvider({ expiresIn: lifetimeSeconds });
});

describe('refresh cycles with a token lifetime of a few seconds', () => {
  const seen = { accessTokens: new Set<string>(), expiredSamples: [] as string[], samples: 0 };

  beforeAll(async () => {
    await testbed.applyApp('fast', provider);
    await eventually('a first access token', async () => (await testbed.admin.secretData(testbed.namespace, 'fast-credentials'))?.access_token);

    // A workload's view: sample the Secret as fast as the apiserver answers.
    const until = Date.now() + observeForMs;
    while (Date.now() < until) {
      const data = await testbed.admin.secretData(testbed.namespace, 'fast-credentials');
      const sampledAt = Date.now();
      if (data?.access_token && data.expires_at) {
        seen.samples += 1;
        seen.accessTokens.add(data.access_token);
        if (Date.parse(data.expires_at) <= sampledAt) seen.expiredSamples.push(data.expires_at);
      }
      await sleep(50);
    }
  }, observeForMs + 60_000);

  it('refreshes several times, each time before the token expires', () => {
    expect(seen.accessTokens.size).toBeGreaterThanOrEqual(4);
    expect(seen.samples).toBeGreaterThan(50);
    expect(seen.expiredSamples).toEqual([]);
  });

  it('sends each refresh-token value to the provider exactly once', () => {
    const presented = provider.sandbox.stats().presentedRefreshTokens.map((presentation) => presentation.value);

    expect(presented.length).toBeGreaterThanOrEqual(4);
    expect(new Set(presented).size).toBe(presented.length);
  });

  it('hands out access tokens the provider accepts', async () => {
    const data = await testbed.admin.secretData(testbed.namespace, 'fast-credentials');

    expect(await provider.whoAmI(data?.access_token ?? '')).toBe(200);
  });

  it('writes no client secret or token into logs, Events or status', async () => {
    const refreshTokens = provider.sandbox.stats().presentedRefreshTokens.map((presentation) => presentation.value);

    await expectNoSecretValuesLeaked([provider.clientSecret, ...seen.accessTokens, ...refreshTokens], { namespace: testbed.namespace, logs: testbed.logs() });
  });
});
