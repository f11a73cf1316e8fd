// The provider of the randomized chaos run (test/integration/chaos-randomized.test.ts): panva's
// oidc-provider, strict (every refresh rotates the refresh token and consumes the one sent; a
// consumed one presented again revokes the whole grant), with short access tokens, and three
// things test/support/oidc-provider.ts does not offer:
// - clients live in the adapter (oidc-provider's dynamic clients), so a run registers its own
//   client and can rotate its secret: from then on the provider takes the new secret only, as a
//   portal does when ops rotate it;
// - every request to the token endpoint is recorded as the provider saw it: the refresh-token
//   value presented, the grant, the outcome, the refresh token issued, and whether the answer
//   reached the client (a client that hung up before it was written lost it);
// - grants are seeded by a scripted person (authorization code flow through the provider's own
//   login and consent pages, then the code exchange), so each app starts from a real grant.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import got from 'got';
// oidc-provider ships JavaScript only (see test/support/oidc-provider.ts).
// @ts-expect-error TS7016 -- no declaration file; narrowed to OidcProvider on the next lines
import { Provider as UntypedProvider } from 'oidc-provider';

interface KoaContext {
  method: string;
  path: string;
  status: number;
  body: unknown;
  res: ServerResponse;
  oidc?: {
    params?: Record<string, unknown>;
    client?: { clientId: string };
    entities?: Record<string, { grantId?: string; jti?: string } | undefined>;
  };
}
interface OidcProvider {
  callback(): (request: IncomingMessage, response: ServerResponse) => void;
  on(event: string, listener: (...args: never[]) => void): unknown;
  use(middleware: (context: KoaContext, next: () => Promise<void>) => Promise<void>): unknown;
}
type ProviderConstructor = new (issuer: string, configuration: Record<string, unknown>) => OidcProvider;
const Provider = UntypedProvider as ProviderConstructor;

/** One request to the token endpoint, as the provider saw it. */
export interface TokenExchange {
  /** 1, 2, … in order of arrival. */
  seq: number;
  clientId: string | undefined;
  grantType: string;
  /** When the request reached the provider, and when its answer was written out (epoch ms). */
  arrivedAt: number;
  answeredAt: number;
  /** The client hung up before the answer was written: it never got it. */
  lost: boolean;
  /** `ok`, or the RFC 6749 §5.2 error code answered. */
  outcome: string;
  /** The refresh_token value sent (refresh_token grant). */
  presented?: string;
  /** The grant the request was about, when the provider got that far. */
  grantId?: string;
  /** What the answer carried. */
  issuedRefreshToken?: string;
  issuedAccessToken?: string;
  expiresIn?: number;
}

export interface RandomizedProvider {
  issuer: string;
  authorizeURL: string;
  tokenURL: string;
  accessTokenTTLSeconds: number;
  /** A new confidential client (client_secret_basic); `redirectURI` is only used by seedGrant. */
  registerClient(): { clientId: string; clientSecret: string; redirectURI: string };
  /** A fresh client secret value (not yet in use). */
  newClientSecret(): string;
  /** From now on the client authenticates with `secret` only (a portal rotating it). */
  setClientSecret(clientId: string, secret: string): void;
  /** A person authorizes the client (offline_access); returns the refresh token of the new grant. */
  seedGrant(clientId: string): Promise<{ refreshToken: string; grantId: string }>;
  exchanges(): readonly TokenExchange[];
  /** Grants the provider revoked (a consumed refresh token presented again), with when. */
  revocations(): ReadonlyArray<{ at: number; grantId: string }>;
  /** Every secret value the provider issued or holds: client secrets, codes, tokens (leak canaries). */
  secrets(): readonly string[];
  close(): Promise<void>;
}

interface ClientRecord {
  client_id: string;
  client_secret: string;
  redirect_uris: string[];
  grant_types: string[];
  response_types: string[];
  token_endpoint_auth_method: 'client_secret_basic';
}

/** A Map-backed oidc-provider adapter (its memory adapter is an LRU of 1000 shared by all instances). */
function adapterFor(clients: Map<string, ClientRecord>) {
  const store = new Map<string, { payload: Record<string, unknown>; expiresAt: number }>();
  const grants = new Map<string, Set<string>>();
  const live = (key: string) => {
    const entry = store.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return entry.payload;
  };
  return class MapAdapter {
    private readonly model: string;
    constructor(model: string) {
      this.model = model;
    }
    private key(id: string) {
      return `${this.model}:${id}`;
    }
    async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void> {
      const key = this.key(id);
      store.set(key, { payload: { ...payload }, expiresAt: typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity });
      const grantId = payload.grantId;
      if (typeof grantId === 'string') {
        const members = grants.get(grantId) ?? new Set<string>();
        members.add(key);
        grants.set(grantId, members);
      }
    }
    async find(id: string): Promise<Record<string, unknown> | undefined> {
      if (this.model === 'Client') {
        const client = clients.get(id);
        return client ? { ...client } : undefined;
      }
      const payload = live(this.key(id));
      return payload ? { ...payload } : undefined;
    }
    async findByUserCode(): Promise<undefined> {
      return undefined;
    }
    async findByUid(uid: string): Promise<Record<string, unknown> | undefined> {
      for (const [key, entry] of store) {
        if (key.startsWith(`${this.model}:`) && entry.payload.uid === uid) return live(key);
      }
      return undefined;
    }
    async consume(id: string): Promise<void> {
      const payload = live(this.key(id));
      if (payload) payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string): Promise<void> {
      store.delete(this.key(id));
    }
    async revokeByGrantId(grantId: string): Promise<void> {
      for (const key of grants.get(grantId) ?? []) store.delete(key);
      grants.delete(grantId);
    }
  };
}

export async function startRandomizedProvider(options: { accessTokenTTLSeconds: number }): Promise<RandomizedProvider> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clients = new Map<string, ClientRecord>();
  const exchanges: TokenExchange[] = [];
  const revocations: Array<{ at: number; grantId: string }> = [];
  const issued: string[] = [];
  const clientSecrets: string[] = [];
  let seq = 0;

  const provider = new Provider(issuer, {
    adapter: adapterFor(clients),
    scopes: ['openid', 'offline_access'],
    ttl: { AccessToken: options.accessTokenTTLSeconds, AuthorizationCode: 60, RefreshToken: 24 * 3600, Interaction: 600, Session: 3600, Grant: 24 * 3600 },
    rotateRefreshToken: true,
    features: { devInteractions: { enabled: true } },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    jwks: { keys: [{ ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }), kid: 'test', use: 'sig', alg: 'RS256' }] },
    findAccount: (_context: unknown, accountId: string) => ({ accountId, claims: () => ({ sub: accountId }) }),
    pkce: { required: () => false },
  });

  provider.on('grant.revoked', (_context: unknown, grantId: string) => {
    revocations.push({ at: Date.now(), grantId });
  });
  for (const kind of ['authorization_code', 'access_token', 'refresh_token']) {
    provider.on(`${kind}.saved`, (token: { jti?: string }) => {
      if (token.jti) issued.push(token.jti);
    });
  }

  provider.use(async (context, next) => {
    if (context.method !== 'POST' || context.path !== '/token') return next();
    const arrivedAt = Date.now();
    const record: TokenExchange = { seq: ++seq, clientId: undefined, grantType: 'unknown', arrivedAt, answeredAt: 0, lost: false, outcome: 'pending' };
    exchanges.push(record);
    const response = context.res;
    response.once('close', () => {
      record.answeredAt = Date.now();
      record.lost = !response.writableFinished;
    });
    await next();
    const params = context.oidc?.params ?? {};
    const entities = context.oidc?.entities ?? {};
    const body = (typeof context.body === 'object' && context.body !== null ? context.body : {}) as Record<string, unknown>;
    record.clientId = context.oidc?.client?.clientId;
    record.grantType = typeof params.grant_type === 'string' ? params.grant_type : 'unknown';
    if (typeof params.refresh_token === 'string') record.presented = params.refresh_token;
    const grantId = entities.Grant?.jti ?? entities.RotatedRefreshToken?.grantId ?? entities.RefreshToken?.grantId ?? entities.AuthorizationCode?.grantId;
    if (grantId) record.grantId = grantId;
    if (context.status >= 200 && context.status < 300) {
      record.outcome = 'ok';
      if (typeof body.refresh_token === 'string') record.issuedRefreshToken = body.refresh_token;
      if (typeof body.access_token === 'string') record.issuedAccessToken = body.access_token;
      if (typeof body.expires_in === 'number') record.expiresIn = body.expires_in;
    } else {
      record.outcome = typeof body.error === 'string' ? body.error : `http_${context.status}`;
    }
  });
  server.on('request', provider.callback());

  const browser = got.extend({ followRedirect: false, throwHttpErrors: false, retry: { limit: 0 }, timeout: { request: 15_000 } });
  const basic = (clientId: string) => {
    const client = clients.get(clientId);
    if (!client) throw new Error(`no client ${clientId}`);
    return `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(client.client_secret)}`).toString('base64')}`;
  };
  const newSecret = () => {
    // Characters client_secret_basic must form-encode (RFC 6749 §2.3.1).
    const secret = `${randomBytes(18).toString('base64url')}+/=:%~ ok`;
    clientSecrets.push(secret);
    return secret;
  };

  return {
    issuer,
    authorizeURL: `${issuer}/auth`,
    tokenURL: `${issuer}/token`,
    accessTokenTTLSeconds: options.accessTokenTTLSeconds,
    registerClient() {
      const clientId = `randomized.${randomBytes(6).toString('hex')}`;
      const redirectURI = `http://127.0.0.1:9/${clientId}/callback`;
      const client: ClientRecord = {
        client_id: clientId,
        client_secret: newSecret(),
        redirect_uris: [redirectURI],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      };
      clients.set(clientId, client);
      return { clientId, clientSecret: client.client_secret, redirectURI };
    },
    newClientSecret: newSecret,
    setClientSecret(clientId, secret) {
      const client = clients.get(clientId);
      if (!client) throw new Error(`no client ${clientId}`);
      clients.set(clientId, { ...client, client_secret: secret });
    },
    async seedGrant(clientId) {
      const client = clients.get(clientId);
      const redirectURI = client?.redirect_uris[0];
      if (!redirectURI) throw new Error(`no client ${clientId}`);
      const authorize = new URL(`${issuer}/auth`);
      for (const [name, value] of Object.entries({ client_id: clientId, response_type: 'code', redirect_uri: redirectURI, scope: 'openid offline_access', prompt: 'consent', state: randomBytes(8).toString('hex') })) {
        authorize.searchParams.set(name, value);
      }
      const code = await codeFromPerson(browser, authorize.href, redirectURI);
      const answer = await browser.post(`${issuer}/token`, {
        headers: { authorization: basic(clientId) },
        form: { grant_type: 'authorization_code', code, redirect_uri: redirectURI },
      });
      const body = JSON.parse(answer.body) as { refresh_token?: string };
      const grantId = exchanges.findLast((exchange) => exchange.grantType === 'authorization_code' && exchange.issuedRefreshToken === body.refresh_token)?.grantId;
      if (answer.statusCode !== 200 || !body.refresh_token || !grantId) throw new Error(`code exchange answered ${answer.statusCode} ${answer.body.slice(0, 200)}`);
      return { refreshToken: body.refresh_token, grantId };
    },
    exchanges: () => exchanges,
    revocations: () => revocations,
    secrets: () => [...clientSecrets, ...issued, ...exchanges.flatMap((exchange) => [exchange.issuedAccessToken ?? '', exchange.issuedRefreshToken ?? ''])].filter(Boolean),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/**
 * The person (as in test/support/oidc-provider.ts, trimmed): follows redirects, fills in the dev
 * login (any login and password) and the consent form, and stops at the redirect to
 * `redirectURI`, returning its `code` (nothing listens there).
 */
async function codeFromPerson(browser: typeof got, start: string, redirectURI: string): Promise<string> {
  const jar = new Map<string, { value: string; path: string }>();
  let request: { url: string; form?: Record<string, string> } = { url: start };
  for (let hop = 0; hop < 20; hop += 1) {
    const url = new URL(request.url);
    if (`${url.origin}${url.pathname}` === redirectURI) {
      const code = url.searchParams.get('code');
      if (!code) throw new Error(`the provider came back without a code: ${url.searchParams.get('error') ?? 'no error'}`);
      return code;
    }
    const cookie = [...jar.entries()]
      .filter(([, entry]) => url.pathname === entry.path || url.pathname.startsWith(entry.path.endsWith('/') ? entry.path : `${entry.path}/`))
      .map(([key, entry]) => `${key.slice(key.indexOf(' ') + 1)}=${entry.value}`)
      .join('; ');
    const response = await browser(url, {
      method: request.form ? 'POST' : 'GET',
      headers: cookie ? { cookie } : {},
      ...(request.form ? { form: request.form } : {}),
    });
    for (const line of response.headers['set-cookie'] ?? []) {
      const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
      const equals = pair.indexOf('=');
      if (equals <= 0) continue;
      const name = pair.slice(0, equals);
      const path = attributes.find((attribute) => attribute.toLowerCase().startsWith('path='))?.slice(5) ?? '/';
      const expired = attributes.some((attribute) => /^expires=thu, 01 jan 1970/i.test(attribute) || /^max-age=0$/i.test(attribute));
      if (expired) jar.delete(`${path} ${name}`);
      else jar.set(`${path} ${name}`, { value: pair.slice(equals + 1), path });
    }
    const location = response.headers.location;
    if (response.statusCode >= 300 && response.statusCode < 400 && location) {
      request = { url: new URL(location, url).href };
      continue;
    }
    const form = response.statusCode === 200 ? readForm(response.body) : undefined;
    if (!form) throw new Error(`${url.origin}${url.pathname} answered ${response.statusCode} without a redirect or a form`);
    request = { url: new URL(form.action, url).href, form: form.fields };
  }
  throw new Error('no redirect to the client after 20 hops');
}

function readForm(html: string): { action: string; fields: Record<string, string> } | undefined {
  const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!form || !/method="post"/i.test(form[1] ?? '')) return undefined;
  const action = (/action="([^"]*)"/i.exec(form[1] ?? '')?.[1] ?? '').replaceAll('&amp;', '&');
  const fields: Record<string, string> = {};
  for (const [input] of (form[2] ?? '').matchAll(/<input\b[^>]*>/gi)) {
    const name = /name="([^"]*)"/i.exec(input)?.[1];
    if (!name) continue;
    const type = /type="([^"]*)"/i.exec(input)?.[1]?.toLowerCase() ?? 'text';
    const value = (/value="([^"]*)"/i.exec(input)?.[1] ?? '').replaceAll('&amp;', '&');
    fields[name] = type === 'password' ? 'any password' : type === 'hidden' || value !== '' ? value : 'ops@example.com';
  }
  return { action, fields };
}

/** application/x-www-form-urlencoded, as RFC 6749 §2.3.1 asks for Basic credentials. */
function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}
