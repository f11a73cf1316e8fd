import { describe, expect, it } from '@jest/globals';
import { buildAuthorizeURL } from '../../../src/oauth/authorize-url.ts';

const base = {
  authorizeURL: 'https://oauth.pipedrive.com/oauth/authorize',
  clientId: 'b4d083d9216986345b32',
  redirectURI: 'https://ops.example.com/oauth/callback',
  state: 's.t-a_te',
};

const paramsOf = (url: string) => Object.fromEntries(new URL(url).searchParams);

describe('buildAuthorizeURL', () => {
  it('asks for a code with the client id, redirect URI and state', () => {
    expect(paramsOf(buildAuthorizeURL(base))).toEqual({
      response_type: 'code',
      client_id: 'b4d083d9216986345b32',
      redirect_uri: 'https://ops.example.com/oauth/callback',
      state: 's.t-a_te',
    });
  });

  it('keeps the authorize endpoint itself', () => {
    const url = new URL(buildAuthorizeURL(base));
    expect(`${url.origin}${url.pathname}`).toBe('https://oauth.pipedrive.com/oauth/authorize');
  });

  it('sends scopes space-separated, encoded as %20', () => {
    const url = buildAuthorizeURL({ ...base, scopes: ['deals:read', 'users:read'] });
    expect(new URL(url).searchParams.get('scope')).toBe('deals:read users:read');
    expect(url).toContain('scope=deals%3Aread%20users%3Aread');
  });

  it('leaves scope out when no scopes are given', () => {
    expect(new URL(buildAuthorizeURL({ ...base, scopes: [] })).searchParams.has('scope')).toBe(false);
  });

  it('keeps a query already in the authorize URL', () => {
    const url = buildAuthorizeURL({ ...base, authorizeURL: 'https://idp.example.com/authorize?tenant=acme&x=1+2' });
    expect(paramsOf(url)).toMatchObject({ tenant: 'acme', x: '1 2', client_id: base.clientId });
  });

  it('adds extra parameters after its own', () => {
    const url = buildAuthorizeURL({ ...base, extraParams: { access_type: 'offline', prompt: 'consent' } });
    expect([...new URL(url).searchParams.keys()]).toEqual([
      'response_type',
      'client_id',
      'redirect_uri',
      'state',
      'access_type',
      'prompt',
    ]);
    expect(paramsOf(url)).toMatchObject({ access_type: 'offline', prompt: 'consent' });
  });

  it('never lets an extra parameter replace state or redirect_uri', () => {
    const url = buildAuthorizeURL({ ...base, extraParams: { state: 'forged', redirect_uri: 'https://evil.example' } });
    expect(paramsOf(url)).toMatchObject({ state: base.state, redirect_uri: base.redirectURI });
  });

  it('sends a PKCE challenge with code_challenge_method=S256 (RFC 7636 §4.3)', () => {
    const url = buildAuthorizeURL({ ...base, codeChallenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM' });
    expect(paramsOf(url)).toMatchObject({ code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' });
  });

  it('never lets an extra parameter replace the PKCE challenge or weaken its method', () => {
    const url = buildAuthorizeURL({ ...base, codeChallenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', extraParams: { code_challenge: 'x', code_challenge_method: 'plain' } });
    expect(paramsOf(url)).toMatchObject({ code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' });
  });

  it('encodes a state with reserved characters so that it comes back unchanged', () => {
    const state = 'a+b/c=d&e f';
    expect(new URL(buildAuthorizeURL({ ...base, state })).searchParams.get('state')).toBe(state);
  });
});
