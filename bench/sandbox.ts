// The sandbox provider with two bench-only hooks, without touching src/sandbox: `expiresIn` decides
// each token response's `expires_in` when it is sent (e.g. "until one absolute moment", so that
// tokens issued at different times all expire together), and `onToken` sees every successful
// token response (when, which grant) — the provider's view of the refresh rate; and
// `acceptAnyClientSecret` takes any client secret for a registered client id (a portal that keeps
// old secrets valid), so a benchmark may change client secrets without failing refreshes.
import { createSandbox, type Sandbox, type SandboxOptions } from '../src/sandbox/server.ts';

export interface BenchSandboxOptions extends SandboxOptions {
  /** Seconds to put in `expires_in` of the response being sent; default: the sandbox's own. */
  expiresInAt?: (nowMs: number) => number;
  onToken?: (event: { at: number; grantType: string }) => void;
  /** Any client secret sent with HTTP Basic is taken as the registered one of its client id. */
  acceptAnyClientSecret?: boolean;
}

export function createBenchSandbox({ expiresInAt, onToken, acceptAnyClientSecret, ...options }: BenchSandboxOptions = {}): Sandbox {
  const sandbox = createSandbox(options);
  if (acceptAnyClientSecret) {
    const secrets = new Map<string, string>();
    const register = sandbox.registerClient.bind(sandbox);
    sandbox.registerClient = (registration) => {
      const client = register(registration);
      secrets.set(client.clientId, client.clientSecret);
      return client;
    };
    sandbox.app.addHook('onRequest', async (request) => {
      const basic = /^Basic (.+)$/.exec(request.headers.authorization ?? '');
      if (request.url !== '/oauth/token' || !basic) return;
      const clientId = decodeURIComponent(Buffer.from(basic[1] ?? '', 'base64').toString('utf8').split(':')[0] ?? '');
      const secret = secrets.get(clientId);
      if (secret !== undefined) request.headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
    });
  }
  // A root hook added before listen() is inherited by the token route's plugin.
  sandbox.app.addHook('onSend', async (request, reply, payload) => {
    if (request.url !== '/oauth/token' || reply.statusCode !== 200 || typeof payload !== 'string') return payload;
    const at = Date.now();
    const grantType = String((request.body as Record<string, unknown> | undefined)?.grant_type ?? '');
    onToken?.({ at, grantType });
    if (!expiresInAt) return payload;
    const body = JSON.parse(payload) as { expires_in?: number };
    body.expires_in = Math.max(1, Math.round(expiresInAt(at)));
    return JSON.stringify(body);
  });
  return sandbox;
}

/** One direct refresh-grant round trip to the sandbox (what the operator's token request costs at least). */
export async function tokenRoundTrip(tokenURL: string, clientId: string, clientSecret: string, refreshToken: string): Promise<number> {
  const started = performance.now();
  const response = await fetch(tokenURL, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }).toString(),
  });
  const body = (await response.json()) as { access_token?: string };
  if (!response.ok || !body.access_token) throw new Error(`token round trip failed: ${response.status}`);
  return performance.now() - started;
}
