// HTTPS_PROXY and NO_PROXY as the token client reads them (curl's variables, Go's matching rules).
import { describe, expect, it } from '@jest/globals';
import { bypassesProxy, proxySettingsFrom, usesProxy, type ProxySettings } from '../../../src/oauth/proxy.ts';

const settings = (env: Record<string, string>): ProxySettings => {
  const result = proxySettingsFrom(env);
  if (!result.ok) throw new Error(result.error);
  return result.settings;
};

describe('proxySettingsFrom', () => {
  it('reads HTTPS_PROXY and NO_PROXY, the lowercase variable winning as in curl', () => {
    expect(settings({ HTTPS_PROXY: 'http://upper:3128', NO_PROXY: '.svc' })).toEqual({ url: new URL('http://upper:3128'), noProxy: ['.svc'] });
    expect(settings({ HTTPS_PROXY: 'http://upper:3128', https_proxy: 'http://lower:3128', no_proxy: 'a, B ,,c' })).toEqual({ url: new URL('http://lower:3128'), noProxy: ['a', 'b', 'c'] });
  });

  it('takes a bare host:port as an http:// proxy', () => {
    expect(settings({ HTTPS_PROXY: 'proxy.example.com:3128' }).url?.href).toBe('http://proxy.example.com:3128/');
  });

  it('has no proxy without HTTPS_PROXY (HTTP_PROXY is for http:// URLs, which are loopback-only)', () => {
    expect(settings({ HTTP_PROXY: 'http://proxy:3128' }).url).toBeUndefined();
  });

  it('refuses a proxy URL of another scheme without repeating it (it may carry credentials)', () => {
    const result = proxySettingsFrom({ HTTPS_PROXY: 'socks5://user:hunter2-canary@proxy:1080' });
    expect(result).toEqual({ ok: false, error: expect.stringContaining('HTTPS_PROXY') });
    expect(JSON.stringify(result)).not.toContain('hunter2-canary');
  });
});

describe('bypassesProxy', () => {
  it.each([
    ['*', 'anything.example.com', 443, true],
    ['example.com', 'example.com', 443, true],
    ['example.com', 'login.example.com', 443, true],
    ['example.com', 'notexample.com', 443, false],
    ['.example.com', 'login.example.com', 443, true],
    ['.example.com', 'example.com', 443, false],
    ['*.example.com', 'login.example.com', 443, true],
    ['example.com:8443', 'example.com', 8443, true],
    ['example.com:8443', 'example.com', 443, false],
    ['10.0.0.0/8', '10.1.2.3', 443, true],
    ['10.0.0.0/8', 'ten.example.com', 443, false], // nothing is resolved to match a CIDR
    ['192.0.2.1', '192.0.2.1', 443, true],
    ['::1', '[::1]', 443, true],
    ['[::1]:8443', '[::1]', 8443, true],
    ['fd00::/8', '[fd00::1]', 443, true],
  ])('NO_PROXY=%s: %s:%d bypasses the proxy: %s', (entry, host, port, expected) => {
    expect(bypassesProxy([entry], host, port)).toBe(expected);
  });
});

describe('usesProxy', () => {
  const proxied = settings({ HTTPS_PROXY: 'http://proxy:3128', NO_PROXY: 'internal.example.com' });

  it('sends https:// token URLs through the proxy unless NO_PROXY names their host', () => {
    expect(usesProxy(proxied, 'https://oauth.pipedrive.com/oauth/token')).toBe(true);
    expect(usesProxy(proxied, 'https://idp.internal.example.com/token')).toBe(false);
  });

  it('never sends http:// token URLs through it', () => {
    expect(usesProxy(proxied, 'http://127.0.0.1:8080/oauth/token')).toBe(false);
  });
});
