// The operations endpoint (--metrics-addr): Prometheus metrics and the kubelet's probes.
//   GET /metrics  the registry in the Prometheus text format
//   GET /healthz  liveness: 200 as long as the process answers. The answer is the check: a blocked
//                 or starved event loop answers late or not at all, and the probe's timeout fails it.
//                 It depends on nothing else (not the apiserver): restarting cures none of that.
//   GET /readyz   readiness: 200 when `ready()` says so (the operator: "all caches synced"), else 503
//                 with a one-line plain-text reason.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { fastify, LogController, type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import type { Registry } from 'prom-client';
import type { Logger } from '../log.ts';

/** Not ready, and why (one line; shown in `kubectl describe pod` probe failures). */
export interface NotReady {
  reason: string;
}

/** `true`: ready. `false` or a NotReady: not ready. Must be cheap: it runs on every probe. */
export type ReadinessCheck = () => boolean | NotReady;

export type MetricsApp = FastifyInstance<Server, IncomingMessage, ServerResponse, Logger>;

export interface MetricsAppOptions {
  registry: Registry;
  ready: ReadinessCheck;
  /** fastify's own logs (errors, not per-request lines). Default: none. */
  logger?: Logger;
}

export interface MetricsServerOptions extends MetricsAppOptions {
  /** `HOST:PORT`; an empty HOST listens on all interfaces, port 0 on a free port. */
  address: string;
}

export interface MetricsServer {
  /** Where to reach it, with the bound port (a loopback host when listening on all interfaces). */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export type MetricsServerErrorCode = 'INVALID_LISTEN_ADDRESS' | 'LISTEN_FAILED';

export class MetricsServerError extends Error {
  override readonly name = 'MetricsServerError';
  readonly code: MetricsServerErrorCode;

  constructor(code: MetricsServerErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

export interface ListenAddress {
  /** Empty: all interfaces. IPv6 addresses without brackets. */
  host: string;
  port: number;
}

/** Parses `HOST:PORT`, `:PORT` or `[IPv6]:PORT`. */
export function parseListenAddress(address: string): ListenAddress {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(address);
  const port = Number(match?.[3]);
  if (!match || port > 65_535) {
    throw new MetricsServerError('INVALID_LISTEN_ADDRESS', `invalid listen address ${JSON.stringify(address)}: must be HOST:PORT, e.g. :8080 or 127.0.0.1:8080`);
  }
  return { host: match[1] ?? match[2] ?? '', port };
}

/** The routes, without listening (tests use `inject`). */
export function buildMetricsApp({ registry, ready, logger }: MetricsAppOptions): MetricsApp {
  // Per-request lines are off: Prometheus and the kubelet call every few seconds.
  const app = fastify({ loggerInstance: logger ?? pino({ level: 'silent' }), logController: new LogController({ disableRequestLogging: true }) });

  app.get('/metrics', async (_request, reply) => {
    const body = await registry.metrics();
    return reply.header('Content-Type', registry.contentType).send(body);
  });
  app.get('/healthz', async (_request, reply) => reply.type('text/plain; charset=utf-8').send('ok\n'));
  app.get('/readyz', async (_request, reply) => {
    const reason = notReadyReason(ready);
    reply.type('text/plain; charset=utf-8');
    return reason === undefined ? reply.send('ok\n') : reply.code(503).send(`${reason}\n`);
  });
  return app;
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const { host, port } = parseListenAddress(options.address);
  // All interfaces: IPv6 and IPv4 (dual stack) where the host has IPv6, else IPv4 alone.
  const hosts = host === '' ? ['::', '0.0.0.0'] : [host];
  for (const [index, candidate] of hosts.entries()) {
    const app = buildMetricsApp(options);
    try {
      await app.listen({ host: candidate, port });
    } catch (error) {
      await app.close();
      const code = (error as NodeJS.ErrnoException).code;
      const noIPv6 = code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL';
      if (noIPv6 && index < hosts.length - 1) continue;
      const detail = error instanceof Error ? error.message : String(error);
      throw new MetricsServerError('LISTEN_FAILED', `cannot listen on ${options.address}: ${detail}`, { cause: error });
    }
    const bound = app.server.address();
    if (bound === null || typeof bound === 'string') {
      await app.close();
      throw new MetricsServerError('LISTEN_FAILED', `no TCP address bound for ${options.address}`);
    }
    return { url: `http://${urlHost(candidate, bound.family)}:${bound.port}`, port: bound.port, close: () => app.close() };
  }
  throw new MetricsServerError('LISTEN_FAILED', `cannot listen on ${options.address}`);
}

function notReadyReason(ready: ReadinessCheck): string | undefined {
  let answer: boolean | NotReady;
  try {
    answer = ready();
  } catch (error) {
    return `not ready: the readiness check failed: ${error instanceof Error ? error.message : String(error)}`.replace(/\s+/g, ' ');
  }
  if (answer === true) return undefined;
  if (answer === false) return 'not ready';
  return `not ready: ${answer.reason.replace(/\s+/g, ' ').trim()}`;
}

function urlHost(host: string, family: string): string {
  const wildcard = host === '::' || host === '0.0.0.0';
  if (wildcard) return family === 'IPv6' ? '[::1]' : '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}
