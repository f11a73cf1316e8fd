import { describe, expect, it } from '@jest/globals';
import { parseTokenResponse } from '../../../src/oauth/token-response.ts';

const valid = { access_token: 'a', token_type: 'Bearer', expires_in: 3600 };
const parse = (body: unknown) => parseTokenResponse(JSON.stringify(body));
const tokenSet = (body: unknown) => {
  const result = parse(body);
  if (!result.success) throw new Error(result.problem);
  return result.tokenSet;
};

describe('parseTokenResponse', () => {
  it.each(['bearer', 'BEARER', 'Bearer'])('accepts token_type %j and normalizes it to Bearer', (tokenType) => {
    expect(tokenSet({ ...valid, token_type: tokenType }).tokenType).toBe('Bearer');
  });

  it.each(['mac', 'DPoP', ''])('refuses token_type %j', (tokenType) => {
    expect(parse({ ...valid, token_type: tokenType })).toEqual({ success: false, problem: 'invalid token_type' });
  });

  it('reads a response without token_type as Bearer (RFC 6749 requires it, some servers leave it out)', () => {
    expect(tokenSet({ access_token: 'a', expires_in: 3600 }).tokenType).toBe('Bearer');
  });


  it('refuses an empty access_token', () => {
    expect(parse({ ...valid, access_token: '' }).success).toBe(false);
  });

  it.each([0, -1, '0', '-1', '1e3', 'soon', Number.MAX_VALUE])('refuses expires_in %j', (expiresIn) => {
    expect(parse({ ...valid, expires_in: expiresIn }).success).toBe(false);
  });

  it('gives a response without expires_in the default lifetime (RFC 6749 only recommends it)', () => {
    expect(tokenSet({ access_token: 'a', token_type: 'Bearer' }).expiresInSeconds).toBe(3600);
    const parsed = parseTokenResponse(JSON.stringify({ access_token: 'a', token_type: 'Bearer' }), { defaultExpiresInSeconds: 600 });
    expect(parsed.success && parsed.tokenSet.expiresInSeconds).toBe(600);
  });

  it('keeps the refresh token of a 2xx it cannot otherwise use, so a rotated one is not lost', () => {
    expect(parse({ refresh_token: 'refresh-2', token_type: 'mac', expires_in: 3600 })).toMatchObject({ success: false, refreshToken: 'refresh-2' });
  });

  it('accepts a fractional expires_in', () => {
    expect(tokenSet({ ...valid, expires_in: '59.5' }).expiresInSeconds).toBe(59.5);
  });

  it('reads a null or empty refresh_token as not rotated', () => {
    expect(tokenSet({ ...valid, refresh_token: null }).refreshToken).toBeUndefined();
    expect(tokenSet({ ...valid, refresh_token: '' }).refreshToken).toBeUndefined();
  });

  it('keeps a space-separated scope verbatim', () => {
    expect(tokenSet({ ...valid, scope: 'openid email' }).scope).toBe('openid email');
  });

  it('drops an api_domain that is not an http(s) URL instead of refusing the tokens', () => {
    expect(tokenSet({ ...valid, api_domain: 'javascript:alert(1)' })).toMatchObject({ accessToken: 'a', apiDomain: undefined });
  });

  it('keeps an https:// api_domain', () => {
    expect(tokenSet({ ...valid, api_domain: 'https://acme.pipedrive.com' }).apiDomain).toBe('https://acme.pipedrive.com');
  });

  it.each(['http://acme.pipedrive.com', 'http://127.0.0.1:8080', 'ftp://acme.example.com'])('drops the api_domain %s: workloads would send the access token there in clear', (apiDomain) => {
    expect(tokenSet({ ...valid, api_domain: apiDomain })).toMatchObject({ accessToken: 'a', apiDomain: undefined });
  });

  it('keeps a loopback http:// api_domain only when loopback providers are allowed', () => {
    const withLoopback = parseTokenResponse(JSON.stringify({ ...valid, api_domain: 'http://127.0.0.1:8080' }), { defaultExpiresInSeconds: 3600, allowLoopbackAPIDomain: true });
    expect(withLoopback.success && withLoopback.tokenSet.apiDomain).toBe('http://127.0.0.1:8080');
    const elsewhere = parseTokenResponse(JSON.stringify({ ...valid, api_domain: 'http://crm.example.com' }), { defaultExpiresInSeconds: 3600, allowLoopbackAPIDomain: true });
    expect(elsewhere.success && elsewhere.tokenSet.apiDomain).toBeUndefined();
  });

  it('drops a scope that is not a string instead of refusing the tokens', () => {
    expect(tokenSet({ ...valid, scope: ['base'] })).toMatchObject({ accessToken: 'a', scope: undefined });
  });

  it('ignores unknown fields', () => {
    expect(tokenSet({ ...valid, user_id: 7, company_id: 9 })).toEqual({
      accessToken: 'a',
      tokenType: 'Bearer',
      refreshToken: undefined,
      expiresInSeconds: 3600,
      scope: undefined,
      apiDomain: undefined,
    });
  });

  it.each(['[]', 'null', '"token"', '42'])('refuses the JSON %s as not an object', (text) => {
    expect(parseTokenResponse(text)).toEqual({ success: false, problem: 'the body is not a JSON object' });
  });

  it('names the missing fields without quoting the body', () => {
    expect(parse({ token_type: 'Bearer', secret_field: 'x' })).toEqual({
      success: false,
      problem: 'invalid access_token',
    });
  });
});
