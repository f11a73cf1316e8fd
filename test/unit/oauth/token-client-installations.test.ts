// What a public app asks its provider besides tokens, against a real HTTP server on loopback:
// RFC 7009 revocation of an installation's refresh token, and Pipedrive's users/me, which names
// the company an access token was issued to.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createAddressPolicy } from '../../../src/oauth/address-policy.ts';
import { TokenRequestError } from '../../../src/oauth/errors.ts';
import { createTokenClient, type InstallationCalls } from '../../../src/oauth/token-client.ts';
import type { RevocationRequest } from '../../../src/oauth/token-request.ts';
import { json, startLoopback, type Handler, type Loopback } from './loopback.ts';

// These specs talk to servers on loopback, which the operator refuses unless --allow-loopback-providers.
const loopbackAllowed = createAddressPolicy({ allowLoopback: true });

const refreshToken = 'v1:refresh-CANARY-5e2a9c';
const accessToken = 'v1:access-CANARY-17bd40';

let server: Loopback;
let answer: Handler;
let client: InstallationCalls;

beforeAll(async () => {
  server = await startLoopback((request, response) => answer(request, response));
  client = createTokenClient({ timeoutMs: 3_000, addresses: loopbackAllowed });
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  server.requests.length = 0;
  answer = (_request, response) => json(response, 200, {});
});

const revokeURL = () => new URL('/oauth/revoke', server.url).toString();
const apiDomain = () => new URL(server.url).origin;

const revocation = (overrides: Partial<RevocationRequest> = {}): RevocationRequest => ({
  revokeURL: revokeURL(),
  clientAuthentication: 'client_secret_basic',
  clientId: 'b4d083d9216986345b32',
  clientSecret: 'the-secret',
  refreshToken,
  ...overrides,
});

const onlyRequest = () => {
  expect(server.requests).toHaveLength(1);
  const [request] = server.requests;
  if (request === undefined) throw new Error('no request');
  return request;
};

const formOf = (body: string): Record<string, string> => Object.fromEntries(new URLSearchParams(body));

const failure = async (promise: Promise<unknown>): Promise<TokenRequestError> => {
  try {
    await promise;
  } catch (error) {
    if (error instanceof TokenRequestError) return error;
    throw error;
  }
  throw new Error('the call resolved');
};

describe('revokeToken', () => {
  it('POSTs a form with the refresh token and token_type_hint=refresh_token to the revocation URL', async () => {
    await client.revokeToken(revocation());
    const request = onlyRequest();
    expect(request.method).toBe('POST');
    expect(request.url).toBe('/oauth/revoke');
    expect(request.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(formOf(request.body)).toEqual({ token: refreshToken, token_type_hint: 'refresh_token' });
  });

  it('authenticates the client with HTTP Basic by default', async () => {
    await client.revokeToken(revocation());
    const authorization = onlyRequest().headers.authorization ?? '';
    expect(authorization).toBe(`Basic ${Buffer.from('b4d083d9216986345b32:the-secret').toString('base64')}`);
  });

  it('sends client_id and client_secret in the body and no Authorization with client_secret_post', async () => {
    await client.revokeToken(revocation({ clientAuthentication: 'client_secret_post' }));
    const request = onlyRequest();
    expect(request.headers.authorization).toBeUndefined();
    expect(formOf(request.body)).toEqual({ token: refreshToken, token_type_hint: 'refresh_token', client_id: 'b4d083d9216986345b32', client_secret: 'the-secret' });
  });

  it.each<[string, Handler]>([
    ['200 with an empty JSON object', (_q, r) => json(r, 200, {})],
    ['200 with no body', (_q, r) => r.writeHead(200).end()],
    ['204', (_q, r) => r.writeHead(204).end()],
    ['202 with a text body', (_q, r) => r.writeHead(202, { 'content-type': 'text/plain' }).end('queued')],
  ])('resolves on any 2xx: %s', async (_title, handler) => {
    answer = handler;
    await expect(client.revokeToken(revocation())).resolves.toBeUndefined();
  });

  it.each([
    [400, 'invalid_grant', 'invalid_grant'],
    [400, 'unsupported_token_type', 'rejected'],
    [401, 'invalid_client', 'invalid_client'],
  ] as const)('throws a TokenRequestError for a %i %s answer, with the provider\'s code', async (status, error, code) => {
    answer = (_q, r) => json(r, status, { error, error_description: 'no' });
    expect(await failure(client.revokeToken(revocation()))).toMatchObject({ code, status, providerError: error, delivery: 'answered' });
  });

  it('never puts the refresh token in the error, even when the provider echoes it', async () => {
    answer = (_q, r) => json(r, 400, { error: refreshToken, error_description: `token ${refreshToken} is unknown` });
    const error = await failure(client.revokeToken(revocation()));
    for (const text of [error.message, error.description ?? '', error.providerError ?? '', error.detail ?? '', String(error)]) expect(text).not.toContain(refreshToken);
  });
});

describe('whoInstalled', () => {
  const usersMe = (_q: unknown, r: Parameters<Handler>[1]) => json(r, 200, { success: true, data: { id: 678, company_id: 12345, name: 'Ada' } });

  it('GETs /api/v1/users/me on the api domain with the access token as a Bearer token', async () => {
    answer = usersMe;
    await client.whoInstalled({ apiDomain: apiDomain(), accessToken });
    const request = onlyRequest();
    expect(request.method).toBe('GET');
    expect(request.url).toBe('/api/v1/users/me');
    expect(request.headers.authorization).toBe(`Bearer ${accessToken}`);
    expect(request.body).toBe('');
  });

  it('returns the company and the user', async () => {
    answer = usersMe;
    await expect(client.whoInstalled({ apiDomain: apiDomain(), accessToken })).resolves.toEqual({ companyID: '12345', userID: '678' });
  });

  it('throws a TokenRequestError on 401, without the access token', async () => {
    answer = (_q, r) => json(r, 401, { success: false, error: 'unauthorized access', errorCode: 401 });
    const error = await failure(client.whoInstalled({ apiDomain: apiDomain(), accessToken }));
    expect(error).toMatchObject({ status: 401, delivery: 'answered' });
    expect(String(error)).not.toContain(accessToken);
  });

  it('throws malformed_response for a 200 that names no company', async () => {
    answer = (_q, r) => json(r, 200, { success: true, data: { id: 678 } });
    expect(await failure(client.whoInstalled({ apiDomain: apiDomain(), accessToken }))).toMatchObject({ code: 'malformed_response', status: 200 });
  });
});
