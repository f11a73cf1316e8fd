import { describe, expect, it } from '@jest/globals';
import { encodeTokenRequest } from '../../../src/oauth/token-request.ts';

const request = {
  tokenURL: 'https://idp.example.com/token',
  clientAuthentication: 'client_secret_basic' as const,
  clientId: 'client-1',
  clientSecret: 'secret-1',
};

describe('encodeTokenRequest, authorization_code grant', () => {
  it('sends the PKCE code_verifier with the code (RFC 7636 §4.5)', () => {
    const encoded = encodeTokenRequest({ ...request, grant: { type: 'authorization_code', code: 'c0de', redirectURI: 'https://ops.example.com/oauth/callback', codeVerifier: 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk' } });
    expect(Object.fromEntries(new URLSearchParams(encoded.body))).toEqual({
      grant_type: 'authorization_code',
      code: 'c0de',
      redirect_uri: 'https://ops.example.com/oauth/callback',
      code_verifier: 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk',
    });
  });

  it('counts the verifier among the secrets kept out of errors', () => {
    const encoded = encodeTokenRequest({ ...request, grant: { type: 'authorization_code', code: 'c0de', redirectURI: 'https://ops.example.com/cb', codeVerifier: 'verifier-value-verifier-value-verifier-valu' } });
    expect(encoded.secrets).toEqual(expect.arrayContaining(['c0de', 'verifier-value-verifier-value-verifier-valu']));
  });

  it('sends no code_verifier when there is none', () => {
    const encoded = encodeTokenRequest({ ...request, grant: { type: 'authorization_code', code: 'c0de', redirectURI: 'https://ops.example.com/cb' } });
    expect(new URLSearchParams(encoded.body).has('code_verifier')).toBe(false);
  });
});
