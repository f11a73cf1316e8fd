// A standards-following OAuth 2.0 server that is not our sandbox: panva's oidc-provider (an
// OpenID Certified implementation of RFC 6749 and OpenID Connect) on loopback, with one
// confidential client and its built-in development login and consent pages. `authorize` plays the
// person in front of the browser, so the first-authorization flow runs end to end over real HTTP.
// As RFC 9700 asks of an authorization server: PKCE (S256) is required of the client, and
// authorization responses carry `iss` (RFC 9207; always on in oidc-provider 9, whose discovery
// document says authorization_response_iss_parameter_supported: true).
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import got, { type Got } from 'got';
import { clientCheckTokenPrefix } from '../../src/oauth/client-check.ts';
// oidc-provider ships JavaScript only (its types are the separate @types/oidc-provider package):
// the few members used here are typed by `OidcProvider` below.
// @ts-expect-error TS7016 -- no declaration file; narrowed to OidcProvider on the next lines
import { Provider as UntypedProvider } from 'oidc-provider';

export type ClientAuthentication = 'client_secret_basic' | 'client_secret_post';

/** Only what this harness uses of oidc-provider's Provider (a Koa application). */
interface OidcProvider {
  callback(): (request: IncomingMessage, response: ServerResponse) => void;
  on(event: string, listener: (...args: never[]) => void): unknown;
}
interface OidcContext {
  headers: Record<string, string | string[] | undefined>;
  oidc?: { params?: Record<string, unknown>; body?: Record<string, unknown> };
}
type ProviderConstructor = new (issuer: string, configuration: Record<string, unknown>) => OidcProvider;
const Provider = UntypedProvider as ProviderConstructor;

export interface OidcProviderOptions {
  /** The client's one registered redirect URI: the operator's callback URL. */
  redirectURI: string;
  clientAuthentication: ClientAuthentication;
  /** Access-token lifetime (`ttl.AccessToken`). Default 20 s, short enough to watch a refresh. */
  accessTokenTTLSeconds?: number;
  /**
   * Whether every refresh returns a new refresh token and consumes the one sent (a replay then
   * revokes the whole grant). Default true, the stricter behaviour; oidc-provider's own default
   * rotates only for public clients and near the refresh token's end of life.
   */
  rotateRefreshTokens?: boolean;
  /** Refuse authorization requests without a PKCE code_challenge (`pkce.required`). Default true. */
  requirePkce?: boolean;
}

/** One request to the token endpoint, as the server saw it. */
export interface TokenEndpointRequest {
  grantType: string;
  /** How the client authenticated: an Authorization header, or client_secret in the body. */
  clientAuthentication: ClientAuthentication | 'other';
  /** `ok`, or the RFC 6749 §5.2 error code the server answered. */
  outcome: string;
  /** A client check (oauth/client-check.ts): a refresh token this server never issued. */
  clientCheck?: true;
}

export interface AuthorizationOutcome {
  /** The operator's callback page: the last hop of the redirect chain. */
  status: number;
  body: string;
  /** Every request the browser made, in order, without query strings (they carry the code and state). */
  hops: string[];
  /** The query the provider sent back to the callback, parameter names only. */
  callbackParameters: string[];
}

export interface TestOidcProvider {
  issuer: string;
  authorizeURL: string;
  tokenURL: string;
  clientId: string;
  clientSecret: string;
  clientAuthentication: ClientAuthentication;
  /** Scopes this server knows; `offline_access` is what earns a refresh token. */
  scopes: readonly string[];
  /** Follows an authorization URL as a person would: signs in with any login, consents, and lands on the callback. */
  authorize(authorizationURL: string, login?: string): Promise<AuthorizationOutcome>;
  /** The same, but stops before the callback: the URL (with code, state and iss) the browser was sent to. */
  authorizeToCallback(authorizationURL: string, login?: string): Promise<URL>;
  /** A token request as this client, with `form` (for example a code exchange with a wrong code_verifier). */
  tokenRequest(form: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }>;
  /** Whether the provider holds `accessToken` as live (RFC 7662 token introspection). */
  isActive(accessToken: string): Promise<boolean>;
  tokenRequests(): readonly TokenEndpointRequest[];
  /** Grants the server revoked (for example after a refresh-token replay). */
  revokedGrants(): number;
  /** Every authorization code, access token and refresh token the server issued: leak canaries. */
  issuedSecrets(): readonly string[];
  close(): Promise<void>;
}

const knownScopes = ['openid', 'offline_access', 'crm:read'] as const;

export async function startOidcProvider(options: OidcProviderOptions): Promise<TestOidcProvider> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // Characters that client_secret_basic must form-encode (RFC 6749 §2.3.1), and oidc-provider decodes.
  const clientId = `crm-sync.${randomBytes(4).toString('hex')}`;
  const clientSecret = `${randomBytes(18).toString('base64url')}+/=:%~ ok`;
  const requests: TokenEndpointRequest[] = [];
  const issued: string[] = [];
  let revoked = 0;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [options.redirectURI],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: options.clientAuthentication,
      },
    ],
    scopes: [...knownScopes],
    ttl: { AccessToken: options.accessTokenTTLSeconds ?? 20, AuthorizationCode: 60, RefreshToken: 24 * 3600, Interaction: 600, Session: 3600, Grant: 24 * 3600 },
    rotateRefreshToken: options.rotateRefreshTokens ?? true,
    features: {
      devInteractions: { enabled: true },
      // A client may introspect only its own tokens.
      introspection: { enabled: true, allowedPolicy: (_context: unknown, client: { clientId: string }, token: { clientId?: string }) => token.clientId === client.clientId },
    },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    // Signs only ID Tokens (not asked for here); RS256 is what clients expect by default.
    jwks: { keys: [{ ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }), kid: 'test', use: 'sig', alg: 'RS256' }] },
    // Any login is an account; it has no claims beyond its subject.
    findAccount: (_context: unknown, accountId: string) => ({ accountId, claims: () => ({ sub: accountId }) }),
    // RFC 9700 §2.1.1: PKCE for confidential clients too (oidc-provider's default asks it of
    // public clients only). A challenge that is sent is always checked.
    pkce: { required: () => options.requirePkce ?? true },
  });

  provider.on('grant.success', (context: OidcContext) => {
    requests.push({ grantType: grantTypeOf(context), clientAuthentication: authenticationOf(context), outcome: 'ok', ...clientCheckOf(context) });
  });
  provider.on('grant.error', (context: OidcContext, error: { error?: string }) => {
    requests.push({ grantType: grantTypeOf(context), clientAuthentication: authenticationOf(context), outcome: error.error ?? 'server_error', ...clientCheckOf(context) });
  });
  provider.on('grant.revoked', () => {
    revoked += 1;
  });
  for (const kind of ['authorization_code', 'access_token', 'refresh_token']) {
    provider.on(`${kind}.saved`, (token: { jti?: string }) => {
      if (token.jti) issued.push(token.jti);
    });
  }
  server.on('request', provider.callback());

  const browser = got.extend({ followRedirect: false, throwHttpErrors: false, retry: { limit: 0 }, timeout: { request: 15_000 } });
  const clientAuth = (): { headers?: Record<string, string>; form: Record<string, string> } =>
    options.clientAuthentication === 'client_secret_basic'
      ? { headers: { authorization: `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`).toString('base64')}` }, form: {} }
      : { form: { client_id: clientId, client_secret: clientSecret } };

  return {
    issuer,
    authorizeURL: `${issuer}/auth`,
    tokenURL: `${issuer}/token`,
    clientId,
    clientSecret,
    clientAuthentication: options.clientAuthentication,
    scopes: knownScopes,
    authorize: async (authorizationURL, login = 'ops@example.com') => {
      const reached = await followAsPerson(browser, authorizationURL, options.redirectURI, login, false);
      if (reached instanceof URL) throw new Error('followAsPerson stopped before the callback');
      return reached;
    },
    authorizeToCallback: async (authorizationURL, login = 'ops@example.com') => {
      const reached = await followAsPerson(browser, authorizationURL, options.redirectURI, login, true);
      if (!(reached instanceof URL)) throw new Error('followAsPerson went on to the callback');
      return reached;
    },
    async tokenRequest(form) {
      const auth = clientAuth();
      const response = await browser.post(`${issuer}/token`, { ...(auth.headers ? { headers: auth.headers } : {}), form: { ...auth.form, ...form } });
      return { status: response.statusCode, body: JSON.parse(response.body) as Record<string, unknown> };
    },
    async isActive(accessToken) {
      const auth = clientAuth();
      const response = await browser.post(`${issuer}/token/introspection`, {
        ...(auth.headers ? { headers: auth.headers } : {}),
        form: { ...auth.form, token: accessToken, token_type_hint: 'access_token' },
      });
      if (response.statusCode !== 200) throw new Error(`introspection answered ${response.statusCode}`);
      return (JSON.parse(response.body) as { active?: unknown }).active === true;
    },
    tokenRequests: () => [...requests],
    revokedGrants: () => revoked,
    issuedSecrets: () => [...issued],
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/**
 * The person: follows each redirect by hand (so every hop is seen), fills in whatever form a page
 * shows (the dev login takes any login and password; consent is one button), and stops after the
 * GET of the redirect URI, which is the operator's callback. Cookies go only back to the origin
 * that set them, as a browser would.
 */
async function followAsPerson(browser: Got, start: string, redirectURI: string, login: string, stopAtCallback: boolean): Promise<AuthorizationOutcome | URL> {
  const jar = new CookieJar();
  const hops: string[] = [];
  let request: { url: string; form?: Record<string, string> } = { url: start };
  for (let hop = 0; hop < 20; hop += 1) {
    const url = new URL(request.url);
    if (stopAtCallback && `${url.origin}${url.pathname}` === redirectURI) return url;
    hops.push(`${request.form ? 'POST' : 'GET'} ${url.origin}${url.pathname}`);
    const response = await browser(url, {
      method: request.form ? 'POST' : 'GET',
      headers: jar.header(url),
      ...(request.form ? { form: request.form } : {}),
    });
    jar.store(url, response.headers['set-cookie']);
    const atCallback = `${url.origin}${url.pathname}` === redirectURI;
    if (atCallback) {
      return { status: response.statusCode, body: response.body, hops, callbackParameters: [...url.searchParams.keys()] };
    }
    const location = response.headers.location;
    if (response.statusCode >= 300 && response.statusCode < 400 && location) {
      request = { url: new URL(location, url).href };
      continue;
    }
    const form = response.statusCode === 200 ? readForm(response.body, login) : undefined;
    if (!form) throw new Error(`${url.origin}${url.pathname} answered ${response.statusCode} without a redirect or a form: ${pageText(response.body)}`);
    request = { url: new URL(form.action, url).href, form: form.fields };
  }
  throw new Error(`no callback after 20 hops: ${hops.join(' → ')}`);
}

/** The first POST form of a page, with its hidden fields and a login and password filled in. */
function readForm(html: string, login: string): { action: string; fields: Record<string, string> } | undefined {
  const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) return undefined;
  const attributes = form[1] ?? '';
  if (!/method="post"/i.test(attributes)) return undefined;
  const action = decodeEntities(/action="([^"]*)"/i.exec(attributes)?.[1] ?? '');
  const fields: Record<string, string> = {};
  for (const [input] of (form[2] ?? '').matchAll(/<input\b[^>]*>/gi)) {
    const name = /name="([^"]*)"/i.exec(input)?.[1];
    if (!name) continue;
    const type = /type="([^"]*)"/i.exec(input)?.[1]?.toLowerCase() ?? 'text';
    const value = decodeEntities(/value="([^"]*)"/i.exec(input)?.[1] ?? '');
    fields[name] = type === 'password' ? 'any password' : type === 'hidden' || value !== '' ? value : login;
  }
  return { action, fields };
}

/** A page's words, for an error message: no markup, no styles, capped. */
function pageText(html: string): string {
  return decodeEntities(html.replace(/<(style|script)\b[\s\S]*?<\/\1>/gi, ' ').replace(/<[^>]*>/g, ' '))
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 400);
}

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos|#39);/gi, (_match, entity: string) => {
    const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
    if (entity.startsWith('#x') || entity.startsWith('#X')) return String.fromCodePoint(Number.parseInt(entity.slice(2), 16));
    if (entity.startsWith('#')) return String.fromCodePoint(Number(entity.slice(1)));
    return named[entity.toLowerCase()] ?? '';
  });
}

/** Enough of RFC 6265 for one session with one server: host-only cookies, Path, Max-Age, Expires. */
class CookieJar {
  private readonly cookies = new Map<string, { origin: string; name: string; value: string; path: string; expiresAt: number }>();

  store(url: URL, setCookie: readonly string[] | undefined): void {
    for (const line of setCookie ?? []) {
      const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
      const equals = pair.indexOf('=');
      if (equals <= 0) continue;
      const name = pair.slice(0, equals);
      const value = pair.slice(equals + 1);
      let path = url.pathname.replace(/\/[^/]*$/, '') || '/';
      let expiresAt = Number.POSITIVE_INFINITY;
      for (const attribute of attributes) {
        const [key = '', setting = ''] = attribute.split(/=(.*)/s);
        const lower = key.toLowerCase();
        if (lower === 'path' && setting.startsWith('/')) path = setting;
        else if (lower === 'max-age') expiresAt = Date.now() + Number(setting) * 1000;
        else if (lower === 'expires' && expiresAt === Number.POSITIVE_INFINITY) expiresAt = Date.parse(setting);
      }
      const key = `${url.origin} ${path} ${name}`;
      if (expiresAt <= Date.now()) this.cookies.delete(key);
      else this.cookies.set(key, { origin: url.origin, name, value, path, expiresAt });
    }
  }

  header(url: URL): Record<string, string> {
    const now = Date.now();
    const sent = [...this.cookies.values()]
      .filter((cookie) => cookie.origin === url.origin && cookie.expiresAt > now && pathMatches(url.pathname, cookie.path))
      .map((cookie) => `${cookie.name}=${cookie.value}`);
    return sent.length > 0 ? { cookie: sent.join('; ') } : {};
  }
}

function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  return requestPath.startsWith(cookiePath) && (cookiePath.endsWith('/') || requestPath.charAt(cookiePath.length) === '/');
}

function clientCheckOf(context: OidcContext): { clientCheck?: true } {
  const refreshToken = context.oidc?.params?.refresh_token;
  return typeof refreshToken === 'string' && refreshToken.startsWith(clientCheckTokenPrefix) ? { clientCheck: true } : {};
}

function grantTypeOf(context: OidcContext): string {
  const grantType = context.oidc?.params?.grant_type;
  return typeof grantType === 'string' ? grantType : 'unknown';
}

function authenticationOf(context: OidcContext): TokenEndpointRequest['clientAuthentication'] {
  if (typeof context.headers.authorization === 'string' && context.headers.authorization.startsWith('Basic ')) return 'client_secret_basic';
  return context.oidc?.body?.client_secret !== undefined ? 'client_secret_post' : 'other';
}

/** application/x-www-form-urlencoded, as RFC 6749 §2.3.1 asks for Basic credentials. */
function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}
