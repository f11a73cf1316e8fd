import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { type Running, type TokenBody, install, json, refresh, startSandbox, tokenRequest } from './harness.ts';

describe('sandbox stats()', () => {
  let running: Running;
  beforeEach(async () => {
    running = await startSandbox();
  });
  afterEach(async () => {
    await running.close();
  });

  it('counts token requests by grant type and outcome', async () => {
    const installed = await install(running);
    await refresh(running, installed.refresh_token ?? '');
    await refresh(running, installed.refresh_token ?? '');
    await tokenRequest(running, { grant_type: 'password' });

    expect(running.sandbox.stats()).toMatchObject({
      tokenRequests: 4,
      byGrant: {
        authorization_code: { ok: 1 },
        refresh_token: { ok: 1, invalid_grant: 1 },
        password: { unsupported_grant_type: 1 },
      },
    });
  });

  it('records every refresh-token value presented, in order, with its outcome', async () => {
    const first = running.sandbox.issueRefreshToken(running.client.clientId);
    const second = json<TokenBody>(await refresh(running, first)).refresh_token ?? '';
    await refresh(running, second);
    await refresh(running, first);

    expect(running.sandbox.stats().presentedRefreshTokens.map(({ value, outcome }) => ({ value, outcome }))).toEqual([
      { value: first, outcome: 'ok' },
      { value: second, outcome: 'ok' },
      { value: first, outcome: 'invalid_grant' },
    ]);
  });

  it('records refresh tokens presented to requests that met a fault', async () => {
    const refreshToken = running.sandbox.issueRefreshToken(running.client.clientId);
    running.sandbox.faults = { status429: { count: 1, retryAfterSeconds: 1 } };

    await refresh(running, refreshToken);

    expect(running.sandbox.stats().presentedRefreshTokens).toEqual([
      { value: refreshToken, clientId: running.client.clientId, outcome: 'status429', at: running.clock.now() },
    ]);
  });

  it('records every authorization code exchanged', async () => {
    await install(running);

    const [presented] = running.sandbox.stats().presentedAuthorizationCodes;
    expect(presented).toMatchObject({ clientId: running.client.clientId, outcome: 'ok' });
    expect(presented?.value).toMatch(/^[\w-]{20,}$/);
  });
});
