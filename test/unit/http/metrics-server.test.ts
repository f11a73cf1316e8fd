// The operations endpoint: /metrics for Prometheus, /healthz and /readyz for the kubelet.
import { afterEach, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createMetrics } from '../../../src/http/metrics.ts';
import { ListenError, parseListenAddress } from '../../../src/http/listen.ts';
import {
  buildMetricsApp,
  startMetricsServer,
  type MetricsServer,
  type NotReady,
} from '../../../src/http/metrics-server.ts';

const registry = () => createMetrics({ processMetrics: false }).registry;

describe('the routes', () => {
  it('GET /metrics answers the registry in the Prometheus text format', async () => {
    const metrics = createMetrics({ processMetrics: false });
    metrics.observeApp({ namespace: 'sales', name: 'crm-sync' }, { conditions: [{ type: 'Ready', status: 'True', reason: 'TokenValid' }] });
    const app = buildMetricsApp({ registry: metrics.registry, ready: () => true });
    const response = await app.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(response.body).toContain('# TYPE oauthapp_ready gauge');
    expect(response.body).toContain('oauthapp_ready{namespace="sales",name="crm-sync"} 1');
  });

  it('GET /healthz answers 200 whatever readiness says', async () => {
    const app = buildMetricsApp({ registry: registry(), ready: () => false });
    const response = await app.inject({ method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    expect(response.body).toBe('ok\n');
  });

  it('GET /readyz follows ready(): 503 with a one-line reason until it returns true, then 200', async () => {
    let readiness: boolean | NotReady = false;
    const app = buildMetricsApp({ registry: registry(), ready: () => readiness });
    const readyz = () => app.inject({ method: 'GET', url: '/readyz' });

    let response = await readyz();
    expect(response.statusCode).toBe(503);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    expect(response.body).toBe('not ready\n');

    readiness = { reason: 'caches not synced:\n  oauthapps,\n  source-secrets' };
    response = await readyz();
    expect(response.statusCode).toBe(503);
    expect(response.body).toBe('not ready: caches not synced: oauthapps, source-secrets\n');

    readiness = true;
    response = await readyz();
    expect(response.statusCode).toBe(200);
    expect(response.body).toBe('ok\n');

    readiness = false;
    expect((await readyz()).statusCode).toBe(503);
  });

  it('GET /readyz answers 503 when the check itself throws', async () => {
    const app = buildMetricsApp({
      registry: registry(),
      ready: () => {
        throw new Error('informer\nexploded');
      },
    });
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(503);
    expect(response.body).toBe('not ready: the readiness check failed: informer exploded\n');
  });

  it('answers 404 for unknown paths and for methods other than GET and HEAD', async () => {
    const app = buildMetricsApp({ registry: registry(), ready: () => true });
    expect((await app.inject({ method: 'GET', url: '/' })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/metricsx' })).statusCode).toBe(404);
    expect((await app.inject({ method: 'POST', url: '/metrics' })).statusCode).toBe(404);
    expect((await app.inject({ method: 'HEAD', url: '/healthz' })).statusCode).toBe(200);
  });

  it('writes no log line per request when given a logger', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(chunk.toString());
        callback();
      },
    });
    const app = buildMetricsApp({ registry: registry(), ready: () => true, logger: pino({ level: 'trace' }, destination) });
    await app.inject({ method: 'GET', url: '/metrics' });
    await app.inject({ method: 'GET', url: '/readyz' });
    await app.inject({ method: 'GET', url: '/nope' });
    expect(lines.filter((line) => line.includes('"reqId"'))).toEqual([]);
  });
});

describe('parseListenAddress', () => {
  it.each([
    [':8080', { host: '', port: 8080 }],
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['localhost:9090', { host: 'localhost', port: 9090 }],
    ['[::1]:8080', { host: '::1', port: 8080 }],
    ['[::]:65535', { host: '::', port: 65535 }],
  ])('%s', (address, expected) => {
    expect(parseListenAddress(address)).toEqual(expected);
  });

  it.each(['8080', '', ':', 'host:', ':65536', '::1:8080', 'a b:80', ':80x'])('refuses %j with a typed error', (address) => {
    expect(() => parseListenAddress(address)).toThrow(expect.objectContaining({ name: 'ListenError', code: 'INVALID_LISTEN_ADDRESS' }));
  });
});

describe('startMetricsServer', () => {
  let server: MetricsServer | undefined;

  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('listens on a loopback port, reports the bound port, and serves over real HTTP', async () => {
    let ready = false;
    server = await startMetricsServer({ address: '127.0.0.1:0', registry: registry(), ready: () => ready });
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);

    const metrics = await fetch(`${server.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('workqueue_depth{name="oauthapp"} 0');
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
    ready = true;
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${server.url}/nothing-here`)).status).toBe(404);
  });

  it('listens on all interfaces when HOST is empty, and gives a loopback URL', async () => {
    server = await startMetricsServer({ address: ':0', registry: registry(), ready: () => true });
    expect(server.url).toMatch(/^http:\/\/(\[::1\]|127\.0\.0\.1):\d+$/);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    // Reachable over IPv4 too (dual stack, or IPv4 alone).
    expect((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status).toBe(200);
  });

  it('stops answering once closed', async () => {
    const started = await startMetricsServer({ address: '127.0.0.1:0', registry: registry(), ready: () => true });
    expect((await fetch(`${started.url}/healthz`)).status).toBe(200);
    await started.close();
    await expect(fetch(`${started.url}/healthz`)).rejects.toThrow();
  });

  it('fails with a typed error naming the address when the port is taken', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const address = blocker.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    try {
      const attempt = startMetricsServer({ address: `127.0.0.1:${address.port}`, registry: registry(), ready: () => true });
      await expect(attempt).rejects.toBeInstanceOf(ListenError);
      await expect(attempt).rejects.toMatchObject({ code: 'LISTEN_FAILED', message: expect.stringContaining(`127.0.0.1:${address.port}`) });
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('refuses a malformed address before listening', async () => {
    await expect(startMetricsServer({ address: 'localhost', registry: registry(), ready: () => true })).rejects.toMatchObject({
      code: 'INVALID_LISTEN_ADDRESS',
    });
  });
});
