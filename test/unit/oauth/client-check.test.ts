import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createAddressPolicy } from '../../../src/oauth/address-policy.ts';
import { checkClientSecret, clientCheckToken, clientCheckTokenPrefix } from '../../../src/oauth/client-check.ts';
import { createTokenClient } from '../../../src/oauth/token-client.ts';
import { json, startLoopback, type Handler, type Loopback } from './loopback.ts';

let server: Loopback;
let answer: Handler;
const tokens = createTokenClient({ timeoutMs: 2_000, addresses: createAddressPolicy({ allowLoopback: true }) });

beforeAll(async () => {
  server = await startLoopback((request, response) => answer(request, response));
});

afterAll(async () => {
  await server.close();
});

const check = () => checkClientSecret(tokens, { tokenURL: server.url, clientAuthentication: 'client_secret_basic', clientId: 'client-1', clientSecret: 'secret-1' });

describe('checkClientSecret', () => {
  it('answers accepted when the provider refuses the grant (invalid_grant): it authenticated the client first', async () => {
    answer = (_request, response) => json(response, 400, { error: 'invalid_grant', error_description: 'refresh token is invalid' });
    await expect(check()).resolves.toEqual({ verdict: 'accepted' });
  });

  it('answers rejected, with what the provider said, on invalid_client', async () => {
    answer = (_request, response) => json(response, 401, { error: 'invalid_client', error_description: 'Invalid client' });
    await expect(check()).resolves.toEqual({ verdict: 'rejected', description: 'Invalid client' });
  });

  it('answers unknown on a 5xx, with the Retry-After it asked for', async () => {
    answer = (_request, response) => {
      response.setHeader('retry-after', '30');
      json(response, 503, { error: 'temporarily_unavailable' });
    };
    const result = await check();
    expect(result).toMatchObject({ verdict: 'unknown', retryAfterMs: 30_000 });
  });

  it('answers unknown when the provider hands out tokens for a refresh token it never issued', async () => {
    answer = (_request, response) => json(response, 200, { access_token: 'a', token_type: 'Bearer', expires_in: 60 });
    await expect(check()).resolves.toMatchObject({ verdict: 'unknown' });
  });

  it('sends a fresh, recognisable refresh token each time, never one that was issued', async () => {
    answer = (_request, response) => json(response, 400, { error: 'invalid_grant' });
    server.requests.length = 0;
    await check();
    await check();
    const sent = server.requests.map((request) => new URLSearchParams(request.body).get('refresh_token') ?? '');
    expect(sent.every((token) => token.startsWith(clientCheckTokenPrefix))).toBe(true);
    expect(new Set(sent).size).toBe(2);
    expect(clientCheckToken()).toMatch(new RegExp(`^${clientCheckTokenPrefix}[A-Za-z0-9_-]{32}$`));
  });
});
