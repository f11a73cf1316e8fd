// The fault-injecting apiserver proxy (test/support/apiserver-proxy.ts) against the run's real
// kube-apiserver, with the operator's own HTTP client (KubeHTTP: undici, HTTP/2, TLS) configured
// from the kubeconfig the proxy writes. Each fault is shown to happen as specified: what the
// client sees, and what the apiserver really did (read directly, not through the proxy).
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { loadKubeConfigFile } from '../../src/kube/kubeconfig.ts';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { KubeClient, secretPath } from '../../src/kube/client.ts';
import { KubeAPIError } from '../../src/kube/errors.ts';
import { KubeHTTP } from '../../src/kube/http.ts';
import type { Secret } from '../../src/kube/objects.ts';
import { startAPIServerProxy, type APIServerProxy, type ChaosOptions, type FaultKind } from '../support/apiserver-proxy.ts';
import { eventually } from '../support/eventually.ts';
import { adminClient, type AdminClient } from '../support/kube.ts';
import { createTestNamespace, deleteTestNamespace } from '../support/namespaces.ts';
import { requiredEnvironment } from '../support/environment.ts';
import { kubectlOK } from '../support/kubectl.ts';

let namespace: string;
let proxy: APIServerProxy;
let client: KubeHTTP;
let kube: KubeClient;
let direct: AdminClient;

beforeAll(async () => {
  namespace = await createTestNamespace('apiserver-proxy');
  proxy = await startAPIServerProxy({ upstreamKubeconfig: requiredEnvironment('kubeconfig') });
  const config = loadKubeConfigFile(proxy.kubeconfigPath);
  client = await KubeHTTP.fromKubeConfig(config);
  kube = new KubeClient(client);
  direct = await adminClient();
});

afterEach(() => proxy.calm());

afterAll(async () => {
  await client?.close();
  await direct?.close();
  await proxy?.close();
  if (namespace) await deleteTestNamespace(namespace);
});

const opaque = (name: string, data: Record<string, string>): Secret => ({
  metadata: { name, namespace },
  type: 'Opaque',
  data: Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString('base64')])),
});

/** What a request through the proxy ended in: 'ok', or the KubeAPIError status (0: network error). */
async function outcome(request: Promise<unknown>): Promise<'ok' | number> {
  try {
    await request;
    return 'ok';
  } catch (error) {
    if (error instanceof KubeAPIError) return error.status;
    throw error;
  }
}

const getNamespace = () => client.json<{ metadata: { name: string } }>({ method: 'GET', path: `/api/v1/namespaces/${namespace}` });

/** A GET over HTTP/1.1 (ALPN), trusting only the proxy's CA. */
function http1Get(path: string): Promise<{ status: number; headers: Record<string, unknown>; alpn: string | false | null; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(`${proxy.serverURL}${path}`, { ca: proxy.caPEM, ALPNProtocols: ['http/1.1'], agent: false } as RequestOptions & { ALPNProtocols: string[] }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        const socket = response.socket as TLSSocket;
        resolve({ status: response.statusCode ?? 0, headers: response.headers, alpn: socket.alpnProtocol, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    request.on('error', reject);
    request.end();
  });
}

describe('relaying', () => {
  it('forwards a plain GET over HTTP/2 and answers with what the apiserver said', async () => {
    const before = proxy.stats;
    await expect(getNamespace()).resolves.toMatchObject({ metadata: { name: namespace } });
    const after = proxy.stats;
    expect(after.forwarded).toBe(before.forwarded + 1);
    expect(after.protocols.http2).toBe(before.protocols.http2 + 1);
  });

  it('hands out a kubeconfig that kubectl accepts', async () => {
    expect(await kubectlOK(['get', 'namespace', namespace, '-o', 'name'], { kubeconfig: proxy.kubeconfigPath })).toBe(`namespace/${namespace}\n`);
  });

  it('accepts HTTP/1.1 clients through ALPN and authenticates upstream itself', async () => {
    const answer = await http1Get(`/api/v1/namespaces/${namespace}`);
    expect({ status: answer.status, alpn: answer.alpn }).toEqual({ status: 200, alpn: 'http/1.1' });
    expect(JSON.parse(answer.body)).toMatchObject({ metadata: { name: namespace } });
  });
});

describe('lost and late answers', () => {
  it('drops the answer of a matching PUT after the apiserver committed it: the client sees a network error', async () => {
    const created = await direct.kube.createSecret(namespace, opaque('oauthapp-state-drop', { v: '1' }));
    const lost = proxy.inject({ kind: 'dropResponse' }, { match: { method: 'PUT', path: `/api/v1/namespaces/${namespace}/secrets/oauthapp-state-*` } });

    const error = await kube.replaceSecret(namespace, { ...opaque('oauthapp-state-drop', { v: '2' }), metadata: created.metadata }).catch((caught: unknown) => caught);
    await lost.applied;

    expect(error).toBeInstanceOf(KubeAPIError);
    expect((error as KubeAPIError).reason).toBe('NetworkError');
    const live = await direct.kube.getSecret(namespace, 'oauthapp-state-drop');
    expect(BigInt(live?.metadata.resourceVersion ?? '0')).toBeGreaterThan(BigInt(created.metadata.resourceVersion ?? '0'));
    expect(await direct.secretData(namespace, 'oauthapp-state-drop')).toEqual({ v: '2' });
    expect(proxy.stats.droppedWriteResponses).toContainEqual({ method: 'PUT', path: secretPath(namespace, 'oauthapp-state-drop'), status: 200, committed: true });
    // Only that stream was reset: the connection (and the next request) is fine.
    await expect(getNamespace()).resolves.toMatchObject({ metadata: { name: namespace } });
  });

  it('matches counted faults only: a PUT to another Secret and a GET of the state Secret pass', async () => {
    await direct.kube.createSecret(namespace, opaque('oauthapp-state-other', { v: '1' }));
    const other = await direct.kube.createSecret(namespace, opaque('unrelated', { v: '1' }));
    const lost = proxy.inject({ kind: 'dropResponse' }, { match: { method: 'PUT', path: `/api/v1/namespaces/${namespace}/secrets/oauthapp-state-*` } });
    await expect(kube.replaceSecret(namespace, { ...opaque('unrelated', { v: '2' }), metadata: other.metadata })).resolves.toBeDefined();
    await expect(kube.getSecret(namespace, 'oauthapp-state-other')).resolves.toBeDefined();
    expect(lost.hits).toBe(0);
    lost.cancel();
  });

  it('delays an answer: the write is visible upstream while the client still waits for it', async () => {
    const created = await direct.kube.createSecret(namespace, opaque('delayed', { v: '1' }));
    const late = proxy.inject({ kind: 'delayResponse', ms: 5_000 }, { match: { method: 'PUT' } });
    let answered = false;
    const answer = kube.replaceSecret(namespace, { ...opaque('delayed', { v: '2' }), metadata: created.metadata }).finally(() => (answered = true));

    const seenUpstream = await eventually('the PUT committed upstream', async () => {
      const live = await direct.kube.getSecret(namespace, 'delayed');
      return live?.metadata.resourceVersion !== created.metadata.resourceVersion ? live : undefined;
    });
    expect(answered).toBe(false);
    const written = await answer;
    await late.applied;
    expect(written.metadata.resourceVersion).toBe(seenUpstream.metadata.resourceVersion);
  });

  it('drops an answer with its whole connection when asked: other streams on it fail too', async () => {
    const created = await direct.kube.createSecret(namespace, opaque('oauthapp-state-conn', { v: '1' }));
    const watch = await client.stream({ method: 'GET', path: secretPath(namespace), query: { watch: true } });
    const watchEnded = (async () => {
      for await (const _ of watch.body ?? []) void _;
    })().then(() => 'ended', () => 'failed');
    const lost = proxy.inject({ kind: 'dropResponse', scope: 'connection' }, { match: { method: 'PUT' } });

    expect(await outcome(kube.replaceSecret(namespace, { ...opaque('oauthapp-state-conn', { v: '2' }), metadata: created.metadata }))).toBe(0);
    await lost.applied;
    // The watch on the same connection stops (it would otherwise run for minutes): with a reset
    // stream or, when undici reads the connection's close as the end of the body, a plain end.
    expect(['failed', 'ended']).toContain(await watchEnded);
    expect(await direct.secretData(namespace, 'oauthapp-state-conn')).toEqual({ v: '2' });
  });
});

describe('connections', () => {
  it('resets the connection of the next matching request without forwarding it; the client reconnects', async () => {
    const watch = await client.stream({ method: 'GET', path: secretPath(namespace), query: { watch: true } });
    const watchEnded = (async () => {
      for await (const _ of watch.body ?? []) void _;
    })().then(() => 'ended', () => 'failed');
    const reset = proxy.inject({ kind: 'reset' }, { match: { method: 'GET', path: `/api/v1/namespaces/${namespace}` } });
    const before = proxy.stats.forwarded;

    expect(await outcome(getNamespace())).toBe(0);
    await reset.applied;
    expect(proxy.stats.forwarded).toBe(before);
    // Everything on that connection went with it, the open watch too.
    expect(await watchEnded).toBe('failed');
    await expect(getNamespace()).resolves.toMatchObject({ metadata: { name: namespace } });
  });

  it('refuses new connections until told otherwise, or for a while; then the client recovers', async () => {
    await getNamespace();
    expect(proxy.resetConnections()).toBeGreaterThan(0);
    proxy.refuseConnections();
    const refusedBefore = proxy.stats.refusedConnections;

    // The client may first notice the reset connection; then it connects anew and is refused.
    const seen: Array<'ok' | number> = [];
    await eventually('a connection refused', async () => {
      seen.push(await outcome(getNamespace()));
      return proxy.stats.refusedConnections > refusedBefore || undefined;
    });
    expect(new Set(seen)).toEqual(new Set([0]));

    proxy.refuseConnections(300);
    await eventually('a request through the proxy succeeding again', async () => (await outcome(getNamespace())) === 'ok' || undefined);
  });
});

describe('stalled watches', () => {
  it('holds watch events while stalled and delivers them late, all of them, in order, on release', async () => {
    const list = await client.json<{ metadata: { resourceVersion: string } }>({ method: 'GET', path: secretPath(namespace) });
    proxy.stallWatches({ match: { path: secretPath(namespace), watch: true } });
    const abort = new AbortController();
    const response = await client.stream({
      method: 'GET',
      path: secretPath(namespace),
      query: { watch: true, resourceVersion: list.metadata.resourceVersion, allowWatchBookmarks: false },
      signal: abort.signal,
    });
    const received: Array<{ type: string; object: Secret }> = [];
    const reading = (async () => {
      let buffered = '';
      for await (const chunk of response.body?.pipeThrough(new TextDecoderStream()) ?? []) {
        buffered += chunk;
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) if (line.trim()) received.push(JSON.parse(line) as { type: string; object: Secret });
      }
    })().catch(() => undefined);

    const names = ['stall-1', 'stall-2', 'stall-3', 'stall-4', 'stall-5'];
    for (const name of names) await direct.kube.createSecret(namespace, opaque(name, { v: name }));
    await eventually('the proxy holding five events', () => (proxy.watches.heldEvents === names.length ? true : undefined));
    expect(received).toEqual([]);

    proxy.releaseWatches();
    await eventually('five events delivered', () => (received.length >= names.length ? true : undefined));
    expect(received.map((event) => [event.type, event.object.metadata.name])).toEqual(names.map((name) => ['ADDED', name]));
    const versions = received.map((event) => BigInt(event.object.metadata.resourceVersion ?? '0'));
    expect(versions).toEqual([...versions].sort((a, b) => (a < b ? -1 : 1)));

    // Released, the watch flows again.
    await direct.kube.createSecret(namespace, opaque('after-release', { v: '1' }));
    await eventually('an event after release', () => (received.some((event) => event.object.metadata.name === 'after-release') ? true : undefined));
    abort.abort();
    await reading;
  });
});

describe('injected answers', () => {
  it('answers 503, 500 and 429 instead of forwarding; the client gets a KubeAPIError with that status', async () => {
    const before = proxy.stats;
    const statuses = [503, 500, 429] as const;
    for (const status of statuses) proxy.inject({ kind: 'status', status, retryAfterSeconds: 1 }, { match: { method: 'GET' } });
    const errors = [];
    for (const _ of statuses) errors.push(await getNamespace().catch((error: unknown) => error));
    expect(errors.map((error) => error instanceof KubeAPIError && [error.status, error.reason])).toEqual([
      [503, 'ServiceUnavailable'],
      [500, 'InternalError'],
      [429, 'TooManyRequests'],
    ]);
    const after = proxy.stats;
    expect(after.forwarded).toBe(before.forwarded);
    expect(after.faults.status503 - before.faults.status503).toBe(1);
    expect(after.faults.status429 - before.faults.status429).toBe(1);
  });

  it('sends Retry-After with a 429', async () => {
    proxy.inject({ kind: 'status', status: 429, retryAfterSeconds: 7 });
    const answer = await http1Get(`/api/v1/namespaces/${namespace}`);
    expect({ status: answer.status, retryAfter: answer.headers['retry-after'] }).toEqual({ status: 429, retryAfter: '7' });
    expect(JSON.parse(answer.body)).toMatchObject({ kind: 'Status', code: 429, reason: 'TooManyRequests', details: { retryAfterSeconds: 7 } });
  });
});

describe('seeded chaos', () => {
  const schedule = (seed: number): ChaosOptions => ({
    seed,
    // No refusals here: a refused request never reaches the proxy, so which requests arrive would
    // depend on timing.
    rates: { dropWriteResponse: 0.25, delayResponse: 0.1, reset: 0.1, status429: 0.1, status5xx: 0.1, stallWatches: 0.05 },
    durations: { delayMs: 50, stallWatchMs: 50 },
    match: { path: new RegExp(`^/api/v1/namespaces/${namespace}(/|$)`) },
  });

  /** A fixed sequence of 40 requests, one at a time; returns each one's fault and outcome. */
  async function runSequence(seed: number): Promise<Array<{ fault: FaultKind | undefined; outcome: 'ok' | number }>> {
    await direct.kube.createSecret(namespace, opaque(`chaos-${seed}`, { v: '0' })).catch(() => undefined);
    const chaos = proxy.chaos(schedule(seed));
    const outcomes: Array<'ok' | number> = [];
    for (let i = 0; i < 40; i += 1) {
      const request =
        i % 2 === 0
          ? getNamespace()
          : kube.replaceSecret(namespace, opaque(`chaos-${seed}`, { v: String(i) })); // no resourceVersion: never a conflict
      outcomes.push(await outcome(request));
    }
    proxy.calm();
    expect(chaos.decisions).toHaveLength(outcomes.length);
    return outcomes.map((seen, index) => ({ fault: chaos.decisions[index]?.fault, outcome: seen }));
  }

  it('makes the same fault decisions for the same seed and request sequence, and carries each one out', async () => {
    const first = await runSequence(42);
    const again = await runSequence(42);
    const other = await runSequence(7);

    expect(first).toHaveLength(40);
    expect(again.map((each) => each.fault)).toEqual(first.map((each) => each.fault));
    expect(other.map((each) => each.fault)).not.toEqual(first.map((each) => each.fault));
    expect(new Set(first.map((each) => each.fault).filter(Boolean)).size).toBeGreaterThanOrEqual(3);
    // What the client saw follows from the decision.
    const expected: Record<string, 'ok' | number> = { dropResponse: 0, reset: 0, status429: 429, status500: 500, status503: 503, delayResponse: 'ok', stallWatches: 'ok' };
    for (const run of [first, again, other]) {
      for (const { fault, outcome: seen } of run) expect({ fault, seen }).toEqual({ fault, seen: fault ? expected[fault] : 'ok' });
    }
  });
});
