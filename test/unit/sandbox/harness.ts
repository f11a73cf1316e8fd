// Shared set-up for the sandbox specs: a sandbox listening on loopback, one registered app,
// and got configured to show every answer as it is (no redirects followed, no retries).
import { type IncomingHttpHeaders, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import got, { type Got, type Response } from 'got';
import { type Client, type Sandbox, type SandboxOptions, createSandbox } from '../../../src/sandbox/server.ts';

export const REDIRECT_URI = 'https://ops.example.com/oauth/callback';

/** A clock the specs move by hand. */
export class FakeClock {
  #ms = Date.parse('2025-01-01T00:00:00Z');

  readonly now = (): number => this.#ms;

  advance(ms: number): void {
    this.#ms += ms;
  }
}

export interface Running {
  readonly sandbox: Sandbox;
  readonly baseUrl: string;
  readonly client: Client;
  readonly clock: FakeClock;
  /** got bound to the sandbox: relative paths, no redirects followed, errors returned not thrown. */
  readonly http: Got;
  close(): Promise<void>;
}

export const startSandbox = async (options: SandboxOptions = {}): Promise<Running> => {
  const clock = new FakeClock();
  const sandbox = createSandbox({ now: clock.now, ...options });
  const client = sandbox.registerClient({ redirectUri: REDIRECT_URI });
  const baseUrl = await sandbox.listen({ host: '127.0.0.1', port: 0 });
  const http = got.extend({
    prefixUrl: baseUrl,
    throwHttpErrors: false,
    followRedirect: false,
    retry: { limit: 0 },
  });
  return { sandbox, baseUrl, client, clock, http, close: () => sandbox.close() };
};

/** RFC 6749 §2.3.1: form-URL-encode id and secret, then base64 `id:secret`. */
export const basicAuth = (clientId: string, clientSecret: string): string => {
  const encode = (value: string) => new URLSearchParams({ v: value }).toString().slice(2);
  return `Basic ${Buffer.from(`${encode(clientId)}:${encode(clientSecret)}`).toString('base64')}`;
};

export interface TokenBody {
  access_token: string;
  token_type: string;
  refresh_token?: string;
  scope: string;
  expires_in: number;
  api_domain: string;
}

export interface ErrorBody {
  error: string;
  error_description: string;
}

export const json = <T>(response: Response<string>): T => JSON.parse(response.body) as T;

/** POST /oauth/token with Basic authentication as `client`. */
export const tokenRequest = (
  running: Running,
  form: Record<string, string>,
  client: Pick<Client, 'clientId' | 'clientSecret'> = running.client,
): Promise<Response<string>> =>
  running.http.post('oauth/token', {
    headers: { authorization: basicAuth(client.clientId, client.clientSecret) },
    form,
  });

/** Accepts the consent page as a scripted client does; resolves to the redirect's URL. */
export const decide = async (
  running: Running,
  decision: 'allow' | 'deny',
  fields: {
    clientId?: string;
    redirectUri?: string;
    state?: string;
    codeChallenge?: string;
    codeChallengeMethod?: string;
    companyId?: string;
    userId?: string;
  } = {},
): Promise<URL> => {
  const response = await running.http.post('oauth/authorize/decision', {
    form: {
      client_id: fields.clientId ?? running.client.clientId,
      redirect_uri: fields.redirectUri ?? REDIRECT_URI,
      state: fields.state ?? 'state-1',
      ...(fields.codeChallenge === undefined ? {} : { code_challenge: fields.codeChallenge }),
      ...(fields.codeChallengeMethod === undefined ? {} : { code_challenge_method: fields.codeChallengeMethod }),
      ...(fields.companyId === undefined ? {} : { company_id: fields.companyId }),
      ...(fields.userId === undefined ? {} : { user_id: fields.userId }),
      decision,
    },
  });
  if (response.statusCode !== 302 || response.headers.location === undefined) {
    throw new Error(`expected a redirect, got ${response.statusCode}: ${response.body}`);
  }
  return new URL(response.headers.location);
};

export const authorizationCode = async (running: Running): Promise<string> => {
  const code = (await decide(running, 'allow')).searchParams.get('code');
  if (code === null) throw new Error('no code in the redirect');
  return code;
};

/** A full install: authorize, allow, exchange the code. */
export const install = async (running: Running): Promise<TokenBody> => {
  const code = await authorizationCode(running);
  const response = await tokenRequest(running, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI });
  if (response.statusCode !== 200) throw new Error(`install failed: ${response.statusCode} ${response.body}`);
  return json<TokenBody>(response);
};

/** Exchanges a code for tokens as `client`, with its registered redirect_uri; throws unless 200. */
export const exchangeCode = async (
  running: Running,
  code: string,
  client: Pick<Client, 'clientId' | 'clientSecret' | 'redirectUri'> = running.client,
): Promise<TokenBody> => {
  const response = await tokenRequest(running, { grant_type: 'authorization_code', code, redirect_uri: client.redirectUri }, client);
  if (response.statusCode !== 200) throw new Error(`code exchange failed: ${response.statusCode} ${response.body}`);
  return json<TokenBody>(response);
};

export const refresh = (running: Running, refreshToken: string): Promise<Response<string>> =>
  tokenRequest(running, { grant_type: 'refresh_token', refresh_token: refreshToken });

/** GET /v1/users/me with the access token; resolves to the status code. */
export const whoAmI = async (running: Running, accessToken: string): Promise<number> =>
  (await running.http.get('v1/users/me', { headers: { authorization: `Bearer ${accessToken}` } })).statusCode;

export interface UserBody {
  success: boolean;
  data: { id: number; name: string; email: string; company_id: number; company_name: string; company_domain: string; scope: string };
}

/** GET /api/v1/users/me with the access token, as an app with an `api_domain` asks. */
export const usersMe = (running: Running, accessToken: string): Promise<Response<string>> =>
  running.http.get('api/v1/users/me', { headers: { authorization: `Bearer ${accessToken}` } });

/** POST /oauth/revoke as RFC 7009 has it: Basic authentication, the refresh token and its hint. */
export const revoke = (
  running: Running,
  token: string,
  client: Pick<Client, 'clientId' | 'clientSecret'> = running.client,
): Promise<Response<string>> =>
  running.http.post('oauth/revoke', {
    headers: { authorization: basicAuth(client.clientId, client.clientSecret) },
    form: { token, token_type_hint: 'refresh_token' },
  });

/** One request as the app's callback server received it. */
export interface CallbackRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface CallbackServer {
  /** e.g. `http://127.0.0.1:41234` */
  readonly origin: string;
  readonly requests: readonly CallbackRequest[];
  /** What every request is answered with. */
  status: number;
  /** Runs after a request is recorded and before it is answered (the sender is still waiting). */
  beforeAnswer: (() => Promise<void>) | undefined;
  close(): Promise<void>;
}

/** A stand-in for the app's callback URL (node:http on loopback), recording what it is sent. */
export const startCallbackServer = async (status = 200): Promise<CallbackServer> => {
  const requests: CallbackRequest[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      requests.push({
        method: request.method ?? '',
        path: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      void (callback.beforeAnswer?.() ?? Promise.resolve()).finally(() => response.writeHead(callback.status).end());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const callback: CallbackServer = {
    origin: `http://127.0.0.1:${port}`,
    requests,
    status,
    beforeAnswer: undefined,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error === undefined ? resolve() : reject(error)));
      }),
  };
  return callback;
};

/** Polls `condition` every 10 ms until it holds (the spec's timeout bounds the wait). */
export const until = async (condition: () => boolean): Promise<void> => {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
};
