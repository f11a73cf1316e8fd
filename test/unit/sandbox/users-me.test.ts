import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { type Running, install, startSandbox, whoAmI } from './harness.ts';

describe('sandbox /v1/users/me', () => {
  let running: Running;
  beforeEach(async () => {
    running = await startSandbox();
  });
  afterEach(async () => {
    await running.close();
  });

  it('answers a live access token with the Pipedrive-shaped user', async () => {
    const { access_token } = await install(running);

    const response = await running.http.get('v1/users/me', { headers: { authorization: `Bearer ${access_token}` } });

    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({
      success: true,
      data: { id: 1, name: 'Sandbox User', company_domain: 'sandbox-company' },
    });
  });

  it('also answers under /api/v1/users/me, where api_domain-based clients look', async () => {
    const { access_token } = await install(running);

    const response = await running.http.get('api/v1/users/me', { headers: { authorization: `Bearer ${access_token}` } });

    expect(response.statusCode).toBe(200);
  });

  it('refuses an access token once its expires_in has passed', async () => {
    const { access_token, expires_in } = await install(running);
    running.clock.advance(expires_in * 1000);

    expect(await whoAmI(running, access_token)).toBe(401);
  });

  it('accepts an access token one millisecond before it expires', async () => {
    const { access_token, expires_in } = await install(running);
    running.clock.advance(expires_in * 1000 - 1);

    expect(await whoAmI(running, access_token)).toBe(200);
  });

  it('answers an unknown token with the Pipedrive 401 body', async () => {
    const response = await running.http.get('v1/users/me', { headers: { authorization: 'Bearer nope' } });

    expect(response.statusCode).toBe(401);
    expect(JSON.parse(response.body)).toMatchObject({ success: false, error: 'unauthorized access', errorCode: 401 });
  });

  it('refuses a request without a bearer token', async () => {
    expect((await running.http.get('v1/users/me')).statusCode).toBe(401);
  });

  it('does not take a refresh token as an access token', async () => {
    const { refresh_token } = await install(running);

    expect(await whoAmI(running, refresh_token ?? '')).toBe(401);
  });
});
