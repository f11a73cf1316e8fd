import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import {
  REDIRECT_URI,
  type Running,
  type TokenBody,
  type UserBody,
  json,
  refresh,
  startSandbox,
  tokenRequest,
  usersMe,
} from './harness.ts';

describe('sandbox admin HTTP API', () => {
  let running: Running;
  beforeEach(async () => {
    running = await startSandbox();
  });
  afterEach(async () => {
    await running.close();
  });

  const body = <T>(response: { body: string }): T => JSON.parse(response.body) as T;

  it('registers a client with POST /admin/clients', async () => {
    const response = await running.http.post('admin/clients', {
      json: { clientId: 'app-1', clientSecret: 'secret-1', redirectUri: REDIRECT_URI },
    });

    expect(response.statusCode).toBe(201);
    expect(body(response)).toMatchObject({ clientId: 'app-1', clientSecret: 'secret-1', scope: 'base,deals:full' });
  });

  it('answers 409 for a client id that is already registered', async () => {
    const response = await running.http.post('admin/clients', {
      json: { clientId: running.client.clientId, redirectUri: REDIRECT_URI },
    });

    expect(response.statusCode).toBe(409);
    expect(body(response)).toMatchObject({ error: 'SANDBOX_CLIENT_EXISTS' });
  });

  it('answers 400 naming the field for a registration without redirectUri', async () => {
    const response = await running.http.post('admin/clients', { json: { clientId: 'x' } });

    expect(response.statusCode).toBe(400);
    expect(body<{ message: string }>(response).message).toContain('redirectUri');
  });

  it('refreshes the client secret with POST /admin/clients/:id/rotate-secret', async () => {
    const response = await running.http.post(`admin/clients/${running.client.clientId}/rotate-secret`);
    const { clientSecret } = body<{ clientSecret: string }>(response);
    const refreshToken = running.sandbox.issueRefreshToken(running.client.clientId);

    const withNew = await tokenRequest(
      running,
      { grant_type: 'refresh_token', refresh_token: refreshToken },
      { clientId: running.client.clientId, clientSecret },
    );

    expect(withNew.statusCode).toBe(200);
  });

  it('answers 404 when rotating the secret of an unknown client', async () => {
    const response = await running.http.post('admin/clients/nobody/rotate-secret');

    expect(response.statusCode).toBe(404);
    expect(body(response)).toMatchObject({ error: 'SANDBOX_CLIENT_NOT_FOUND' });
  });

  it('mints a working bootstrap refresh token with POST /admin/clients/:id/refresh-tokens', async () => {
    const response = await running.http.post(`admin/clients/${running.client.clientId}/refresh-tokens`);

    expect(response.statusCode).toBe(201);
    expect((await refresh(running, body<{ refresh_token: string }>(response).refresh_token)).statusCode).toBe(200);
  });

  it('mints the refresh token of a named company with POST /admin/clients/:id/refresh-tokens', async () => {
    const response = await running.http.post(`admin/clients/${running.client.clientId}/refresh-tokens`, {
      json: { companyId: 12, userId: 3 },
    });
    const { access_token } = json<TokenBody>(await refresh(running, body<{ refresh_token: string }>(response).refresh_token));

    expect(json<UserBody>(await usersMe(running, access_token)).data).toMatchObject({ id: 3, company_id: 12 });
  });

  it('sets faults with PUT /admin/faults', async () => {
    await running.http.put('admin/faults', { json: { status429: { count: 1, retryAfterSeconds: 3 } } });

    const response = await refresh(running, running.sandbox.issueRefreshToken(running.client.clientId));

    expect(response.statusCode).toBe(429);
    expect(response.headers['retry-after']).toBe('3');
  });

  it('answers 400 for a faults body with an unknown knob', async () => {
    const response = await running.http.put('admin/faults', { json: { status418: { count: 1 } } });

    expect(response.statusCode).toBe(400);
  });

  it('reports the same stats as the in-process handle with GET /admin/stats', async () => {
    await refresh(running, 'unknown');

    const response = await running.http.get('admin/stats');

    expect(body(response)).toEqual(running.sandbox.stats());
  });

  it('changes the api_domain of later token responses with PUT /admin/api-domain', async () => {
    await running.http.put('admin/api-domain', { json: { apiDomain: 'https://moved.pipedrive.com' } });

    const response = await refresh(running, running.sandbox.issueRefreshToken(running.client.clientId));

    expect(body<{ api_domain: string }>(response).api_domain).toBe('https://moved.pipedrive.com');
  });
});
