import { describe, expect, it } from '@jest/globals';
import { createProviderPolicy, hostMatcher } from '../../../src/oauth/provider-policy.ts';
import { pipedrive } from '../../../src/oauth/providers.ts';

const custom = (tokenURL: string, authorizeURL = tokenURL) => ({ provider: 'custom' as const, tokenURL, authorizeURL });

describe('host globs (--provider-hosts)', () => {
  it('matches * as any run of characters, case-insensitively', () => {
    const matches = hostMatcher(['*.example.com', 'login.acme.io', '[fd00::1]']);
    expect(matches('a.example.com')).toBe(true);
    expect(matches('a.b.example.com')).toBe(true);
    expect(matches('LOGIN.acme.io')).toBe(true);
    expect(matches('[fd00::1]')).toBe(true);
    expect(matches('example.com')).toBe(false);
    expect(matches('example.com.evil.io')).toBe(false);
    expect(matches('loginXacme.io')).toBe(false);
    expect(hostMatcher(['*'])('anything.at.all')).toBe(true);
  });
});

describe('the provider policy', () => {
  it('allows any host with the default *', () => {
    expect(createProviderPolicy().refusal(custom('https://idp.example.com/token'))).toBeUndefined();
  });

  it('refuses a custom provider whose token URL host is outside --provider-hosts, naming the field', () => {
    const policy = createProviderPolicy({ hosts: ['*.example.com'] });
    expect(policy.refusal(custom('https://idp.example.com/token', 'https://idp.example.com/auth'))).toBeUndefined();
    expect(policy.refusal(custom('https://evil.io/token', 'https://idp.example.com/auth'))).toContain('spec.tokenURL');
    expect(policy.refusal(custom('https://idp.example.com/token', 'https://evil.io/auth'))).toContain('spec.authorizeURL');
  });

  it('tells localhost from 127.0.0.1', () => {
    const policy = createProviderPolicy({ hosts: ['127.0.0.1'] });
    expect(policy.refusal(custom('http://127.0.0.1:8080/token'))).toBeUndefined();
    expect(policy.refusal(custom('http://localhost:8080/token'))).toContain('"localhost"');
  });

  it('refuses a preset override without --allow-preset-overrides', () => {
    const refusal = createProviderPolicy().refusal({ provider: 'pipedrive', tokenURL: 'https://evil.io/token' });
    expect(refusal).toContain('--allow-preset-overrides');
    expect(refusal).toContain('spec.tokenURL');
  });

  it("allows a preset without overrides, or with its own URLs written out, whatever --provider-hosts says", () => {
    const policy = createProviderPolicy({ hosts: ['idp.internal'] });
    expect(policy.refusal({ provider: 'pipedrive' })).toBeUndefined();
    expect(policy.refusal({ provider: 'pipedrive', tokenURL: pipedrive.tokenURL, authorizeURL: pipedrive.authorizeURL })).toBeUndefined();
  });

  it('checks an allowed preset override against --provider-hosts', () => {
    const policy = createProviderPolicy({ hosts: ['sandbox.example.com'], allowPresetOverrides: true });
    expect(policy.refusal({ provider: 'pipedrive', tokenURL: 'https://sandbox.example.com/oauth/token' })).toBeUndefined();
    expect(policy.refusal({ provider: 'pipedrive', authorizeURL: 'https://elsewhere.example.com/oauth/authorize' })).toContain('spec.authorizeURL');
  });
});
