// A user's change made while the operator's status write is in flight (issue 10, sequence 2).
// The status merge patch is unguarded: its answer carries the user's change, goes into the cache
// at once (write-through), and the watch events of that change arrive after it, older than the
// cache. The change must still be acted on at once, not at the next scheduled look (for an app
// waiting for its first authorization: the renewal of its authorization URL, minutes away).
//
// Making the race happen every time: the operator of this file talks to the apiserver through a
// small HTTP proxy. Armed for one app, the proxy holds the next status patch of that app, makes
// the user's change (straight to the apiserver) while it is held, then forwards the patch and
// hands its answer to the operator before the app watch events that arrived meanwhile (held,
// never reordered). That is the order in which a watch running a little behind (a loaded
// apiserver, a watch being re-established) delivers them. The app has no refresh token
// (`refreshToken: null`), so its reconcile writes status only: no state or target Secret write
// whose own watch event would put the app back on the queue and hide the bug.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, fetch } from 'undici';
import { oauthAppPath } from '../../src/kube/client.ts';
import { loadKubeConfigFile } from '../../src/kube/kubeconfig.ts';
import { finalizerName } from '../../src/oauthapp/labels.ts';
import { requiredEnvironment } from '../support/environment.ts';
import { eventually } from '../support/eventually.ts';
import { kubectlOK } from '../support/kubectl.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';
import { condition, type AppView } from '../support/resources.ts';
import { useTestbed } from '../support/testbed.ts';

/** What the operator's raced status write got back from the apiserver. */
interface RacedAnswer {
  status: number;
  generation: number | undefined;
  observedGeneration: number | undefined;
  deletionTimestamp: string | undefined;
  finalizers: string[];
}

interface Race {
  namespace: string;
  name: string;
  /** Which status patch to race (its body as the operator sent it). */
  when: (patch: { status?: { observedGeneration?: number } }) => boolean;
  userChange: () => Promise<void>;
  answered: (answer: RacedAnswer) => void;
}

interface RacingProxy {
  readonly kubeconfigPath: string;
  /** Races the next status patch of the app that `when` accepts; resolves with its answer. */
  race(race: Omit<Race, 'answered'>): Promise<RacedAnswer>;
  close(): Promise<void>;
}

/** How long app watch events stay held after the raced answer went out (ordering, not a wait for the operator). */
const answerHeadStartMs = 300;

async function startRacingProxy(upstreamKubeconfig: string): Promise<RacingProxy> {
  const config = loadKubeConfigFile(upstreamKubeconfig);
  const upstreamURL = config.server;
  const { tls } = config;
  const credentials = await config.credentials();
  const agent = new Agent({ connect: { ca: tls.ca, cert: tls.cert, key: tls.key }, headersTimeout: 0, bodyTimeout: 0 });

  let armed: Race | undefined;
  // App watch streams wait on this before relaying each chunk (so events are held, never reordered).
  let appWatchesMayRelay: Promise<void> = Promise.resolve();

  const readBody = async (request: IncomingMessage): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  };

  const server = createServer((request, response) => {
    let releaseAppWatches = () => undefined as void;
    void (async () => {
      const url = new URL(request.url ?? '/', upstreamURL);
      const body = await readBody(request);
      const upstreamAbort = new AbortController();
      response.on('close', () => upstreamAbort.abort());

      const race = armed;
      const raced =
        race !== undefined &&
        request.method === 'PATCH' &&
        url.pathname === `${oauthAppPath(race.namespace, race.name)}/status` &&
        race.when(JSON.parse(body.toString('utf8')) as { status?: { observedGeneration?: number } });
      if (raced) {
        armed = undefined;
        appWatchesMayRelay = new Promise((resolve) => (releaseAppWatches = resolve));
        await race.userChange();
      }

      const headers: Record<string, string> = { ...credentials, accept: request.headers.accept ?? 'application/json' };
      if (request.headers['content-type']) headers['content-type'] = request.headers['content-type'];
      let upstream: Awaited<ReturnType<typeof fetch>>;
      try {
        upstream = await fetch(url, {
          method: request.method ?? 'GET',
          headers,
          ...(body.length > 0 ? { body } : {}),
          dispatcher: agent,
          signal: upstreamAbort.signal,
        });
      } catch {
        releaseAppWatches();
        response.destroy();
        return;
      }
      response.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });

      if (raced) {
        const text = await upstream.text();
        const object = JSON.parse(text) as { metadata?: { generation?: number; deletionTimestamp?: string; finalizers?: string[] }; status?: { observedGeneration?: number } };
        race.answered({
          status: upstream.status,
          generation: object.metadata?.generation,
          observedGeneration: object.status?.observedGeneration,
          deletionTimestamp: object.metadata?.deletionTimestamp,
          finalizers: object.metadata?.finalizers ?? [],
        });
        response.end(text, () => void sleep(answerHeadStartMs).then(releaseAppWatches));
        return;
      }

      const appWatch = url.searchParams.get('watch') === 'true' && url.pathname.endsWith('/oauthapps');
      response.flushHeaders();
      try {
        for await (const chunk of upstream.body ?? []) {
          if (appWatch) await appWatchesMayRelay;
          response.write(chunk);
        }
        response.end();
      } catch {
        response.destroy();
      }
    })().catch(() => {
      releaseAppWatches();
      response.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const directory = await mkdtemp(join(tmpdir(), 'racing-proxy-'));
  const kubeconfigPath = join(directory, 'kubeconfig.json');
  await writeFile(
    kubeconfigPath,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      // Plain HTTP on loopback.
      clusters: [{ name: 'proxy', cluster: { server: `http://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true } }],
      // The proxy authenticates upstream as the admin; this token only satisfies the client.
      users: [{ name: 'proxy', user: { token: 'the-proxy-adds-the-real-credentials' } }],
      contexts: [{ name: 'proxy', context: { cluster: 'proxy', user: 'proxy' } }],
      'current-context': 'proxy',
    }),
  );

  return {
    kubeconfigPath,
    race: (race) =>
      new Promise<RacedAnswer>((answered, failed) => {
        const timer = setTimeout(() => failed(new Error(`no status write of ${race.name} to race came within 30 s`)), 30_000);
        armed = { ...race, answered: (answer) => (clearTimeout(timer), answered(answer)) };
      }),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await agent.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

const testbed = useTestbed('writethrough');
let proxy: RacingProxy | undefined;
let operator: TestOperator | undefined;

beforeAll(async () => {
  proxy = await startRacingProxy(requiredEnvironment('kubeconfig'));
  // This file's operator reaches the apiserver through the proxy: the testbed's steps down (it
  // releases the Lease) and one started like it, but with the proxy's kubeconfig, takes over.
  await testbed.operator.stop();
  operator = await startTestOperator({ namespaces: [testbed.namespace], operatorNamespace: testbed.operatorNamespace, kubeconfig: proxy.kubeconfigPath });
});

afterAll(async () => {
  await operator?.stop();
  await proxy?.close();
});

const started = <T>(value: T | undefined): T => {
  if (value === undefined) throw new Error('used before beforeAll ran');
  return value;
};

const settled = (app: AppView) =>
  condition(app, 'Authorized')?.status === 'False' && app.status?.authorizationURL !== undefined && app.status.observedGeneration === app.metadata.generation;

/** An app waiting for its first authorization, its status up to date with its spec. */
async function waitingApp(name: string): Promise<AppView> {
  const provider = await testbed.newProvider();
  await testbed.applyApp(name, provider, { refreshToken: null });
  return testbed.appWith(name, settled, 'Authorized=False with an authorization URL, observedGeneration = generation');
}

const setScopes = (name: string, scopes: string[]) =>
  kubectlOK(['patch', 'oauthapp', name, '-n', testbed.namespace, '--type=merge', '-p', JSON.stringify({ spec: { scopes } })]);

/** The status patch of the reconcile that saw `generation`. */
const statusFor = (generation: number) => (patch: { status?: { observedGeneration?: number } }) => patch.status?.observedGeneration === generation;

describe('a user change made while a status write is in flight', () => {
  it('a spec change is reconciled at once: observedGeneration catches up with the change the status write carried back', async () => {
    const before = await waitingApp('spec-race');
    const reconciled = before.metadata.generation + 1;
    const raced = started(proxy).race({
      namespace: testbed.namespace,
      name: 'spec-race',
      when: statusFor(reconciled),
      userChange: async () => void (await setScopes('spec-race', ['deals:read', 'users:read'])),
    });

    // This change's reconcile writes status (a new authorization URL): the write that is raced.
    await setScopes('spec-race', ['deals:read']);
    const answer = await raced;

    // The scenario happened: the status for generation N+1 was written onto the user's N+2.
    expect(answer).toMatchObject({ status: 200, generation: reconciled + 1, observedGeneration: reconciled });
    const after = await testbed.appWith('spec-race', settled, 'observedGeneration caught up with the change made during the status write', 15_000);
    expect(after.metadata.generation).toBe(reconciled + 1);
    expect(new URL(after.status?.authorizationURL ?? 'http://missing').searchParams.get('scope')).toBe('deals:read users:read');
  });

  it('a delete is finished at once: the finalizer is removed and the app is gone', async () => {
    const before = await waitingApp('delete-race');
    expect(before.metadata.finalizers).toContain(finalizerName);
    const raced = started(proxy).race({
      namespace: testbed.namespace,
      name: 'delete-race',
      when: statusFor(before.metadata.generation + 1),
      userChange: async () => void (await kubectlOK(['delete', 'oauthapp', 'delete-race', '-n', testbed.namespace, '--wait=false'])),
    });

    await setScopes('delete-race', ['deals:read']);
    const answer = await raced;

    // The scenario happened: the status write landed on the app being deleted, finalizer still on.
    expect(answer.status).toBe(200);
    expect(answer.deletionTimestamp).toBeDefined();
    expect(answer.finalizers).toContain(finalizerName);
    await eventually(
      'delete-race gone',
      async () => ((await kubectlOK(['get', 'oauthapp', 'delete-race', '-n', testbed.namespace, '--ignore-not-found', '-o', 'name'])).trim() === '' ? true : undefined),
      15_000,
    );
  });
});

describe('all of the above', () => {
  it('leaked no client secret or token into logs, Events or status', async () => {
    await expectNoSecretValuesLeaked(testbed.canaries, { namespace: testbed.namespace, logs: testbed.logs() + started(operator).logs() });
  });
});
