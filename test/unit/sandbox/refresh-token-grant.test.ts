import { afterEach, describe, expect, it } from '@jest/globals';
import {
  type ErrorBody,
  REDIRECT_URI,
  type Running,
  type TokenBody,
  install,
  json,
  refresh,
  startSandbox,
  tokenRequest,
  whoAmI,
} from './harness.ts';

describe('sandbox token endpoint, refresh_token grant', () => {
  let running: Running;
  afterEach(async () => {
    await running.close();
  });

  it('returns a new refresh token on every refresh', async () => {
    running = await startSandbox();
    const installed = await install(running);

    const refreshed = json<TokenBody>(await refresh(running, installed.refresh_token ?? ''));

    expect(refreshed.refresh_token).toEqual(expect.any(String));
    expect(refreshed.refresh_token).not.toBe(installed.refresh_token);
    expect(refreshed.access_token).not.toBe(installed.access_token);
  });

  it('refuses a refresh token the second time it is presented', async () => {
    running = await startSandbox();
    const refreshToken = running.sandbox.issueRefreshToken(running.client.clientId);
    await refresh(running, refreshToken);

    const replay = await refresh(running, refreshToken);

    expect(replay.statusCode).toBe(400);
    expect(json<ErrorBody>(replay)).toEqual({ error: 'invalid_grant', error_description: 'refresh_token is invalid' });
  });

  it('revokes the whole grant when an exchanged refresh token is replayed', async () => {
    running = await startSandbox();
    const installed = await install(running);
    const rotated = json<TokenBody>(await refresh(running, installed.refresh_token ?? ''));

    await refresh(running, installed.refresh_token ?? '');

    expect(await whoAmI(running, rotated.access_token)).toBe(401);
    expect(await whoAmI(running, installed.access_token)).toBe(401);
    expect((await refresh(running, rotated.refresh_token ?? '')).statusCode).toBe(400);
  });

  it('keeps the grant alive on replay when revokeGrantOnReplay is off', async () => {
    running = await startSandbox({ revokeGrantOnReplay: false });
    const installed = await install(running);
    const rotated = json<TokenBody>(await refresh(running, installed.refresh_token ?? ''));

    await refresh(running, installed.refresh_token ?? '');

    expect(await whoAmI(running, rotated.access_token)).toBe(200);
    expect((await refresh(running, rotated.refresh_token ?? '')).statusCode).toBe(200);
  });

  it('returns the same refresh token, still usable, when rotation is off', async () => {
    running = await startSandbox({ rotateRefreshTokens: false });
    const refreshToken = running.sandbox.issueRefreshToken(running.client.clientId);

    const first = json<TokenBody>(await refresh(running, refreshToken));
    const second = await refresh(running, refreshToken);

    expect(first.refresh_token).toBe(refreshToken);
    expect(second.statusCode).toBe(200);
  });

  it('leaves refresh_token out of the response when rotation is off and omitUnchangedRefreshToken is on', async () => {
    running = await startSandbox({ rotateRefreshTokens: false, omitUnchangedRefreshToken: true });
    const refreshToken = running.sandbox.issueRefreshToken(running.client.clientId);

    const body = json<TokenBody>(await refresh(running, refreshToken));

    expect(body).not.toHaveProperty('refresh_token');
    expect(body.access_token).toEqual(expect.any(String));
  });

  it("refuses another client's refresh token without revoking its grant", async () => {
    running = await startSandbox();
    const refreshToken = running.sandbox.issueRefreshToken(running.client.clientId);
    const other = running.sandbox.registerClient({ redirectUri: REDIRECT_URI });

    const foreign = await tokenRequest(running, { grant_type: 'refresh_token', refresh_token: refreshToken }, other);

    expect(json<ErrorBody>(foreign)).toEqual({ error: 'invalid_grant', error_description: 'refresh_token is invalid' });
    expect((await refresh(running, refreshToken)).statusCode).toBe(200);
  });

  it('refuses a refresh token left unused for longer than its idle lifetime', async () => {
    running = await startSandbox({ refreshTokenIdleTtlMs: 60_000 });
    const refreshToken = running.sandbox.issueRefreshToken(running.client.clientId);
    running.clock.advance(60_000);

    expect(json<ErrorBody>(await refresh(running, refreshToken)).error).toBe('invalid_grant');
  });

  it('refuses an unknown refresh token', async () => {
    running = await startSandbox();

    expect(json<ErrorBody>(await refresh(running, 'never-issued'))).toEqual({
      error: 'invalid_grant',
      error_description: 'refresh_token is invalid',
    });
  });

  it('uses expiresIn for expires_in', async () => {
    running = await startSandbox({ expiresIn: 120 });

    const body = json<TokenBody>(await refresh(running, running.sandbox.issueRefreshToken(running.client.clientId)));

    expect(body.expires_in).toBe(120);
  });
});
