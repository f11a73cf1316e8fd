// The callback server faces the internet (issue 12, "The callback server"): a per-client-IP rate
// limit, a connection cap, a header timeout, and rejections logged at debug only, so that a flood
// neither fills the log nor starves the replica (whose probes go to the separate metrics server).
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from '@jest/globals';
import { pino, type Level } from 'pino';
import {
  buildCallbackApp,
  defaultCallbackLimits,
  startCallbackServer,
  type CallbackAppOptions,
  type CallbackHandler,
  type CallbackOutcome,
  type CallbackServer,
} from '../../../src/http/callback-server.ts';
import { createMetrics } from '../../../src/http/metrics.ts';
import { startMetricsServer, type MetricsServer } from '../../../src/http/metrics-server.ts';

const CODE = 'c0de-CANARY-flood-7f3a9b1e5d2c';
const STATE = 'st4te-CANARY-flood-0a1b2c3d4e5f6a7b8c9d';
const callback = `/oauth/callback?code=${CODE}&state=${STATE}`;

/** Counts calls; answers like a valid state (200) unless told to refuse like a forged one (403). */
const countingHandler = (answer: CallbackOutcome = { ok: true, app: { namespace: 'crm', name: 'pipedrive' } }) => {
  const handler: CallbackHandler & { calls: number } = {
    calls: 0,
    complete: async () => {
      handler.calls += 1;
      return answer;
    },
    refused: async () => {
      handler.calls += 1;
      return answer;
    },
  };
  return handler;
};

const memoryLogger = (level: Level) => {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { logger: pino({ level }, destination), lines };
};

const setup = (options: Partial<CallbackAppOptions> = {}, level: Level = 'debug') => {
  const handler = countingHandler();
  const { logger, lines } = memoryLogger(level);
  const app = buildCallbackApp({ handler, logger, ...options });
  const get = (url: string, remoteAddress = '198.51.100.7', headers: Record<string, string> = {}) => app.inject({ method: 'GET', url, remoteAddress, headers });
  return { app, handler, lines, get };
};

describe('callback server: per-client-IP rate limit', () => {
  it('answers the request past the limit with 429, a page and Retry-After, without calling the handler', async () => {
    const { handler, get } = setup({ rateLimit: { max: 3, windowMs: 60_000 } });
    for (let request = 1; request <= 3; request += 1) expect((await get(callback)).statusCode).toBe(200);
    const refused = await get(callback);
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(refused.headers['cache-control']).toBe('no-store');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.body).toContain('<h1>Too many requests</h1>');
    expect(refused.body).not.toContain('CANARY');
    expect(handler.calls).toBe(3);
  });

  it('counts every request of the client, whatever its path or method', async () => {
    const { handler, get, app } = setup({ rateLimit: { max: 2, windowMs: 60_000 } });
    expect((await get('/nope')).statusCode).toBe(404);
    expect((await app.inject({ method: 'POST', url: '/oauth/callback', remoteAddress: '198.51.100.7' })).statusCode).toBe(405);
    expect((await get(callback)).statusCode).toBe(429);
    expect((await get('/nope')).statusCode).toBe(429);
    expect(handler.calls).toBe(0);
  });

  it('limits each client on its own: another address is still served', async () => {
    const { handler, get } = setup({ rateLimit: { max: 2, windowMs: 60_000 } });
    await get(callback);
    await get(callback);
    expect((await get(callback)).statusCode).toBe(429);
    expect((await get(callback, '203.0.113.9')).statusCode).toBe(200);
    // An IPv6 client is its /64: another address in it shares the limit, another /64 does not.
    expect((await get(callback, '2001:db8:1:2::1')).statusCode).toBe(200);
    expect((await get(callback, '2001:db8:1:2::2')).statusCode).toBe(200);
    expect((await get(callback, '2001:db8:1:2::3')).statusCode).toBe(429);
    expect((await get(callback, '2001:db8:1:3::1')).statusCode).toBe(200);
    expect(handler.calls).toBe(6);
  });

  it('serves the client again once its window is over', async () => {
    const { get } = setup({ rateLimit: { max: 1, windowMs: 300 } });
    expect((await get(callback)).statusCode).toBe(200);
    expect((await get(callback)).statusCode).toBe(429);
    // No assertion on how soon: only that it happens (polled for up to 10 s).
    const deadline = Date.now() + 10_000;
    let status = 429;
    while (status === 429 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      status = (await get(callback)).statusCode;
    }
    expect(status).toBe(200);
  });

  it(`allows ${defaultCallbackLimits.rateLimit.max} requests per minute by default`, async () => {
    expect(defaultCallbackLimits.rateLimit).toEqual({ max: 60, windowMs: 60_000 });
    const { handler, get } = setup();
    for (let request = 1; request <= 60; request += 1) expect((await get(callback)).statusCode).toBe(200);
    expect((await get(callback)).statusCode).toBe(429);
    expect(handler.calls).toBe(60);
  });

  it('ignores X-Forwarded-For from peers it does not trust (the default): a flood cannot pose as many clients', async () => {
    const { get } = setup({ rateLimit: { max: 2, windowMs: 60_000 } });
    const statuses = [];
    for (let request = 1; request <= 4; request += 1) statuses.push((await get(callback, '198.51.100.7', { 'x-forwarded-for': `203.0.113.${request}` })).statusCode);
    expect(statuses).toEqual([200, 200, 429, 429]);
  });

  it('limits the client named by X-Forwarded-For when the peer is a trusted proxy', async () => {
    const { get } = setup({ rateLimit: { max: 2, windowMs: 60_000 }, trustedProxies: ['10.0.0.0/8'] });
    const viaIngress = (client: string) => get(callback, '10.1.2.3', { 'x-forwarded-for': client }).then((response) => response.statusCode);
    expect([await viaIngress('203.0.113.1'), await viaIngress('203.0.113.1'), await viaIngress('203.0.113.1')]).toEqual([200, 200, 429]);
    expect(await viaIngress('203.0.113.2')).toBe(200);
    // Not from the trusted range: its X-Forwarded-For is ignored.
    expect([await get(callback, '198.51.100.8', { 'x-forwarded-for': '203.0.113.3' }), await get(callback, '198.51.100.8', { 'x-forwarded-for': '203.0.113.4' }), await get(callback, '198.51.100.8', { 'x-forwarded-for': '203.0.113.5' })].map((response) => response.statusCode)).toEqual([200, 200, 429]);
  });
});

describe('callback server: rejections are logged at debug only', () => {
  const flood = async (level: Level) => {
    const handler = countingHandler({ ok: false, status: 403, reason: 'state_invalid', message: 'This authorization link was not issued by this operator.' });
    const { logger, lines } = memoryLogger(level);
    // Seven of the eight requests below count: broken percent-encoding in the path is refused by
    // the router, before any hook runs.
    const app = buildCallbackApp({ handler, logger, rateLimit: { max: 7, windowMs: 60_000 }, maxQueryLength: 200 });
    const statuses: number[] = [];
    const send = async (method: 'GET' | 'POST', url: string) => statuses.push((await app.inject({ method, url, remoteAddress: '198.51.100.7' })).statusCode);
    await send('GET', '/');
    await send('POST', callback);
    await send('GET', '/oauth/%zz');
    await send('GET', '/oauth/callback');
    await send('GET', `/oauth/callback?code=${CODE}`);
    await send('GET', `${callback}&pad=${'x'.repeat(300)}`);
    await send('GET', callback); // a forged state: the handler answers 403
    await send('GET', `/oauth/callback?error=access_denied&state=${STATE}`);
    for (let request = 0; request < 20; request += 1) await send('GET', callback);
    return { statuses, lines };
  };

  it('writes nothing at info level for a flood of 404, 405, 400, 414, 403 and 429 answers', async () => {
    const { statuses, lines } = await flood('info');
    expect(statuses.slice(0, 8)).toEqual([404, 405, 400, 400, 400, 414, 403, 403]);
    expect(new Set(statuses.slice(8))).toEqual(new Set([429]));
    expect(lines).toEqual([]);
  });

  it('writes one debug line per rejection, naming its status and reason but never the code or state', async () => {
    const { statuses, lines } = await flood('debug');
    const logged = lines.map((line) => JSON.parse(line) as { level: number; status: number; reason: string });
    expect(logged.map((line) => line.level)).toEqual(statuses.map(() => 20));
    expect(logged.map((line) => line.status)).toEqual(statuses);
    expect(logged.at(-1)?.reason).toBe('rate_limited');
    expect(lines.join('')).not.toContain('CANARY');
  });
});

// ---- over real connections -------------------------------------------------------------------

/** A connection that has sent part of a request and waits; resolves what the server sent once it closes. */
interface HeldConnection {
  socket: Socket;
  received: () => string;
  closed: Promise<string>;
}

const open = (server: CallbackServer, first: string): Promise<HeldConnection> =>
  new Promise((resolve, reject) => {
    const socket = connect(server.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const received = () => Buffer.concat(chunks).toString('utf8');
    const closed = new Promise<string>((done) => {
      socket.on('close', () => done(received()));
      socket.on('error', () => undefined);
    });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.write(first);
      resolve({ socket, received, closed });
    });
  });

describe('callback server: connections', () => {
  let callbacks: CallbackServer | undefined;
  let metrics: MetricsServer | undefined;
  const held: HeldConnection[] = [];
  afterEach(async () => {
    for (const connection of held.splice(0)) connection.socket.destroy();
    await callbacks?.close();
    await metrics?.close();
    callbacks = metrics = undefined;
  });

  it(`caps open connections (${defaultCallbackLimits.maxConnections} by default): one more is closed unanswered until one ends`, async () => {
    expect(defaultCallbackLimits.maxConnections).toBe(256);
    const handler = countingHandler();
    callbacks = await startCallbackServer({ handler, address: '127.0.0.1:0', maxConnections: 2, headersTimeoutMs: 60_000 });
    // Two clients that started a request and never finish its headers.
    for (let index = 0; index < 2; index += 1) held.push(await open(callbacks, 'GET /oauth/callback HTTP/1.1\r\nHost: x\r\n'));
    await new Promise((resolve) => setTimeout(resolve, 100));

    const third = await open(callbacks, `GET ${callback} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(await third.closed).toBe('');
    expect(handler.calls).toBe(0);

    // The kubelet's probes go to the metrics server, another listener: a full callback server
    // does not fail them.
    metrics = await startMetricsServer({ address: '127.0.0.1:0', registry: createMetrics({ processMetrics: false }).registry, ready: () => true });
    expect((await fetch(`${metrics.url}/healthz`)).status).toBe(200);

    held.shift()?.socket.destroy();
    const deadline = Date.now() + 10_000;
    let answer = '';
    while (!answer.startsWith('HTTP/1.1 200') && Date.now() < deadline) {
      const next = await open(callbacks, `GET ${callback} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      answer = await next.closed;
    }
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(handler.calls).toBe(1);
  });

  it('cuts off a client that sends its headers slowly with 408, about 10 s after it started', async () => {
    expect(defaultCallbackLimits.headersTimeoutMs).toBe(10_000);
    const handler = countingHandler();
    callbacks = await startCallbackServer({ handler, address: '127.0.0.1:0' });
    const started = Date.now();
    const slow = await open(callbacks, `GET ${callback} HTTP/1.1\r\nHost: x\r\n`);
    held.push(slow);
    // One header byte every 250 ms: never idle, never done (slowloris). Stops by itself after 40 s.
    const trickle = setInterval(() => {
      if (!slow.socket.destroyed && Date.now() - started < 40_000) slow.socket.write('X-Slow: a\r\n');
    }, 250);
    try {
      const answer = await Promise.race([slow.closed, new Promise<string>((resolve) => setTimeout(() => resolve('(still open after 45 s)'), 45_000).unref())]);
      const elapsed = Date.now() - started;
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(answer).toContain('<h1>Request timeout</h1>');
      expect(answer).not.toContain('CANARY');
      // Generous bounds: the timeout is 10 s, Node checks every second, and the machine is shared.
      expect(elapsed).toBeGreaterThanOrEqual(9_000);
      expect(elapsed).toBeLessThan(25_000);
      expect(handler.calls).toBe(0);
    } finally {
      clearInterval(trickle);
    }
    // Meanwhile a browser's request is answered at once.
    expect((await fetch(`${callbacks.url}${callback}`)).status).toBe(200);
  }, 60_000);
});
