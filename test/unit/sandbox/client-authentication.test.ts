import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import {
  type ErrorBody,
  REDIRECT_URI,
  type Running,
  basicAuth,
  json,
  refresh,
  startSandbox,
  tokenRequest,
} from './harness.ts';

describe('sandbox token endpoint, client authentication', () => {
  let running: Running;
  beforeEach(async () => {
    running = await startSandbox();
  });
  afterEach(async () => {
    await running.close();
  });

  it('accepts Basic credentials whose id and secret needed form-URL-encoding', async () => {
    const client = running.sandbox.registerClient({
      clientId: 'a b:c+d%',
      clientSecret: 's e:c+r%t/ü',
      redirectUri: REDIRECT_URI,
    });
    const refreshToken = running.sandbox.issueRefreshToken(client.clientId);

    const response = await tokenRequest(running, { grant_type: 'refresh_token', refresh_token: refreshToken }, client);

    expect(response.statusCode).toBe(200);
  });

  it('refuses Basic credentials that were not form-URL-encoded when they needed it', async () => {
    const client = running.sandbox.registerClient({ clientId: 'a b:c+d%', clientSecret: 'x+y', redirectUri: REDIRECT_URI });
    const refreshToken = running.sandbox.issueRefreshToken(client.clientId);

    const response = await running.http.post('oauth/token', {
      headers: { authorization: `Basic ${Buffer.from('a b:c+d%:x+y').toString('base64')}` },
      form: { grant_type: 'refresh_token', refresh_token: refreshToken },
    });

    expect(response.statusCode).toBe(401);
  });

  it('accepts client_id and client_secret in the body (client_secret_post)', async () => {
    const refreshToken = running.sandbox.issueRefreshToken(running.client.clientId);

    const response = await running.http.post('oauth/token', {
      form: {
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
        client_id: running.client.clientId,
        client_secret: running.client.clientSecret,
      },
    });

    expect(response.statusCode).toBe(200);
  });

  it('refuses client_secret_post for a client registered for Basic only', async () => {
    const client = running.sandbox.registerClient({ redirectUri: REDIRECT_URI, authMethods: ['client_secret_basic'] });

    const response = await running.http.post('oauth/token', {
      form: {
        grant_type: 'refresh_token',
        refresh_token: running.sandbox.issueRefreshToken(client.clientId),
        client_id: client.clientId,
        client_secret: client.clientSecret,
      },
    });

    expect(response.statusCode).toBe(401);
  });

  it('answers a wrong secret with 401 invalid_client "Invalid client"', async () => {
    const response = await tokenRequest(
      running,
      { grant_type: 'refresh_token', refresh_token: running.sandbox.issueRefreshToken(running.client.clientId) },
      { clientId: running.client.clientId, clientSecret: 'wrong' },
    );

    expect(response.statusCode).toBe(401);
    expect(response.headers['www-authenticate']).toMatch(/^Basic /);
    expect(json<ErrorBody>(response)).toEqual({ error: 'invalid_client', error_description: 'Invalid client' });
  });

  it('answers an unknown client with 401 invalid_client', async () => {
    const response = await tokenRequest(
      running,
      { grant_type: 'refresh_token', refresh_token: 'x' },
      { clientId: 'unknown', clientSecret: 'x' },
    );

    expect(response.statusCode).toBe(401);
    expect(json<ErrorBody>(response).error).toBe('invalid_client');
  });

  it('answers a request without any client credentials with 401 invalid_client', async () => {
    const response = await running.http.post('oauth/token', { form: { grant_type: 'refresh_token', refresh_token: 'x' } });

    expect(response.statusCode).toBe(401);
    expect(json<ErrorBody>(response).error).toBe('invalid_client');
  });

  it('refuses a secret sent both in Basic and in the body as invalid_request', async () => {
    const response = await running.http.post('oauth/token', {
      headers: { authorization: basicAuth(running.client.clientId, running.client.clientSecret) },
      form: { grant_type: 'refresh_token', refresh_token: 'x', client_secret: running.client.clientSecret },
    });

    expect(response.statusCode).toBe(400);
    expect(json<ErrorBody>(response).error).toBe('invalid_request');
  });

  it('checks the client before the grant, so a wrong secret never consumes a refresh token', async () => {
    const refreshToken = running.sandbox.issueRefreshToken(running.client.clientId);
    await tokenRequest(
      running,
      { grant_type: 'refresh_token', refresh_token: refreshToken },
      { clientId: running.client.clientId, clientSecret: 'wrong' },
    );

    expect((await refresh(running, refreshToken)).statusCode).toBe(200);
  });
});
