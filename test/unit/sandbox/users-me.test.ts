import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { SANDBOX_USER } from '../../../src/sandbox/routes/users-me.ts';
import {
  type Running,
  type TokenBody,
  type UserBody,
  decide,
  exchangeCode,
  install,
  json,
  refresh,
  startSandbox,
  usersMe,
  whoAmI,
} from './harness.ts';

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

  it('answers an install nobody named a company for as company 1, user 1, exactly as before public apps', async () => {
    const { access_token } = await install(running);

    expect(json<UserBody>(await usersMe(running, access_token)).data).toEqual({ ...SANDBOX_USER, scope: 'base,deals:full' });
  });

  it('answers with the company and user of the grant behind the access token', async () => {
    const refreshToken = running.sandbox.issueRefreshToken(running.client.clientId, { companyId: 42, userId: 7 });
    const { access_token } = json<TokenBody>(await refresh(running, refreshToken));

    expect(json<UserBody>(await usersMe(running, access_token)).data).toMatchObject({
      id: 7,
      name: 'Sandbox User 7',
      company_id: 42,
      company_name: 'Sandbox Company 42',
      company_domain: 'sandbox-company-42',
    });
  });

  it('answers with the company and user the consent decision named', async () => {
    const code = (await decide(running, 'allow', { companyId: '5', userId: '50' })).searchParams.get('code') ?? '';
    const { access_token } = await exchangeCode(running, code);

    expect(json<UserBody>(await usersMe(running, access_token)).data).toMatchObject({ id: 50, company_id: 5 });
  });
});
