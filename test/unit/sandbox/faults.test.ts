import { afterEach, describe, expect, it } from '@jest/globals';
import { type Running, type TokenBody, basicAuth, json, refresh, startSandbox, until, whoAmI } from './harness.ts';

describe('sandbox fault knobs on /oauth/token', () => {
  let running: Running;
  afterEach(async () => {
    await running.close();
  });

  const bootstrap = () => running.sandbox.issueRefreshToken(running.client.clientId);

  it('answers the next N token requests with 429 and Retry-After', async () => {
    running = await startSandbox();
    running.sandbox.faults = { status429: { count: 2, retryAfterSeconds: 7 } };
    const refreshToken = bootstrap();

    const answers = [await refresh(running, refreshToken), await refresh(running, refreshToken)];

    expect(answers.map((r) => r.statusCode)).toEqual([429, 429]);
    expect(answers.map((r) => r.headers['retry-after'])).toEqual(['7', '7']);
  });

  it('answers normally once the 429 count is used up, without having consumed the token', async () => {
    running = await startSandbox();
    running.sandbox.faults = { status429: { count: 1, retryAfterSeconds: 1 } };
    const refreshToken = bootstrap();
    await refresh(running, refreshToken);

    expect((await refresh(running, refreshToken)).statusCode).toBe(200);
  });

  it('answers the next N token requests with the configured 5xx status', async () => {
    running = await startSandbox();
    running.sandbox.faults = { status5xx: { count: 1, status: 502 } };

    expect((await refresh(running, bootstrap())).statusCode).toBe(502);
  });

  it('answers the next N token requests with 200 and the configured unparseable body', async () => {
    running = await startSandbox();
    running.sandbox.faults = { malformedBody: { count: 1, body: '{"access_token": "abc"' } };

    const response = await refresh(running, bootstrap());

    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.body).toBe('{"access_token": "abc"');
  });

  it('counts faults down and reports what is left', async () => {
    running = await startSandbox();
    running.sandbox.faults = { status5xx: { count: 3, status: 500 } };

    await refresh(running, bootstrap());

    expect(running.sandbox.faults).toEqual({ status5xx: { count: 2, status: 500 } });
  });

  it('waits delayMs through the injected sleep before answering a token request', async () => {
    const sleeps: number[] = [];
    running = await startSandbox({ sleep: async (ms) => void sleeps.push(ms) });
    running.sandbox.faults = { delayMs: 2500 };

    await refresh(running, bootstrap());

    expect(sleeps).toEqual([2500]);
  });

  it('holds a token response back by delayMs with the default timer', async () => {
    running = await startSandbox();
    running.sandbox.faults = { delayMs: 300 };
    const started = performance.now();

    await refresh(running, bootstrap());

    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('still processes a delayed request whose client gave up waiting', async () => {
    let release = (): void => undefined;
    running = await startSandbox({ sleep: () => new Promise<void>((resolve) => (release = resolve)) });
    running.sandbox.faults = { delayMs: 1000 };
    const refreshToken = bootstrap();

    const abandoned = running.http.post('oauth/token', {
      headers: { authorization: basicAuth(running.client.clientId, running.client.clientSecret) },
      form: { grant_type: 'refresh_token', refresh_token: refreshToken },
      timeout: { request: 100 },
    });
    await expect(abandoned).rejects.toThrow(/timeout/i);
    release();
    await until(() => running.sandbox.stats().tokenRequests === 1);

    expect(running.sandbox.stats().presentedRefreshTokens).toEqual([
      expect.objectContaining({ value: refreshToken, outcome: 'ok' }),
    ]);
  });

  it('leaves /v1/users/me alone', async () => {
    running = await startSandbox();
    const { access_token } = json<TokenBody>(await refresh(running, bootstrap()));
    running.sandbox.faults = { status5xx: { count: 5, status: 503 } };

    expect(await whoAmI(running, access_token)).toBe(200);
  });

  it('refuses a faults shape it does not know', async () => {
    running = await startSandbox();

    expect(() => {
      running.sandbox.faults = { status5xx: { count: 1, status: 404 } };
    }).toThrow();
  });
});
