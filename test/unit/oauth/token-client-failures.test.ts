import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { gzipSync } from 'node:zlib';
import { TokenRequestError } from '../../../src/oauth/errors.ts';
import { createTokenClient, type TokenClient } from '../../../src/oauth/token-client.ts';
import { createAddressPolicy } from '../../../src/oauth/address-policy.ts';
import type { TokenRequest } from '../../../src/oauth/token-request.ts';
import { closedPort, json, startLoopback, startNotTLS, type Handler, type Loopback } from './loopback.ts';

// These specs talk to servers on loopback, which the operator refuses unless --allow-loopback-providers.
const loopbackAllowed = createAddressPolicy({ allowLoopback: true });

const now = Date.parse('2030-01-01T00:00:00Z');

let server: Loopback;
let answer: Handler;
let client: TokenClient;

beforeAll(async () => {
  server = await startLoopback((request, response) => answer(request, response));
  // Long enough that a loaded machine (integration suites beside it) never times out a request the
  // server answers: at 500 ms "does not retry a 500" failed once with a timeout before the server saw it.
  client = createTokenClient({ timeoutMs: 3_000, now: () => now, addresses: loopbackAllowed });
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  server.requests.length = 0;
});

const refresh = (tokenURL = server.url): TokenRequest => ({
  tokenURL,
  clientAuthentication: 'client_secret_basic',
  clientId: 'client',
  clientSecret: 'secret',
  grant: { type: 'refresh_token', refreshToken: 'refresh' },
});

const failure = async (promise: Promise<unknown>): Promise<TokenRequestError> => {
  try {
    await promise;
  } catch (error) {
    if (error instanceof TokenRequestError) return error;
    throw error;
  }
  throw new Error('requestToken resolved');
};

const failureFor = (handler: Handler) => {
  answer = handler;
  return failure(client.requestToken(refresh()));
};

describe('refusals by the provider', () => {
  it('maps an RFC 6749 invalid_grant body to invalid_grant, answered', async () => {
    const error = await failureFor((_q, r) => json(r, 400, { error: 'invalid_grant', error_description: 'token revoked' }));
    expect(error).toMatchObject({ code: 'invalid_grant', delivery: 'answered', status: 400, providerError: 'invalid_grant' });
    // The provider's words are for debug logs; the message (status, Events) is coarse.
    expect(error.detail).toContain('token revoked');
    expect(error.message).not.toContain('token revoked');
  });

  it('maps Pipedrive\'s 400 "refresh_token is invalid" without an error code to invalid_grant', async () => {
    const error = await failureFor((_q, r) => json(r, 400, { success: false, message: 'refresh_token is invalid' }));
    expect(error).toMatchObject({ code: 'invalid_grant', delivery: 'answered', status: 400 });
  });

  it('maps a 401 invalid_client body to invalid_client', async () => {
    const error = await failureFor((_q, r) => json(r, 401, { error: 'invalid_client', error_description: 'Invalid client' }));
    expect(error).toMatchObject({ code: 'invalid_client', delivery: 'answered', status: 401 });
  });

  it('maps a 401 without a readable body to invalid_client', async () => {
    const error = await failureFor((_q, r) => {
      r.writeHead(401, { 'content-type': 'text/html' });
      r.end('<html>Unauthorized</html>');
    });
    expect(error).toMatchObject({ code: 'invalid_client', delivery: 'answered', status: 401 });
  });

  it('maps any other OAuth error to rejected and keeps the provider\'s code', async () => {
    const error = await failureFor((_q, r) => json(r, 400, { error: 'invalid_scope' }));
    expect(error).toMatchObject({ code: 'rejected', delivery: 'answered', status: 400, providerError: 'invalid_scope' });
  });
});

describe('overload and server failures', () => {
  it('maps 429 to rate_limited with Retry-After seconds in ms', async () => {
    const error = await failureFor((_q, r) => json(r, 429, { error: 'too_many_requests' }, { 'retry-after': '30' }));
    expect(error).toMatchObject({ code: 'rate_limited', delivery: 'answered', status: 429, retryAfterMs: 30_000 });
  });

  it('maps 429 to rate_limited with a Retry-After HTTP-date relative to the injected clock', async () => {
    const at = new Date(now + 90_000).toUTCString();
    const error = await failureFor((_q, r) => json(r, 429, {}, { 'retry-after': at }));
    expect(error).toMatchObject({ code: 'rate_limited', retryAfterMs: 90_000 });
  });

  it('maps 500 to server_error with the status', async () => {
    const error = await failureFor((_q, r) => json(r, 500, { error: 'server_error' }));
    expect(error).toMatchObject({ code: 'server_error', delivery: 'answered', status: 500 });
  });

  it('does not retry a 500', async () => {
    await failureFor((_q, r) => json(r, 500, {}));
    expect(server.requests).toHaveLength(1);
  });
});

describe('transport failures', () => {
  it('reports a server that never answers as a timeout with delivery unknown', async () => {
    const error = await failureFor(() => undefined);
    expect(error).toMatchObject({ code: 'timeout', delivery: 'unknown', status: undefined });
  });

  it('does not retry after a timeout', async () => {
    await failureFor(() => undefined);
    expect(server.requests).toHaveLength(1);
  });

  it('reports a refused connection as network with delivery not_sent', async () => {
    const error = await failure(client.requestToken(refresh(`http://127.0.0.1:${await closedPort()}/oauth/token`)));
    expect(error).toMatchObject({ code: 'network', delivery: 'not_sent' });
    expect(error.cause).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('reports a failed TLS handshake as network with delivery not_sent', async () => {
    const notTLS = await startNotTLS();
    try {
      const error = await failure(client.requestToken(refresh(notTLS.url)));
      expect(error).toMatchObject({ code: 'network', delivery: 'not_sent' });
    } finally {
      await notTLS.close();
    }
  });

  it('reports a body cut off after the headers as network with delivery answered', async () => {
    const error = await failureFor((_q, r) => {
      r.writeHead(200, { 'content-type': 'application/json', 'content-length': '500' });
      r.write('{"access_token":"');
      setTimeout(() => r.socket?.destroy(), 20);
    });
    expect(error).toMatchObject({ code: 'network', delivery: 'answered', status: 200 });
  });

  it('reports a signal aborted before the call as aborted with delivery not_sent', async () => {
    answer = (_q, r) => json(r, 200, {});
    const error = await failure(client.requestToken(refresh(), { signal: AbortSignal.abort() }));
    expect(error).toMatchObject({ code: 'aborted', delivery: 'not_sent' });
    expect(server.requests).toHaveLength(0);
  });

  it('reports an abort after the request reached the server as aborted with delivery unknown', async () => {
    const controller = new AbortController();
    answer = () => controller.abort();
    const error = await failure(client.requestToken(refresh(), { signal: controller.signal }));
    expect(error).toMatchObject({ code: 'aborted', delivery: 'unknown' });
  });
});

describe('malformed answers', () => {
  it('reports an HTML 200 as malformed_response, answered', async () => {
    const error = await failureFor((_q, r) => {
      r.writeHead(200, { 'content-type': 'text/html' });
      r.end('<html><body>Welcome</body></html>');
    });
    expect(error).toMatchObject({ code: 'malformed_response', delivery: 'answered', status: 200 });
  });

  it('reports a 200 JSON without access_token as malformed_response', async () => {
    const error = await failureFor((_q, r) => json(r, 200, { token_type: 'Bearer', expires_in: 3600 }));
    expect(error).toMatchObject({ code: 'malformed_response', delivery: 'answered' });
    expect(error.message).toContain('access_token');
  });

  it('reports a negative expires_in as malformed_response', async () => {
    const error = await failureFor((_q, r) => json(r, 200, { access_token: 'a', token_type: 'Bearer', expires_in: -5 }));
    expect(error).toMatchObject({ code: 'malformed_response', delivery: 'answered' });
  });

  it('reports a body over the size limit as malformed_response without reading it all', async () => {
    const error = await failureFor((_q, r) => {
      r.writeHead(200, { 'content-type': 'application/json' });
      r.end(`{"access_token":"${'x'.repeat(1024 * 1024)}","token_type":"Bearer","expires_in":3600}`);
    });
    expect(error).toMatchObject({ code: 'malformed_response', delivery: 'answered', status: 200 });
    expect(error.message).toContain('65536 bytes');
  });

  it('applies the size limit to the decompressed body', async () => {
    const error = await failureFor((_q, r) => {
      r.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      r.end(gzipSync(`{"access_token":"${'0'.repeat(1024 * 1024)}"}`));
    });
    expect(error).toMatchObject({ code: 'malformed_response', delivery: 'answered', status: 200 });
    expect(error.message).toContain('larger than');
  });

  it('reports a redirect as malformed_response instead of following it', async () => {
    const error = await failureFor((_q, r) => {
      r.writeHead(302, { location: '/elsewhere' });
      r.end();
    });
    expect(error).toMatchObject({ code: 'malformed_response', status: 302 });
    expect(server.requests).toHaveLength(1);
  });
});
