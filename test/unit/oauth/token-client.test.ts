import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createTokenClient, type TokenClient } from '../../../src/oauth/token-client.ts';
import { createAddressPolicy } from '../../../src/oauth/address-policy.ts';
import type { TokenRequest } from '../../../src/oauth/token-request.ts';
import { formDecode, json, startLoopback, type Handler, type Loopback } from './loopback.ts';

// These specs talk to servers on loopback, which the operator refuses unless --allow-loopback-providers.
const loopbackAllowed = createAddressPolicy({ allowLoopback: true });

const pipedriveAnswer = {
  access_token: 'v1:access',
  token_type: 'Bearer',
  refresh_token: 'v1:refresh-2',
  scope: 'base,deals:full',
  expires_in: 3599,
  api_domain: 'https://acme.pipedrive.com',
};

let server: Loopback;
let answer: Handler;
let client: TokenClient;

beforeAll(async () => {
  server = await startLoopback((request, response) => answer(request, response));
  client = createTokenClient({ timeoutMs: 2_000, addresses: loopbackAllowed });
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  server.requests.length = 0;
  answer = (_request, response) => json(response, 200, pipedriveAnswer);
});

const refresh = (overrides: Partial<TokenRequest> = {}): TokenRequest => ({
  tokenURL: server.url,
  clientAuthentication: 'client_secret_basic',
  clientId: 'b4d083d9216986345b32',
  clientSecret: 'the-secret',
  grant: { type: 'refresh_token', refreshToken: 'v1:refresh-1' },
  ...overrides,
});

const onlyRequest = () => {
  expect(server.requests).toHaveLength(1);
  const [request] = server.requests;
  if (request === undefined) throw new Error('no request');
  return request;
};

const formOf = (body: string): Record<string, string> => Object.fromEntries(new URLSearchParams(body));

describe('the token request', () => {
  it('POSTs a form and asks for JSON', async () => {
    await client.requestToken(refresh());
    const request = onlyRequest();
    expect(request.method).toBe('POST');
    expect(request.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(request.headers.accept).toBe('application/json');
  });

  it('authenticates with client_secret_basic by form-encoding id and secret before base64 (RFC 6749 §2.3.1)', async () => {
    await client.requestToken(refresh({ clientId: 'a b', clientSecret: 'p:ss+w%rd/é' }));
    const authorization = onlyRequest().headers.authorization ?? '';
    const [scheme, credentials = ''] = authorization.split(' ');
    const decoded = Buffer.from(credentials, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    expect(scheme).toBe('Basic');
    expect(decoded).toBe('a+b:p%3Ass%2Bw%25rd%2F%C3%A9');
    expect(formDecode(decoded.slice(0, colon))).toBe('a b');
    expect(formDecode(decoded.slice(colon + 1))).toBe('p:ss+w%rd/é');
  });

  it('keeps client credentials out of the body with client_secret_basic', async () => {
    await client.requestToken(refresh());
    expect(formOf(onlyRequest().body)).not.toHaveProperty('client_secret');
  });

  it('sends client_id and client_secret in the body and no Authorization with client_secret_post', async () => {
    await client.requestToken(refresh({ clientAuthentication: 'client_secret_post', clientId: 'a b', clientSecret: 'p:ss+w%rd/é' }));
    const request = onlyRequest();
    expect(request.headers.authorization).toBeUndefined();
    expect(formOf(request.body)).toMatchObject({ client_id: 'a b', client_secret: 'p:ss+w%rd/é' });
  });

  it('sends grant_type=refresh_token with the refresh token', async () => {
    await client.requestToken(refresh({ grant: { type: 'refresh_token', refreshToken: 'r&t=1 2' } }));
    expect(formOf(onlyRequest().body)).toEqual({ grant_type: 'refresh_token', refresh_token: 'r&t=1 2' });
  });

  it('sends grant_type=authorization_code with the code and the redirect URI', async () => {
    const grant = { type: 'authorization_code', code: 'c0de+/=', redirectURI: 'https://ops.example.com/oauth/callback' } as const;
    await client.requestToken(refresh({ grant }));
    expect(formOf(onlyRequest().body)).toEqual({
      grant_type: 'authorization_code',
      code: 'c0de+/=',
      redirect_uri: 'https://ops.example.com/oauth/callback',
    });
  });

  it('sends the configured User-Agent', async () => {
    await createTokenClient({ userAgent: 'probe/1', addresses: loopbackAllowed }).requestToken(refresh());
    expect(onlyRequest().headers['user-agent']).toBe('probe/1');
  });
});

describe('a successful answer', () => {
  it('becomes a TokenSet, Pipedrive comma-separated scope and api_domain included', async () => {
    await expect(client.requestToken(refresh())).resolves.toEqual({
      accessToken: 'v1:access',
      tokenType: 'Bearer',
      refreshToken: 'v1:refresh-2',
      expiresInSeconds: 3599,
      scope: 'base,deals:full',
      apiDomain: 'https://acme.pipedrive.com',
    });
  });

  it('without refresh_token has refreshToken undefined', async () => {
    answer = (_request, response) => json(response, 200, { access_token: 'a', token_type: 'bearer', expires_in: 3600 });
    const tokens = await client.requestToken(refresh());
    expect(tokens.refreshToken).toBeUndefined();
  });

  it('accepts expires_in as a numeric string', async () => {
    answer = (_request, response) => json(response, 200, { ...pipedriveAnswer, expires_in: '3600' });
    const tokens = await client.requestToken(refresh());
    expect(tokens.expiresInSeconds).toBe(3600);
  });
});
