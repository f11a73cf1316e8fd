import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { inspect } from 'node:util';
import { TokenRequestError } from '../../../src/oauth/errors.ts';
import { createTokenClient } from '../../../src/oauth/token-client.ts';
import { createAddressPolicy } from '../../../src/oauth/address-policy.ts';
import { basicCredentials, type TokenGrant, type TokenRequest } from '../../../src/oauth/token-request.ts';
import { closedPort, json, startLoopback, type Handler, type Loopback } from './loopback.ts';

// These specs talk to servers on loopback, which the operator refuses unless --allow-loopback-providers.
const loopbackAllowed = createAddressPolicy({ allowLoopback: true });

// Every canary contains CANARY and characters that encodings change, so that a leak in any
// encoding shows up as "CANARY" (or as the base64 credentials, checked separately).
const clientSecret = 'CANARY-secret p:ss+w/=%';
const refreshToken = 'CANARY-refresh+token/=';
const code = 'CANARY-code+/=';
const accessToken = 'CANARY-access-token';
const clientId = 'client id';
const credentials = basicCredentials(clientId, clientSecret);

/** Echoes everything the client sent back in the fields an error message may quote. */
const echo = (status: number, fields: Record<string, unknown> = {}): Handler => (request, response) =>
  json(response, status, {
    error_description: `${request.body} ${request.headers.authorization ?? ''}`,
    message: request.body,
    ...fields,
  });

let server: Loopback;
beforeAll(async () => {
  server = await startLoopback(() => undefined);
});
afterAll(async () => {
  await server.close();
});

const request = (grant: TokenGrant, clientAuthentication: TokenRequest['clientAuthentication'], tokenURL = server.url) => ({
  tokenURL,
  clientAuthentication,
  clientId,
  clientSecret,
  grant,
});
const refreshGrant: TokenGrant = { type: 'refresh_token', refreshToken };
const codeGrant: TokenGrant = { type: 'authorization_code', code, redirectURI: 'https://ops.example.com/oauth/callback' };

const hugeBody = `{"access_token":"${accessToken}","refresh_token":"${refreshToken}","x":"${'CANARY'.repeat(20_000)}"}`;

interface Scenario {
  readonly name: string;
  readonly handler: Handler;
  readonly grant: TokenGrant;
  readonly clientAuthentication: TokenRequest['clientAuthentication'];
  readonly code: TokenRequestError['code'];
  /** Whether the server's echo reaches the debug-log detail, redacted (proves the check is not vacuous). */
  readonly redacts: boolean;
}

const basic = 'client_secret_basic';
const post = 'client_secret_post';
const scenarios: Scenario[] = [
  { name: 'an invalid_grant echoing the body and Authorization', handler: echo(400, { error: 'invalid_grant' }), grant: refreshGrant, clientAuthentication: basic, code: 'invalid_grant', redacts: true },
  { name: 'a rejection whose error code is the refresh token', handler: echo(400, { error: refreshToken }), grant: refreshGrant, clientAuthentication: basic, code: 'rejected', redacts: true },
  { name: 'a Pipedrive-worded invalid_grant quoting the code', handler: (_q, r) => json(r, 400, { message: `authorization_code has expired: ${code}` }), grant: codeGrant, clientAuthentication: post, code: 'invalid_grant', redacts: true },
  { name: 'an invalid_client echoing the Authorization header', handler: echo(401, { error: 'invalid_client' }), grant: refreshGrant, clientAuthentication: basic, code: 'invalid_client', redacts: true },
  { name: 'an invalid_client echoing a client_secret_post body', handler: echo(401, { error: 'invalid_client' }), grant: codeGrant, clientAuthentication: post, code: 'invalid_client', redacts: true },
  { name: 'a rate limit echoing the request', handler: echo(429), grant: refreshGrant, clientAuthentication: basic, code: 'rate_limited', redacts: true },
  { name: 'a server error echoing the request', handler: echo(503), grant: codeGrant, clientAuthentication: basic, code: 'server_error', redacts: true },
  { name: 'an invalid_request echoing the request', handler: echo(400, { error: 'invalid_request' }), grant: codeGrant, clientAuthentication: post, code: 'rejected', redacts: true },
  {
    name: 'a malformed 200 carrying tokens and the echoed body',
    handler: (q, r) => json(r, 200, { access_token: accessToken, refresh_token: refreshToken, echo: q.body, expires_in: -1 }),
    grant: refreshGrant,
    clientAuthentication: post,
    code: 'malformed_response',
    redacts: false,
  },
  { name: 'a 200 over the size limit carrying tokens', handler: (_q, r) => r.end(hugeBody), grant: refreshGrant, clientAuthentication: basic, code: 'malformed_response', redacts: false },
  { name: 'a timeout', handler: () => undefined, grant: refreshGrant, clientAuthentication: basic, code: 'timeout', redacts: false },
];

const failure = async (promise: Promise<unknown>): Promise<TokenRequestError> => {
  try {
    await promise;
  } catch (error) {
    if (error instanceof TokenRequestError) return error;
    throw error;
  }
  throw new Error('requestToken resolved');
};

const expectNoSecrets = (error: TokenRequestError) => {
  const texts = [
    error.message,
    error.detail ?? '',
    error.description ?? '',
    error.cause instanceof Error ? error.cause.message : '',
    inspect(error, { depth: Infinity, showHidden: true }),
    JSON.stringify(error),
  ];
  for (const text of texts) {
    expect(text).not.toContain('CANARY');
    expect(text).not.toContain(credentials);
  }
};

const client = createTokenClient({ timeoutMs: 300, addresses: loopbackAllowed });

describe('secret values never appear in errors', () => {
  it.each(scenarios)('not in $name ($code)', async (scenario) => {
    server.handle(scenario.handler);
    const error = await failure(client.requestToken(request(scenario.grant, scenario.clientAuthentication)));
    expect(error.code).toBe(scenario.code);
    expectNoSecrets(error);
    if (scenario.redacts) {
      expect(error.detail).toContain('[redacted]');
      // The provider's words that status quotes, redacted the same way.
      expect(error.description).toContain('[redacted]');
    }
  });

  it('not in a network error', async () => {
    const port = await closedPort();
    const error = await failure(client.requestToken(request(refreshGrant, 'client_secret_post', `http://127.0.0.1:${port}/t`)));
    expect(error.code).toBe('network');
    expectNoSecrets(error);
  });

  it('not in an aborted error', async () => {
    const controller = new AbortController();
    server.handle(() => controller.abort());
    const error = await failure(client.requestToken(request(codeGrant, 'client_secret_basic'), { signal: controller.signal }));
    expect(error.code).toBe('aborted');
    expectNoSecrets(error);
  });
});
