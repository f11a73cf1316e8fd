// The OAuth 2.0 token endpoint client: one POST per call, never retried, every failure a typed
// TokenRequestError (see errors.ts for what `delivery` tells the caller).
import got, { type Agents, type ExtendOptions, type Got, type OptionsInit } from 'got';
import { HttpsProxyAgent } from 'hpagent';
import http from 'node:http';
import https from 'node:https';
import { AddressNotAllowedError, guardedLookup, literalAddress, publicAddressesOnly, type AddressPolicy, type LookupFunction } from './address-policy.ts';
import { fromErrorAnswer, malformedAnswer } from './error-response.ts';
import { TokenRequestError } from './errors.ts';
import { sendForExchange } from './http-exchange.ts';
import { noProxySettings, usesProxy, type ProxySettings } from './proxy.ts';
import { redactor } from './redact.ts';
import { encodeRevocationRequest, encodeTokenRequest, type RevocationRequest, type TokenRequest } from './token-request.ts';
import { parseCompany, type Company } from './company.ts';
import { defaultExpiresInSeconds, parseTokenResponse, type TokenSet } from './token-response.ts';
import { fromTransportError } from './transport-error.ts';

export interface TokenClientOptions {
  /**
   * A got instance, or options for one. Without an instance, every request gets a fresh connection
   * (no keep-alive): a pooled socket the server has already closed fails after the request was
   * written, which could only be reported as delivery `unknown`.
   */
  readonly got?: Got | ExtendOptions | undefined;
  /** Budget for one whole request, connection to last body byte. Default 10 s. */
  readonly timeoutMs?: number | undefined;
  /** Clock for Retry-After dates. Default Date.now. */
  readonly now?: (() => number) | undefined;
  readonly userAgent?: string | undefined;
  /** Longest answer read; longer is a malformed_response. Default 64 KiB. */
  readonly maxResponseBytes?: number | undefined;
  /** The lifetime assumed for an access token whose answer has no expires_in. Default 3600 s. */
  readonly defaultExpiresInSeconds?: number | undefined;
  /**
   * Which addresses a request may connect to, checked on the resolved address at connect time.
   * Default: public addresses only. Applies to the agents this client creates (not to a got
   * instance passed in `got`) and to literal-IP URLs.
   */
  readonly addresses?: AddressPolicy | undefined;
  /** Resolves host names (tests). Default dns.lookup. */
  readonly lookup?: LookupFunction | undefined;
  /**
   * The egress proxy for https:// token URLs (HTTPS_PROXY, NO_PROXY). Through it the proxy picks
   * the provider's address, so `addresses` cannot apply (see proxy.ts). Default: none.
   */
  readonly proxy?: ProxySettings | undefined;
}

export interface RequestTokenOptions {
  /** Aborts the request (for shutdown): rejects with code `aborted`. */
  readonly signal?: AbortSignal | undefined;
}

export interface TokenClient {
  /** @throws TokenRequestError */
  requestToken(request: TokenRequest, options?: RequestTokenOptions): Promise<TokenSet>;
}

/** What a public app (installations: multiple) asks its provider besides tokens. */
export interface InstallationCalls {
  /** RFC 7009: the provider forgets the token's grant. @throws TokenRequestError */
  revokeToken(request: RevocationRequest): Promise<void>;
  /** Which company and user an access token belongs to (Pipedrive: users/me). @throws TokenRequestError */
  whoInstalled(request: { apiDomain: string; accessToken: string }): Promise<Company>;
}

export const defaultTimeoutMs = 10_000;
export const defaultMaxResponseBytes = 64 * 1024;
export const defaultUserAgent = 'oauthapp-operator';

const freshConnections = (lookup: LookupFunction): ExtendOptions => ({
  agent: { http: new http.Agent({ keepAlive: false, lookup }), https: new https.Agent({ keepAlive: false, lookup }) },
});

const instanceFrom = (option: TokenClientOptions['got'], lookup: LookupFunction): Got => {
  if (typeof option === 'function') return option;
  return got.extend(freshConnections(lookup), option ?? {});
};

export const createTokenClient = (options: TokenClientOptions = {}): TokenClient & InstallationCalls => {
  const addresses = options.addresses ?? publicAddressesOnly;
  const instance = instanceFrom(options.got, guardedLookup(addresses, options.lookup));
  const proxy = options.proxy ?? noProxySettings;
  // hpagent: a CONNECT tunnel, then TLS to the provider over it as https.Agent does (CAs, names).
  const proxied: Agents | undefined = proxy.url === undefined ? undefined : { https: new HttpsProxyAgent({ keepAlive: false, proxy: proxy.url }) };
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  const now = options.now ?? Date.now;
  const userAgent = options.userAgent ?? defaultUserAgent;
  const maxResponseBytes = options.maxResponseBytes ?? defaultMaxResponseBytes;
  const responseOptions = {
    defaultExpiresInSeconds: options.defaultExpiresInSeconds ?? defaultExpiresInSeconds,
    allowLoopbackAPIDomain: addresses.allowsLoopback,
  };
  if (!(timeoutMs > 0) || !(maxResponseBytes > 0)) throw new RangeError('timeoutMs and maxResponseBytes must be positive');

  /** One request, never retried; a transport failure or a refused address is a TokenRequestError. */
  const send = async (url: string, request: OptionsInit & { headers: Record<string, string> }, secrets: readonly string[], signal?: AbortSignal) => {
    // Checked here because got fails such a request before it has timings, which deliveryOf
    // would have to read as `unknown`.
    if (signal?.aborted === true) {
      throw new TokenRequestError('token request aborted before it was sent', { code: 'aborted', delivery: 'not_sent' });
    }
    const secure = url.toLowerCase().startsWith('https:');
    // A literal IP is connected to without a lookup, so the lookup hook never sees it.
    const literal = literalAddress(url);
    const verdict = literal === undefined ? undefined : addresses.check(literal);
    if (literal !== undefined && verdict?.allowed === false) {
      const refused = new AddressNotAllowedError(literal, [{ address: literal, category: verdict.category }]);
      throw fromTransportError(refused, { status: undefined, secure, redact: (text) => text });
    }
    const redact = redactor(secrets);
    const gotOptions: OptionsInit = {
      ...request,
      headers: { accept: 'application/json', 'user-agent': userAgent, ...request.headers },
      // A retry could replay a single-use refresh token: the caller decides, knowing `delivery`.
      retry: { limit: 0 },
      throwHttpErrors: false,
      followRedirect: false,
      // deliveryOf reads connection timings, which got does not have for HTTP/2 sessions.
      http2: false,
      timeout: { request: timeoutMs },
      signal,
      ...(proxied !== undefined && usesProxy(proxy, url) ? { agent: proxied } : {}),
    };
    const exchange = await sendForExchange(instance, url, gotOptions, maxResponseBytes);
    if (exchange.kind === 'failed') throw fromTransportError(exchange.error, { status: exchange.status, secure, redact });
    const { status, body } = exchange;
    if (status < 200 || status > 299) throw fromErrorAnswer({ status, retryAfter: exchange.headers['retry-after'], body }, { now: now(), redact });
    if (body === undefined) throw malformedAnswer(status, `the body is larger than ${maxResponseBytes} bytes`);
    return { status, body };
  };

  const formPost = (body: string, authorization: string | undefined) => ({
    method: 'POST' as const,
    body,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization === undefined ? {} : { authorization }) },
  });

  const requestToken = async (request: TokenRequest, call: RequestTokenOptions = {}): Promise<TokenSet> => {
    const encoded = encodeTokenRequest(request);
    const { status, body } = await send(request.tokenURL, formPost(encoded.body, encoded.authorization), encoded.secrets, call.signal);
    const parsed = parseTokenResponse(body, responseOptions);
    if (!parsed.success) throw malformedAnswer(status, parsed.problem, parsed.refreshToken);
    return parsed.tokenSet;
  };

  // RFC 7009 §2.2: any 2xx means the token is gone (an unknown token too); the body says nothing.
  const revokeToken = async (request: RevocationRequest): Promise<void> => {
    const encoded = encodeRevocationRequest(request);
    await send(request.revokeURL, formPost(encoded.body, encoded.authorization), encoded.secrets);
  };

  const whoInstalled = async ({ apiDomain, accessToken }: { apiDomain: string; accessToken: string }): Promise<Company> => {
    const url = new URL('/api/v1/users/me', apiDomain).toString();
    const { status, body } = await send(url, { method: 'GET', headers: { authorization: `Bearer ${accessToken}` } }, [accessToken]);
    const company = parseCompany(body);
    if (!company.success) throw malformedAnswer(status, company.problem);
    return company.company;
  };

  return { requestToken, revokeToken, whoInstalled };
};
