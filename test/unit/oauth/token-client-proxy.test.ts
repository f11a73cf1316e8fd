// What the address policy can check when token requests go through a CONNECT proxy: the proxy
// resolves the provider's name, so that address is the proxy's to check; a literal-IP URL is still
// refused before anything is sent; the proxy's own (here loopback) address is the admin's choice.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createAddressPolicy, type LookupFunction } from '../../../src/oauth/address-policy.ts';
import { TokenRequestError } from '../../../src/oauth/errors.ts';
import { proxySettingsFrom, type ProxySettings } from '../../../src/oauth/proxy.ts';
import { createTokenClient } from '../../../src/oauth/token-client.ts';
import type { TokenRequest } from '../../../src/oauth/token-request.ts';
import { startConnectProxy, type ConnectProxy } from '../../support/connect-proxy.ts';
import { startTLSProvider, type TLSProvider } from '../../support/tls-provider.ts';

const providerName = 'provider.example';

let proxy: ConnectProxy;
let tls: TLSProvider;
let settings: ProxySettings;

beforeAll(async () => {
  tls = await startTLSProvider(providerName);
  proxy = await startConnectProxy({ [providerName]: '127.0.0.1' });
  const parsed = proxySettingsFrom({ HTTPS_PROXY: proxy.url });
  if (!parsed.ok) throw new Error(parsed.error);
  settings = parsed.settings;
});

afterAll(async () => {
  await Promise.all([proxy.close(), tls.close()]);
});

const request = (tokenURL: string): TokenRequest => ({
  tokenURL,
  clientAuthentication: 'client_secret_basic',
  clientId: 'client',
  clientSecret: 'secret',
  grant: { type: 'refresh_token', refreshToken: 'refresh' },
});

/**
 * Loopback refused, and every name "resolves" to a private address: only the proxy gets anywhere.
 * The provider's certificate is trusted as NODE_EXTRA_CA_CERTS would make it.
 */
const client = () => {
  const lookup: LookupFunction = (_hostname, _options, callback) => callback(null, [{ address: '10.1.2.3', family: 4 }]);
  return createTokenClient({ timeoutMs: 3_000, addresses: createAddressPolicy(), lookup, proxy: settings, got: { https: { certificateAuthority: tls.certificate } } });
};

const settle = (promise: Promise<unknown>) => promise.then(() => undefined, (error: unknown) => error);

describe('a token client with HTTPS_PROXY', () => {
  it("reaches a provider by name through the proxy, which alone resolves it, over TLS to the provider's name", async () => {
    const before = tls.requests;
    // The provider answers 500 to everything: reaching it past the TLS handshake is the point.
    const error = await settle(client().requestToken(request(`https://${providerName}:${tls.port}/oauth/token`)));
    expect(error).toBeInstanceOf(TokenRequestError);
    expect(proxy.connects(`${providerName}:${tls.port}`)).toBe(1);
    expect(tls.requests).toBe(before + 1);
  });

  it('refuses a literal-IP token URL the address policy refuses before any CONNECT', async () => {
    const error = await settle(client().requestToken(request('https://169.254.169.254/oauth/token')));
    expect(error).toMatchObject({ code: 'network', delivery: 'not_sent', message: "token request failed: the provider's address is not allowed" });
    expect(proxy.connects('169.254.169.254:443')).toBe(0);
  });
});
