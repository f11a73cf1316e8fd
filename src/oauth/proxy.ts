// Token requests through an egress proxy, as HTTPS_PROXY and NO_PROXY ask (curl's and Go's
// variables). Only https:// token URLs use it: http:// ones are loopback-only development setups,
// and HTTP_PROXY is not read.
//
// Through a CONNECT proxy the proxy resolves the provider's name and picks the address, so the
// address policy cannot check that address: it applies to direct connections only. What still
// holds: --provider-hosts (checked on the spec, before any request), a literal IP in tokenURL
// (checked before the request), and TLS to the provider end to end through the tunnel, verified
// against the provider's name. Refusing internal destinations is then the proxy's ACL. The proxy's
// own address is the admin's choice: it is not checked.
import { BlockList, isIP } from 'node:net';
import { parseCIDR } from './address-policy.ts';

export interface ProxySettings {
  /** The proxy for https:// token URLs; undefined: connect directly. */
  readonly url: URL | undefined;
  /** NO_PROXY's entries, lowercased: hosts (and their subdomains), `.domain`, `host:port`, IPs, CIDRs, `*`. */
  readonly noProxy: readonly string[];
}

export const noProxySettings: ProxySettings = { url: undefined, noProxy: [] };

/** The lowercase variable wins when both are set, as in curl. */
const variable = (env: Readonly<Record<string, string | undefined>>, name: string) => env[name.toLowerCase()] || env[name] || undefined;

/**
 * HTTPS_PROXY / https_proxy and NO_PROXY / no_proxy. The error never repeats the proxy URL, which
 * may carry credentials.
 */
export const proxySettingsFrom = (env: Readonly<Record<string, string | undefined>>): { ok: true; settings: ProxySettings } | { ok: false; error: string } => {
  const raw = variable(env, 'HTTPS_PROXY');
  const noProxy = (variable(env, 'NO_PROXY') ?? '').split(/[\s,]+/).map((entry) => entry.trim().toLowerCase()).filter(Boolean);
  if (raw === undefined) return { ok: true, settings: { url: undefined, noProxy } };
  let url: URL;
  try {
    // curl and Go take a bare host:port as an http:// proxy.
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
  } catch {
    return { ok: false, error: 'invalid HTTPS_PROXY: must be a URL such as http://proxy.example.com:3128' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, error: `invalid HTTPS_PROXY: the scheme must be http:// or https://, not ${url.protocol}//` };
  return { ok: true, settings: { url, noProxy } };
};

const bare = (host: string) => host.replace(/^\[(.*)\]$/, '$1');

/** Whether NO_PROXY sends `hostname:port` around the proxy (Go's rules; CIDRs match literal IPs only: nothing is resolved for this). */
export const bypassesProxy = (noProxy: readonly string[], hostname: string, port: number): boolean => {
  const host = bare(hostname.toLowerCase()).replace(/\.$/, '');
  const family = isIP(host);
  return noProxy.some((entry) => {
    if (entry === '*') return true;
    if (entry.includes('/')) {
      if (family === 0) return false;
      try {
        const list = new BlockList();
        list.addSubnet(...parseCIDR(entry));
        return list.check(host, family === 4 ? 'ipv4' : 'ipv6');
      } catch {
        return false; // not a CIDR: matches nothing, as in Go
      }
    }
    const [, address = entry, entryPort] = isIP(entry) === 6 ? [entry, entry] : (/^\[(.+)\](?::(\d+))?$/.exec(entry) ?? /^([^:]+)(?::(\d+))?$/.exec(entry) ?? []);
    if (entryPort !== undefined && Number(entryPort) !== port) return false;
    let pattern = address;
    if (pattern.startsWith('*.')) pattern = pattern.slice(1);
    if (pattern.startsWith('.')) return host.endsWith(pattern);
    return host === pattern || (isIP(pattern) === 0 && host.endsWith(`.${pattern}`));
  });
};

/** Whether a token request to `url` goes through the proxy. */
export const usesProxy = (settings: ProxySettings, url: string): boolean => {
  if (settings.url === undefined) return false;
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return false;
  }
  return target.protocol === 'https:' && !bypassesProxy(settings.noProxy, target.hostname, Number(target.port || 443));
};
