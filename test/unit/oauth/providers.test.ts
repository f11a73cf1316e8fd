import { describe, expect, it } from '@jest/globals';
import { ProviderConfigError } from '../../../src/oauth/errors.ts';
import { resolveProvider } from '../../../src/oauth/providers.ts';

describe('resolveProvider', () => {
  it('gives the pipedrive preset: its URLs and client_secret_basic', () => {
    expect(resolveProvider({ provider: 'pipedrive' })).toEqual({
      name: 'pipedrive',
      authorizeURL: 'https://oauth.pipedrive.com/oauth/authorize',
      tokenURL: 'https://oauth.pipedrive.com/oauth/token',
      revokeURL: 'https://oauth.pipedrive.com/oauth/revoke',
      clientAuthentication: 'client_secret_basic',
    });
  });

  it('knows no issuer for pipedrive (RFC 9207 undocumented there), so iss is not required', () => {
    expect(resolveProvider({ provider: 'pipedrive' }).issuer).toBeUndefined();
  });

  it('takes a custom provider\'s issuer from spec.issuer', () => {
    const provider = resolveProvider({ provider: 'custom', tokenURL: 'https://idp.example.com/token', authorizeURL: 'https://idp.example.com/authorize', issuer: 'https://idp.example.com' });
    expect(provider.issuer).toBe('https://idp.example.com');
    expect(resolveProvider({ provider: 'custom', tokenURL: 'https://idp.example.com/token', authorizeURL: 'https://idp.example.com/authorize' }).issuer).toBeUndefined();
  });

  it('lets explicit URLs override the pipedrive preset', () => {
    const provider = resolveProvider({
      provider: 'pipedrive',
      tokenURL: 'http://127.0.0.1:8090/oauth/token',
      authorizeURL: 'http://127.0.0.1:8090/oauth/authorize',
    });
    expect(provider).toMatchObject({
      name: 'pipedrive',
      tokenURL: 'http://127.0.0.1:8090/oauth/token',
      authorizeURL: 'http://127.0.0.1:8090/oauth/authorize',
    });
  });

  it('overrides one preset URL and keeps the other', () => {
    const provider = resolveProvider({ provider: 'pipedrive', tokenURL: 'http://127.0.0.1:8090/oauth/token' });
    expect(provider.authorizeURL).toBe('https://oauth.pipedrive.com/oauth/authorize');
  });

  it('takes a custom provider\'s URLs and client authentication from the spec', () => {
    expect(
      resolveProvider({
        provider: 'custom',
        tokenURL: 'https://idp.example.com/token',
        authorizeURL: 'https://idp.example.com/authorize',
        clientAuthentication: 'client_secret_post',
      }),
    ).toEqual({
      name: 'custom',
      tokenURL: 'https://idp.example.com/token',
      authorizeURL: 'https://idp.example.com/authorize',
      clientAuthentication: 'client_secret_post',
    });
  });

  it('defaults a custom provider to client_secret_basic', () => {
    const provider = resolveProvider({
      provider: 'custom',
      tokenURL: 'https://idp.example.com/token',
      authorizeURL: 'https://idp.example.com/authorize',
    });
    expect(provider.clientAuthentication).toBe('client_secret_basic');
  });

  it('throws a ProviderConfigError naming tokenURL for a custom provider without one', () => {
    const resolve = () => resolveProvider({ provider: 'custom', authorizeURL: 'https://idp.example.com/authorize' });
    expect(resolve).toThrow(ProviderConfigError);
    expect(resolve).toThrow(expect.objectContaining({ code: 'provider_url_missing', field: 'tokenURL' }));
  });

  it('throws a ProviderConfigError naming authorizeURL for a custom provider without one', () => {
    const resolve = () => resolveProvider({ provider: 'custom', tokenURL: 'https://idp.example.com/token' });
    expect(resolve).toThrow(expect.objectContaining({ code: 'provider_url_missing', field: 'authorizeURL' }));
  });
});
