import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { type ErrorBody, type Running, basicAuth, json, startSandbox, tokenRequest } from './harness.ts';

describe('sandbox token endpoint, request shape', () => {
  let running: Running;
  beforeEach(async () => {
    running = await startSandbox();
  });
  afterEach(async () => {
    await running.close();
  });

  const authorization = () => basicAuth(running.client.clientId, running.client.clientSecret);

  it('refuses a JSON body with 415 and an RFC 6749 invalid_request', async () => {
    const response = await running.http.post('oauth/token', {
      headers: { authorization: authorization() },
      json: { grant_type: 'refresh_token', refresh_token: 'x' },
    });

    expect(response.statusCode).toBe(415);
    expect(json<ErrorBody>(response)).toEqual({
      error: 'invalid_request',
      error_description: 'Content-Type must be application/x-www-form-urlencoded',
    });
  });

  it('refuses a body of an unknown content type with 415 invalid_request', async () => {
    const response = await running.http.post('oauth/token', {
      headers: { authorization: authorization(), 'content-type': 'text/xml' },
      body: '<grant_type>refresh_token</grant_type>',
    });

    expect(response.statusCode).toBe(415);
    expect(json<ErrorBody>(response).error).toBe('invalid_request');
  });

  it('accepts a form content type that carries a charset', async () => {
    const refreshToken = running.sandbox.issueRefreshToken(running.client.clientId);

    const response = await running.http.post('oauth/token', {
      headers: { authorization: authorization(), 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }).toString(),
    });

    expect(response.statusCode).toBe(200);
  });

  it('answers an unknown grant_type with unsupported_grant_type', async () => {
    const response = await tokenRequest(running, { grant_type: 'client_credentials' });

    expect(response.statusCode).toBe(400);
    expect(json<ErrorBody>(response).error).toBe('unsupported_grant_type');
  });

  it('names a missing grant_type in invalid_request', async () => {
    const response = await tokenRequest(running, { refresh_token: 'x' });

    expect(response.statusCode).toBe(400);
    expect(json<ErrorBody>(response)).toEqual({ error: 'invalid_request', error_description: 'missing parameter: grant_type' });
  });

  it('names a missing refresh_token in invalid_request', async () => {
    const response = await tokenRequest(running, { grant_type: 'refresh_token' });

    expect(json<ErrorBody>(response)).toEqual({ error: 'invalid_request', error_description: 'missing parameter: refresh_token' });
  });

  it('names a missing redirect_uri in invalid_request', async () => {
    const response = await tokenRequest(running, { grant_type: 'authorization_code', code: 'c' });

    expect(json<ErrorBody>(response)).toEqual({ error: 'invalid_request', error_description: 'missing parameter: redirect_uri' });
  });

  it('treats an empty parameter as missing', async () => {
    const response = await tokenRequest(running, { grant_type: 'refresh_token', refresh_token: '' });

    expect(json<ErrorBody>(response).error_description).toBe('missing parameter: refresh_token');
  });

  it('refuses a repeated parameter as invalid_request', async () => {
    const response = await running.http.post('oauth/token', {
      headers: { authorization: authorization(), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=refresh_token&refresh_token=a&refresh_token=b',
    });

    expect(json<ErrorBody>(response)).toEqual({ error: 'invalid_request', error_description: 'parameter refresh_token is repeated' });
  });
});
