import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { type ErrorBody, type Running, install, json, refresh, startSandbox, tokenRequest, whoAmI } from './harness.ts';

describe('sandbox rotateClientSecret (the portal "Refresh" button)', () => {
  let running: Running;
  beforeEach(async () => {
    running = await startSandbox();
  });
  afterEach(async () => {
    await running.close();
  });

  it('makes the old secret invalid_client at once', async () => {
    const refreshToken = running.sandbox.issueRefreshToken(running.client.clientId);
    running.sandbox.rotateClientSecret(running.client.clientId);

    const response = await refresh(running, refreshToken);

    expect(response.statusCode).toBe(401);
    expect(json<ErrorBody>(response)).toEqual({ error: 'invalid_client', error_description: 'Invalid client' });
  });

  it('accepts the new secret for a refresh token issued before the rotation', async () => {
    const refreshToken = running.sandbox.issueRefreshToken(running.client.clientId);
    const newSecret = running.sandbox.rotateClientSecret(running.client.clientId);

    const response = await tokenRequest(
      running,
      { grant_type: 'refresh_token', refresh_token: refreshToken },
      { clientId: running.client.clientId, clientSecret: newSecret },
    );

    expect(response.statusCode).toBe(200);
  });

  it('keeps access tokens issued before the rotation valid', async () => {
    const installed = await install(running);

    running.sandbox.rotateClientSecret(running.client.clientId);

    expect(await whoAmI(running, installed.access_token)).toBe(200);
  });

  it('returns a secret different from the old one', () => {
    expect(running.sandbox.rotateClientSecret(running.client.clientId)).not.toBe(running.client.clientSecret);
  });
});
