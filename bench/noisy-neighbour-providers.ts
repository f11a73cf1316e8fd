// The providers of bench/noisy-neighbour.ts, in a process of their own so that serving them (the
// healthy tenants' refreshes, the hostile tenant's held requests) does not share an event loop with
// the benchmark's measurements. Started by the benchmark with an IPC channel; answers requests for
// refresh tokens and the hostile provider's figures. Not run by hand.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createSandbox } from '../src/sandbox/server.ts';
import { createBenchSandbox } from './sandbox.ts';

export interface ProviderInfo {
  url: string;
  clientId: string;
  clientSecret: string;
}

export interface HostileStats {
  requests: number;
  answered: number;
  /** Requests never answered (held until the client gave up). */
  held: number;
  inFlight: number;
  mostAtOnce: number;
}

export type ProvidersRequest = { id: number; op: 'seed'; provider: 'healthy' | 'hostile' } | { id: number; op: 'stats' } | { id: number; op: 'close' };
export type ProvidersMessage = { type: 'ready'; healthy: ProviderInfo; hostile: ProviderInfo } | { type: 'answer'; id: number; value: unknown };

interface Options {
  lifetimeSeconds: number;
  hostileDelayMs: number;
  redirectUri: string;
}

if (process.send !== undefined) {
  const { lifetimeSeconds, hostileDelayMs, redirectUri } = JSON.parse(process.argv[2] ?? '{}') as Options;
  // Tokens live between the lifetime and three times it, drawn per response: a steady refresh rate.
  const healthy = createBenchSandbox({ expiresInAt: () => lifetimeSeconds * (1 + 2 * Math.random()), acceptAnyClientSecret: true });
  const healthyClient = healthy.registerClient({ redirectUri });
  const healthyURL = await healthy.listen({ host: '127.0.0.1', port: 0 });
  // The hostile tenant's provider: a sandbox (1 s tokens, no rotation) behind a front that holds requests.
  const slow = createSandbox({ expiresIn: 1, rotateRefreshTokens: false });
  const hostileClient = slow.registerClient({ redirectUri });
  const slowURL = await slow.listen({ host: '127.0.0.1', port: 0 });
  const front = hostileFront(`${slowURL}/oauth/token`, hostileDelayMs);
  const hostileURL = await front.listen();

  const send = (message: ProvidersMessage) => process.send?.(message);
  process.on('message', (request: ProvidersRequest) => {
    if (request.op === 'seed') {
      const value = request.provider === 'healthy' ? healthy.issueRefreshToken(healthyClient.clientId) : slow.issueRefreshToken(hostileClient.clientId);
      send({ type: 'answer', id: request.id, value });
    } else if (request.op === 'stats') {
      send({ type: 'answer', id: request.id, value: front.stats() });
    } else {
      void Promise.all([front.close(), healthy.close(), slow.close()]).then(() => {
        send({ type: 'answer', id: request.id, value: null });
        process.disconnect();
      });
    }
  });
  send({
    type: 'ready',
    healthy: { url: healthyURL, clientId: healthyClient.clientId, clientSecret: healthyClient.clientSecret },
    hostile: { url: hostileURL, clientId: hostileClient.clientId, clientSecret: hostileClient.clientSecret },
  });
}

/**
 * The hostile provider: every other token request is held `delayMs` and then passed to the sandbox
 * (its answer relayed), the rest are held until the client gives up.
 */
function hostileFront(tokenURL: string, delayMs: number) {
  const sockets = new Set<Socket>();
  const stats: HostileStats = { requests: 0, answered: 0, held: 0, inFlight: 0, mostAtOnce: 0 };
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      stats.inFlight += 1;
      stats.mostAtOnce = Math.max(stats.mostAtOnce, stats.inFlight);
      response.on('close', () => (stats.inFlight -= 1));
      if (stats.requests++ % 2 === 1) {
        stats.held += 1;
        return;
      }
      setTimeout(() => {
        void fetch(tokenURL, {
          method: 'POST',
          headers: { 'content-type': request.headers['content-type'] ?? 'application/x-www-form-urlencoded', authorization: request.headers.authorization ?? '' },
          body: Buffer.concat(chunks),
        })
          .then(async (upstream) => {
            stats.answered += 1;
            response.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
            response.end(await upstream.text());
          })
          .catch(() => response.destroy());
      }, delayMs);
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return {
    listen: () =>
      new Promise<string>((resolve) =>
        server.listen(0, '127.0.0.1', () => {
          const address = server.address();
          resolve(typeof address === 'object' && address ? `http://127.0.0.1:${address.port}` : '');
        }),
      ),
    stats: () => ({ ...stats }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
