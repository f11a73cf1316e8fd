// A fault-injecting proxy between an operator and a real kube-apiserver. The operator's side is
// TLS with HTTP/2 (HTTP/1.1 through ALPN too) and a CA of the proxy's own, in a kubeconfig the
// proxy writes; upstream the proxy connects with the admin credentials of the upstream kubeconfig
// over one HTTP/2 connection and forwards each request (its Authorization header too). Answers and
// watch events are relayed chunk by chunk, unless a fault says otherwise. Faults, matching and the
// seeded schedule: apiserver-proxy-faults.ts; streams and connections: apiserver-proxy-relay.ts.
// (Whoever connects acts upstream as the upstream kubeconfig's user: a test tool, not a gateway.)
//
//   const proxy = await startAPIServerProxy({ upstreamKubeconfig: cluster.controlPlane.adminKubeconfigPath });
//   const lost = proxy.inject({ kind: 'dropResponse' }, { match: { method: 'PUT', path: `/api/v1/namespaces/${ns}/secrets/oauthapp-state-*` } });
//   … run the operator with --kubeconfig=proxy.kubeconfigPath …
//   await lost.applied;   // the PUT committed, the operator saw its stream reset
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { constants, createSecureServer, type OutgoingHttpHeaders } from 'node:http2';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { parse, stringify } from 'yaml';
import { loadKubeConfigFile } from '../../src/kube/kubeconfig.ts';
import { generateCertificates } from '../../src/localcluster/certificates.ts';
import {
  ChaosSchedule,
  FaultRules,
  faultKind,
  matches,
  statusBody,
  type ChaosOptions,
  type Fault,
  type FaultKind,
  type Injection,
  type ProxiedRequest,
  type RequestMatch,
} from './apiserver-proxy-faults.ts';
import { ClientAnswer, resetClient, Upstream, WatchRelay, withoutHopByHop, type ClientRequest } from './apiserver-proxy-relay.ts';

export type { ChaosDecision, ChaosOptions, ChaosRates, ChaosSchedule, Fault, FaultKind, Injection, ProxiedRequest, RequestMatch } from './apiserver-proxy-faults.ts';

export interface ProxyStats {
  /** Requests received from clients. */
  requests: number;
  /** Requests sent on to the apiserver. */
  forwarded: number;
  /** Requests received by the protocol the client negotiated (ALPN). */
  protocols: { http2: number; http1: number };
  faults: Record<FaultKind, number>;
  /** Writes forwarded whose answer the client never got; `committed`: the apiserver said 2xx. */
  droppedWriteResponses: Array<{ method: string; path: string; status: number; committed: boolean }>;
  /** Connections refused while refusing. */
  refusedConnections: number;
}

export interface APIServerProxy {
  /** https://127.0.0.1:<port> */
  readonly serverURL: string;
  /** A kubeconfig for the proxy: its CA, the upstream kubeconfig's user. */
  readonly kubeconfigPath: string;
  readonly caPEM: string;
  /** Applies `fault` to the next `times` (default 1; Infinity: until cancelled) requests that match. */
  inject(fault: Fault, options?: { match?: RequestMatch; times?: number }): Injection;
  /** Resets every client connection now; returns how many there were. */
  resetConnections(): number;
  /** Holds the events of open and new watches that match, for `ms` or until releaseWatches(). */
  stallWatches(options?: { match?: RequestMatch; ms?: number }): void;
  /** Delivers every held watch event, in order, and stops stalling. */
  releaseWatches(): void;
  /** Refuses (TCP reset) new connections for `ms`, or until acceptConnections(). Open ones stay. */
  refuseConnections(ms?: number): void;
  acceptConnections(): void;
  /** Starts a seeded random fault schedule (replacing any other); its decisions are logged on it. */
  chaos(options: ChaosOptions): ChaosSchedule;
  /** Stops the schedule and injected faults, releases watches, accepts connections again. */
  calm(): void;
  /** A copy of the counters. */
  readonly stats: ProxyStats;
  /** Watch streams open now, how many are stalled, and the events (lines) they hold. */
  readonly watches: { open: number; stalled: number; heldEvents: number };
  close(): Promise<void>;
}

const writeMethods = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export async function startAPIServerProxy(options: { upstreamKubeconfig: string }): Promise<APIServerProxy> {
  const upstreamConfig = loadKubeConfigFile(options.upstreamKubeconfig);
  const upstreamURL = upstreamConfig.server;
  const upstreamTLS = upstreamConfig.tls;

  const workDir = await mkdtemp(join(tmpdir(), 'apiserver-proxy-'));
  const pki = await generateCertificates(join(workDir, 'pki'));
  const [cert, key] = await Promise.all([readFile(pki.files.servingCert), readFile(pki.files.servingKey)]);

  const rules = new FaultRules();
  let schedule: ChaosSchedule | undefined;
  let seq = 0;
  let refusingUntil = 0;
  let watchStall: { match: RequestMatch | undefined; until: number } | undefined;
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, action: () => void) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      action();
    }, ms);
    timers.add(timer);
  };
  // Client connections: TCP sockets as accepted, TLS sockets once the handshake is done.
  const tcpSockets = new Set<Socket>();
  const tlsSockets = new Set<TLSSocket>();
  const watches = new Set<WatchRelay>();
  const stats: ProxyStats = {
    requests: 0,
    forwarded: 0,
    protocols: { http2: 0, http1: 0 },
    faults: { dropResponse: 0, delayResponse: 0, reset: 0, refuse: 0, stallWatches: 0, status429: 0, status500: 0, status503: 0 },
    droppedWriteResponses: [],
    refusedConnections: 0,
  };

  const upstream = new Upstream(upstreamURL, { ca: upstreamTLS.ca, cert: upstreamTLS.cert, key: upstreamTLS.key });

  const tlsServer = createSecureServer({ allowHTTP1: true, cert, key }, (req, res) => {
    const answer = new ClientAnswer(res);
    void handle(req, answer).catch(() => resetClient(req, 'stream'));
  });
  tlsServer.on('secureConnection', (socket: TLSSocket) => {
    tlsSockets.add(socket);
    socket.on('close', () => tlsSockets.delete(socket));
  });
  tlsServer.on('sessionError', () => undefined);
  // Connections are accepted here first, so refusing is a plain TCP reset before any TLS.
  const tcpServer = createServer((socket) => {
    socket.on('error', () => undefined);
    if (Date.now() < refusingUntil) {
      stats.refusedConnections += 1;
      socket.resetAndDestroy();
      return;
    }
    tcpSockets.add(socket);
    socket.on('close', () => tcpSockets.delete(socket));
    tlsServer.emit('connection', socket);
  });
  await new Promise<void>((resolve) => tcpServer.listen(0, '127.0.0.1', resolve));
  const address = tcpServer.address();
  if (address === null || typeof address === 'string') throw new Error('the proxy has no TCP address');
  const serverURL = `https://127.0.0.1:${address.port}`;

  const kubeconfigPath = join(workDir, 'proxy.kubeconfig');
  await writeFile(kubeconfigPath, proxyKubeconfig(await readFile(options.upstreamKubeconfig, 'utf8'), serverURL, pki.caCert), { mode: 0o600 });

  async function handle(req: ClientRequest, answer: ClientAnswer): Promise<void> {
    req.on('error', () => undefined);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', 'https://proxy.invalid');
    const method = req.method ?? 'GET';
    const write = writeMethods.has(method);
    const watchParam = url.searchParams.get('watch');
    const request: ProxiedRequest = {
      seq: ++seq,
      method,
      path: url.pathname,
      query: url.searchParams,
      body: write ? body.toString('utf8') : undefined,
      write,
      watch: watchParam === 'true' || watchParam === '1' || url.pathname.includes('/watch/'),
    };
    stats.requests += 1;
    stats.protocols['stream' in req ? 'http2' : 'http1'] += 1;
    const ruled = rules.take(request);
    const fault = ruled?.fault ?? schedule?.decide(request);
    const done = ruled?.done ?? (() => undefined);
    if (fault) stats.faults[faultKind(fault)] += 1;
    switch (fault?.kind) {
      case 'status':
        answer.head(fault.status, {
          'content-type': 'application/json',
          ...(fault.retryAfterSeconds === undefined ? {} : { 'retry-after': String(fault.retryAfterSeconds) }),
        });
        answer.end(statusBody(fault.status, fault.retryAfterSeconds));
        return done();
      case 'refuse':
        refusingUntil = Math.max(refusingUntil, Date.now() + fault.ms);
        resetClient(req, 'connection');
        return done();
      case 'reset':
        resetClient(req, 'connection');
        return done();
      case 'stallWatches':
        stallWatches({ ms: fault.ms });
        forward(req, answer, request, body, undefined);
        return done();
      default:
        forward(req, answer, request, body, fault && { fault, done });
    }
  }

  /** Relays one request upstream and its answer back; a drop or delay holds the whole answer. */
  function forward(req: ClientRequest, answer: ClientAnswer, request: ProxiedRequest, body: Buffer, hold: { fault: Fault; done: () => void } | undefined) {
    if (answer.closed) return;
    const up = upstream.request(
      { ...withoutHopByHop(req.headers), [constants.HTTP2_HEADER_METHOD]: request.method, [constants.HTTP2_HEADER_PATH]: req.url ?? '/' },
      body,
    );
    stats.forwarded += 1;
    const relay = request.watch ? new WatchRelay(answer, request) : undefined;
    let status = 0;
    let responseHeaders: OutgoingHttpHeaders = {};
    const held: Buffer[] = [];
    let ended = false;
    // node emits 'response' on the next tick but 'data' at once when the headers and the first
    // chunk arrive in one read: body events wait for the status, or a chunk would go out first
    // (an implicit 200 without headers) and the status line would then throw.
    let responded = false;
    const early: Array<() => void> = [];
    const afterResponse = (handle: () => void) => (responded ? handle() : early.push(handle));
    up.on('response', (upstreamHeaders) => {
      status = Number(upstreamHeaders[constants.HTTP2_HEADER_STATUS]);
      responseHeaders = withoutHopByHop(upstreamHeaders);
      if (!hold) answer.head(status, responseHeaders);
      responded = true;
      for (const handle of early.splice(0)) handle();
    });
    up.on('data', (chunk: Buffer) =>
      afterResponse(() => {
        if (hold) held.push(chunk);
        else if (relay) relay.deliver(chunk);
        else answer.write(chunk);
      }),
    );
    up.on('end', () => {
      ended = true;
      afterResponse(() => finish());
    });
    const finish = () => {
      if (!hold) return relay ? relay.finish() : answer.end();
      if (hold.fault.kind === 'dropResponse') {
        if (request.write) stats.droppedWriteResponses.push({ method: request.method, path: request.path, status, committed: status >= 200 && status < 300 });
        resetClient(req, hold.fault.scope ?? 'stream');
        return hold.done();
      }
      later(hold.fault.kind === 'delayResponse' ? hold.fault.ms : 0, () => {
        answer.head(status, responseHeaders);
        answer.end(Buffer.concat(held));
        hold.done();
      });
    };
    up.on('close', () => {
      if (!ended) resetClient(req, 'stream');
    });
    answer.onClose(() => {
      if (relay) watches.delete(relay);
      if (!up.closed) up.close(constants.NGHTTP2_CANCEL);
    });
    if (relay) {
      watches.add(relay);
      if (watchStall && Date.now() < watchStall.until && matches(watchStall.match, request)) {
        relay.stall();
        if (watchStall.until !== Infinity) later(watchStall.until - Date.now(), () => relay.release());
      }
    }
  }

  function stallWatches({ match, ms }: { match?: RequestMatch; ms?: number } = {}) {
    watchStall = { match, until: ms === undefined ? Infinity : Date.now() + ms };
    for (const relay of watches) {
      if (!matches(match, relay.request)) continue;
      relay.stall();
      if (ms !== undefined) later(ms, () => relay.release());
    }
  }

  function releaseWatches() {
    watchStall = undefined;
    for (const relay of watches) relay.release();
  }

  function resetConnections() {
    const count = tlsSockets.size;
    for (const socket of [...tlsSockets, ...tcpSockets]) socket.destroy();
    return count;
  }

  return {
    serverURL,
    kubeconfigPath,
    caPEM: pki.caCert,
    inject: (fault, { match, times = 1 } = {}) => rules.add(fault, match, times),
    resetConnections() {
      stats.faults.reset += 1;
      return resetConnections();
    },
    stallWatches(stall) {
      stats.faults.stallWatches += 1;
      stallWatches(stall);
    },
    releaseWatches,
    refuseConnections(ms) {
      stats.faults.refuse += 1;
      refusingUntil = ms === undefined ? Infinity : Date.now() + ms;
    },
    acceptConnections: () => void (refusingUntil = 0),
    chaos(chaosOptions) {
      schedule = new ChaosSchedule(chaosOptions);
      return schedule;
    },
    calm() {
      schedule = undefined;
      rules.clear();
      refusingUntil = 0;
      releaseWatches();
    },
    get stats() {
      return structuredClone(stats);
    },
    get watches() {
      const relays = [...watches];
      return {
        open: relays.length,
        stalled: relays.filter((relay) => relay.stalled).length,
        heldEvents: relays.reduce((sum, relay) => sum + relay.heldEvents, 0),
      };
    },
    async close() {
      schedule = undefined;
      rules.clear();
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise<void>((resolve) => tcpServer.close(() => resolve()));
      resetConnections();
      upstream.close();
      await closed;
      await rm(workDir, { recursive: true, force: true });
    },
  };
}

/** The upstream kubeconfig with its current context's cluster replaced by the proxy (same user). */
function proxyKubeconfig(upstreamYAML: string, serverURL: string, caPEM: string): string {
  type Named<K extends string> = { name: string } & Record<K, Record<string, unknown>>;
  const upstream = parse(upstreamYAML) as { 'current-context'?: string; contexts?: Array<Named<'context'>>; users?: Array<Named<'user'>> };
  const context = upstream.contexts?.find((entry) => entry.name === upstream['current-context'])?.context;
  const user = upstream.users?.find((entry) => entry.name === context?.user);
  if (!context || !user) throw new Error('the upstream kubeconfig has no current context or user');
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'apiserver-proxy', cluster: { server: serverURL, 'certificate-authority-data': Buffer.from(caPEM).toString('base64') } }],
    users: [user],
    contexts: [{ name: 'apiserver-proxy', context: { ...context, cluster: 'apiserver-proxy', user: user.name } }],
    'current-context': 'apiserver-proxy',
  });
}
