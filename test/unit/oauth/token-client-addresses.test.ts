// Where the token client may connect: the address a host name resolves to is checked when the
// connection is made (an injected resolver stands in for DNS), literal-IP URLs before the request,
// and what a failure says in its message (status, Events) is coarse.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { networkInterfaces } from 'node:os';
import { createAddressPolicy, type AddressPolicy, type LookupFunction } from '../../../src/oauth/address-policy.ts';
import { TokenRequestError } from '../../../src/oauth/errors.ts';
import { createTokenClient } from '../../../src/oauth/token-client.ts';
import type { TokenRequest } from '../../../src/oauth/token-request.ts';
import { startTLSProvider, type TLSProvider } from '../../support/tls-provider.ts';
import { closedPort, json, startLoopback, type Loopback } from './loopback.ts';

const refused = "the provider's address is not allowed";
const certificateName = 'cert-name-canary.internal.example';

let server: Loopback;
let tls: TLSProvider;

beforeAll(async () => {
  server = await startLoopback((_request, response) => json(response, 200, { access_token: 'a', token_type: 'Bearer', expires_in: 3600 }));
  tls = await startTLSProvider(certificateName);
});

afterAll(async () => {
  await Promise.all([server.close(), tls.close()]);
});

beforeEach(() => {
  server.requests.length = 0;
});

const port = () => new URL(server.url).port;
const request = (tokenURL: string): TokenRequest => ({
  tokenURL,
  clientAuthentication: 'client_secret_basic',
  clientId: 'client',
  clientSecret: 'secret',
  grant: { type: 'refresh_token', refreshToken: 'refresh' },
});

/** A resolver that answers `address` for every name, counting the questions. */
const resolver = (address: string) => {
  const asked: string[] = [];
  const lookup: LookupFunction = (hostname, _options, callback) => {
    asked.push(hostname);
    callback(null, [{ address, family: address.includes(':') ? 6 : 4 }]);
  };
  return { lookup, asked };
};

const client = (addresses: AddressPolicy | undefined, lookup?: LookupFunction, timeoutMs = 3_000) =>
  createTokenClient({ timeoutMs, ...(addresses ? { addresses } : {}), ...(lookup ? { lookup } : {}) });

const failure = async (promise: Promise<unknown>): Promise<TokenRequestError> => {
  try {
    await promise;
  } catch (error) {
    if (error instanceof TokenRequestError) return error;
    throw error;
  }
  throw new Error('requestToken resolved');
};

describe('addresses checked on the resolved IP at connect time', () => {
  it('refuses a host name that resolves to 127.0.0.1 without allowLoopback: nothing reaches the server', async () => {
    const dns = resolver('127.0.0.1');
    const error = await failure(client(undefined, dns.lookup).requestToken(request(`http://provider.example:${port()}/oauth/token`)));
    expect(dns.asked).toEqual(['provider.example']);
    expect(error).toMatchObject({ code: 'network', delivery: 'not_sent' });
    expect(error.message).toContain(refused);
    expect(server.requests).toHaveLength(0);
  });

  it('sends to the same host name once loopback is allowed', async () => {
    const dns = resolver('127.0.0.1');
    const tokens = await client(createAddressPolicy({ allowLoopback: true }), dns.lookup).requestToken(request(`http://provider.example:${port()}/oauth/token`));
    expect(tokens.accessToken).toBe('a');
    expect(server.requests).toHaveLength(1);
  });

  it.each(['169.254.169.254', '10.1.2.3', 'fd00:ec2::254', '::ffff:127.0.0.1'])('refuses a host name that resolves to %s before connecting', async (address) => {
    const dns = resolver(address);
    const error = await failure(client(createAddressPolicy({ allowLoopback: false }), dns.lookup).requestToken(request('https://provider.example/oauth/token')));
    expect(dns.asked).toEqual(['provider.example']);
    expect(error).toMatchObject({ code: 'network', delivery: 'not_sent', message: `token request failed: ${refused}` });
    expect(error.message).not.toContain(address);
    expect(error.detail).toContain(address);
  });

  // A private address of this machine (a pod IP, a ULA), so an opened network can be shown to
  // reach a real server; machines without one rely on the address-policy specs.
  const privateAddress = Object.values(networkInterfaces())
    .flat()
    .find((entry) => entry !== undefined && !entry.internal && !entry.address.startsWith('fe80:') && createAddressPolicy().check(entry.address).allowed === false)?.address;

  (privateAddress ? it : it.skip)(`sends to a private address only inside --allow-provider-networks (${privateAddress ?? 'none on this machine'})`, async () => {
    const address = privateAddress ?? '';
    const privateServer = await startLoopback((_request, response) => json(response, 200, { access_token: 'p', token_type: 'Bearer', expires_in: 3600 }), address);
    try {
      const url = `http://idp.internal:${new URL(privateServer.url).port}/oauth/token`;
      const closed = await failure(client(createAddressPolicy(), resolver(address).lookup).requestToken(request(url)));
      expect(closed).toMatchObject({ delivery: 'not_sent', message: `token request failed: ${refused}` });
      expect(privateServer.requests).toHaveLength(0);

      const network = `${address}/${address.includes(':') ? 64 : 24}`;
      const opened = client(createAddressPolicy({ allowNetworks: [network] }), resolver(address).lookup);
      expect((await opened.requestToken(request(url))).accessToken).toBe('p');
      expect(privateServer.requests).toHaveLength(1);
    } finally {
      await privateServer.close();
    }
  });

  it.each([
    ['127.0.0.1', (p: string) => `http://127.0.0.1:${p}/oauth/token`],
    ['an IPv4-mapped [::ffff:127.0.0.1]', (p: string) => `http://[::ffff:127.0.0.1]:${p}/oauth/token`],
    ['a hexadecimal 0x7f.1', (p: string) => `http://0x7f.1:${p}/oauth/token`],
  ])('refuses a literal-IP URL (%s), which needs no lookup', async (_name, url) => {
    const dns = resolver('93.184.215.14');
    const error = await failure(client(undefined, dns.lookup).requestToken(request(url(port()))));
    expect(error).toMatchObject({ code: 'network', delivery: 'not_sent', message: `token request failed: ${refused}` });
    expect(dns.asked).toHaveLength(0);
    expect(server.requests).toHaveLength(0);
  });
});

describe('coarse failure messages', () => {
  it("says a TLS failure is one without the remote certificate's names", async () => {
    const trusting = createTokenClient({
      timeoutMs: 3_000,
      addresses: createAddressPolicy({ allowLoopback: true }),
      got: { https: { certificateAuthority: tls.certificate } },
    });
    const error = await failure(trusting.requestToken(request(tls.tokenURL)));
    expect(error).toMatchObject({ code: 'network', delivery: 'not_sent', message: 'token request failed: TLS verification failed' });
    expect(error.message).not.toContain('cert-name-canary');
    // The names are there for debug logs: the check above is not vacuous.
    expect(error.detail).toContain(certificateName);
    expect(tls.requests).toBe(0);
  });

  it('says "connection refused" without the address', async () => {
    const closed = await closedPort();
    const error = await failure(client(createAddressPolicy({ allowLoopback: true }), resolver('127.0.0.1').lookup).requestToken(request(`http://provider.example:${closed}/t`)));
    expect(error.message).toBe('token request failed: connection refused');
    expect(error.detail).toContain(`127.0.0.1:${closed}`);
  });

  it('says an HTTP 404 is one, without the body', async () => {
    server.handle((_request, response) => {
      response.writeHead(404, { 'content-type': 'text/html' }).end('<h1>internal admin console of 10.0.0.7</h1>');
    });
    try {
      const error = await failure(client(createAddressPolicy({ allowLoopback: true })).requestToken(request(server.url)));
      expect(error.message).toBe('token endpoint rejected the request (HTTP 404)');
    } finally {
      server.handle((_request, response) => json(response, 200, { access_token: 'a', token_type: 'Bearer', expires_in: 3600 }));
    }
  });
});
