import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { TokenRequestError } from '../../../src/oauth/errors.ts';
import { createTokenClient } from '../../../src/oauth/token-client.ts';
import { createAddressPolicy } from '../../../src/oauth/address-policy.ts';
import { startLoopback, type Loopback } from './loopback.ts';

// These specs talk to servers on loopback, which the operator refuses unless --allow-loopback-providers.
const loopbackAllowed = createAddressPolicy({ allowLoopback: true });

let server: Loopback;
beforeAll(async () => {
  server = await startLoopback(() => undefined);
});
afterAll(async () => {
  await server.close();
});

// Bodies near a real token response, so that the success path is exercised too, not only junk.
const tokenish = fc
  .record(
    {
      access_token: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
      token_type: fc.oneof(fc.constantFrom('Bearer', 'bearer', 'BEARER', 'mac', ''), fc.anything()),
      expires_in: fc.oneof(fc.double(), fc.integer(), fc.string(), fc.constantFrom('3600', '-1', '1e3', '0')),
      refresh_token: fc.anything(),
      scope: fc.anything(),
      api_domain: fc.oneof(fc.webUrl(), fc.anything()),
    },
    { requiredKeys: [] },
  )
  .map((body) => JSON.stringify(body));

const bodies = fc.oneof(fc.json(), fc.string(), tokenish);

describe('any 200 answer', () => {
  it('yields a usable TokenSet or a malformed_response, nothing else', async () => {
    const client = createTokenClient({ timeoutMs: 2_000, addresses: loopbackAllowed });
    await fc.assert(
      fc.asyncProperty(bodies, async (body) => {
        server.handle((_request, response) => {
          response.writeHead(200, { 'content-type': 'application/json' });
          response.end(body);
        });
        try {
          const tokens = await client.requestToken({
            tokenURL: server.url,
            clientAuthentication: 'client_secret_basic',
            clientId: 'id',
            clientSecret: 'secret',
            grant: { type: 'refresh_token', refreshToken: 'refresh' },
          });
          expect(tokens.accessToken.length).toBeGreaterThan(0);
          expect(tokens.expiresInSeconds).toBeGreaterThan(0);
          expect(Number.isFinite(tokens.expiresInSeconds)).toBe(true);
        } catch (error) {
          expect(error).toBeInstanceOf(TokenRequestError);
          expect(error).toMatchObject({ code: 'malformed_response', delivery: 'answered', status: 200 });
        }
      }),
      { numRuns: 200 },
    );
  });
});
