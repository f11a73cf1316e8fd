import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import {
  type ErrorBody,
  REDIRECT_URI,
  type Running,
  type TokenBody,
  authorizationCode,
  json,
  startSandbox,
  tokenRequest,
  whoAmI,
} from './harness.ts';

describe('sandbox token endpoint, authorization_code grant', () => {
  let running: Running;
  beforeEach(async () => {
    running = await startSandbox();
  });
  afterEach(async () => {
    await running.close();
  });

  const exchange = (code: string, redirectUri = REDIRECT_URI) =>
    tokenRequest(running, { grant_type: 'authorization_code', code, redirect_uri: redirectUri });

  it('exchanges a fresh code for Pipedrive-shaped tokens that must not be cached', async () => {
    const response = await exchange(await authorizationCode(running));

    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(json<TokenBody>(response)).toEqual({
      access_token: expect.any(String),
      token_type: 'Bearer',
      refresh_token: expect.any(String),
      scope: 'base,deals:full',
      expires_in: 3600,
      api_domain: running.baseUrl,
    });
  });

  it('refuses a code the second time it is presented', async () => {
    const code = await authorizationCode(running);
    await exchange(code);

    const second = await exchange(code);

    expect(second.statusCode).toBe(400);
    expect(json<ErrorBody>(second)).toEqual({ error: 'invalid_grant', error_description: 'authorization_code is invalid' });
  });

  it('revokes the tokens issued from a code when the code is replayed (RFC 6749 §4.1.2)', async () => {
    const code = await authorizationCode(running);
    const { access_token } = json<TokenBody>(await exchange(code));

    await exchange(code);

    expect(await whoAmI(running, access_token)).toBe(401);
  });

  it('refuses a code presented after its five minutes are up', async () => {
    const code = await authorizationCode(running);
    running.clock.advance(5 * 60_000);

    const response = await exchange(code);

    expect(response.statusCode).toBe(400);
    expect(json<ErrorBody>(response)).toEqual({ error: 'invalid_grant', error_description: 'authorization_code has expired' });
  });

  it('accepts a code presented just before it expires', async () => {
    const code = await authorizationCode(running);
    running.clock.advance(5 * 60_000 - 1);

    expect((await exchange(code)).statusCode).toBe(200);
  });

  it('refuses a code exchanged with a redirect_uri other than the registered one', async () => {
    const response = await exchange(await authorizationCode(running), 'https://ops.example.com/other');

    expect(response.statusCode).toBe(400);
    expect(json<ErrorBody>(response)).toEqual({ error: 'invalid_grant', error_description: 'redirect_uri is invalid' });
  });

  it('refuses a code issued to another client', async () => {
    const code = await authorizationCode(running);
    const other = running.sandbox.registerClient({ redirectUri: REDIRECT_URI });

    const response = await tokenRequest(
      running,
      { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI },
      other,
    );

    expect(response.statusCode).toBe(400);
    expect(json<ErrorBody>(response).error).toBe('invalid_grant');
  });

  it('refuses an unknown code', async () => {
    const response = await exchange('never-issued');

    expect(json<ErrorBody>(response)).toEqual({ error: 'invalid_grant', error_description: 'authorization_code is invalid' });
  });

  it('sends the configured api_domain when one is set', async () => {
    await running.close();
    running = await startSandbox({ apiDomain: 'https://sandbox-company.pipedrive.com' });

    const response = await exchange(await authorizationCode(running));

    expect(json<TokenBody>(response).api_domain).toBe('https://sandbox-company.pipedrive.com');
  });
});
