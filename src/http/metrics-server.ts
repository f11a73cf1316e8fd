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
import { listen, type ListeningServer } from './listen.ts';

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

export type MetricsServer = ListeningServer;

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

export function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  return listen(options.address, () => buildMetricsApp(options));
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

