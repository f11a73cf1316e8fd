import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import {
  type ErrorBody,
  REDIRECT_URI,
  type Running,
  basicAuth,
  install,
  json,
  refresh,
  revoke,
  startSandbox,
  whoAmI,
} from './harness.ts';

describe('sandbox /oauth/revoke', () => {
  let running: Running;
  beforeEach(async () => {
    running = await startSandbox();
  });
  afterEach(async () => {
    await running.close();
  });

  it('answers 200 with an empty JSON object for a live refresh token', async () => {
    const { refresh_token } = await install(running);

    const response = await revoke(running, refresh_token ?? '');

    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body)).toEqual({});
  });

  it('makes the revoked refresh token invalid_grant at the token endpoint', async () => {
    const { refresh_token } = await install(running);

    await revoke(running, refresh_token ?? '');
    const response = await refresh(running, refresh_token ?? '');

    expect(response.statusCode).toBe(400);
    expect(json<ErrorBody>(response).error).toBe('invalid_grant');
  });

  it('keeps answering invalid_grant for the revoked refresh token on every later refresh', async () => {
    const { refresh_token } = await install(running);
    await revoke(running, refresh_token ?? '');

    await refresh(running, refresh_token ?? '');
    await refresh(running, refresh_token ?? '');

    expect(running.sandbox.stats().byGrant['refresh_token']).toEqual({ invalid_grant: 2 });
  });

  it('makes the grant\'s access token 401 at /users/me', async () => {
    const { access_token, refresh_token } = await install(running);

    await revoke(running, refresh_token ?? '');

    expect(await whoAmI(running, access_token)).toBe(401);
  });

  it('revokes the whole grant when given its access token', async () => {
    const { access_token, refresh_token } = await install(running);

    await revoke(running, access_token);

    expect((await refresh(running, refresh_token ?? '')).statusCode).toBe(400);
  });

  it('leaves the app\'s other grants working', async () => {
    const revoked = await install(running);
    const other = await install(running);

    await revoke(running, revoked.refresh_token ?? '');

    expect(await whoAmI(running, other.access_token)).toBe(200);
    expect((await refresh(running, other.refresh_token ?? '')).statusCode).toBe(200);
  });

  it('answers 200 for an unknown token', async () => {
    const response = await revoke(running, 'no-such-token');

    expect(response.statusCode).toBe(200);
  });

  it('answers 200 for a token already revoked', async () => {
    const { refresh_token } = await install(running);
    await revoke(running, refresh_token ?? '');

    expect((await revoke(running, refresh_token ?? '')).statusCode).toBe(200);
  });

  it('answers 200 for another app\'s token and leaves it working', async () => {
    const { refresh_token } = await install(running);
    const otherApp = running.sandbox.registerClient({ redirectUri: REDIRECT_URI });

    const response = await revoke(running, refresh_token ?? '', otherApp);

    expect(response.statusCode).toBe(200);
    expect((await refresh(running, refresh_token ?? '')).statusCode).toBe(200);
  });

  it('answers 401 invalid_client for a wrong secret and revokes nothing', async () => {
    const { access_token, refresh_token } = await install(running);

    const response = await revoke(running, refresh_token ?? '', { clientId: running.client.clientId, clientSecret: 'wrong' });

    expect(response.statusCode).toBe(401);
    expect(json<ErrorBody>(response).error).toBe('invalid_client');
    expect(await whoAmI(running, access_token)).toBe(200);
    expect((await refresh(running, refresh_token ?? '')).statusCode).toBe(200);
  });

  it('answers 401 invalid_client for the secret that a rotation replaced', async () => {
    const { refresh_token } = await install(running);
    const oldSecret = running.client.clientSecret;
    running.sandbox.rotateClientSecret(running.client.clientId);

    const response = await revoke(running, refresh_token ?? '', { clientId: running.client.clientId, clientSecret: oldSecret });

    expect(response.statusCode).toBe(401);
  });

  it('answers 401 invalid_client without client credentials', async () => {
    const { refresh_token } = await install(running);

    const response = await running.http.post('oauth/revoke', { form: { token: refresh_token ?? '' } });

    expect(response.statusCode).toBe(401);
    expect(json<ErrorBody>(response).error).toBe('invalid_client');
  });

  it('answers 400 invalid_request without a token', async () => {
    const response = await running.http.post('oauth/revoke', {
      headers: { authorization: basicAuth(running.client.clientId, running.client.clientSecret) },
      form: { token_type_hint: 'refresh_token' },
    });

    expect(response.statusCode).toBe(400);
    expect(json<ErrorBody>(response).error).toBe('invalid_request');
  });

  it('refuses a body that is not a form with invalid_request', async () => {
    const response = await running.http.post('oauth/revoke', {
      headers: { authorization: basicAuth(running.client.clientId, running.client.clientSecret) },
      json: { token: 'x' },
    });

    expect(response.statusCode).toBe(415);
    expect(json<ErrorBody>(response).error).toBe('invalid_request');
  });

  it('counts accepted revocations in stats, not refused ones', async () => {
    const { refresh_token } = await install(running);

    await revoke(running, refresh_token ?? '');
    await revoke(running, 'no-such-token');
    await revoke(running, refresh_token ?? '', { clientId: running.client.clientId, clientSecret: 'wrong' });

    expect(running.sandbox.stats().revocations).toBe(2);
  });

  it('does not count revocations as token requests', async () => {
    await revoke(running, 'no-such-token');

    expect(running.sandbox.stats().tokenRequests).toBe(0);
  });
});
