// Writes that commit while their answer is lost, between the real operator process and the real
// apiserver (issue 10, sequences 1 and 5): the fault-injecting proxy forwards the write and then
// resets the stream, or answers 500 in place of the apiserver. Against a strict provider (rotating
// refresh tokens, a replay revokes the grant), nothing may be lost, sent twice or acted on twice.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startAPIServerProxy, type APIServerProxy, type ProxiedRequest } from '../support/apiserver-proxy.ts';
import { expectNoLeaks, replays } from '../support/chaos.ts';
import { eventually } from '../support/eventually.ts';
import { startOperatorProcess, type OperatorProcess } from '../support/operator-process.ts';
import { startPrivateCluster, type PrivateCluster } from '../support/private-cluster.ts';
import { condition, type AppView } from '../support/resources.ts';
import { startTestProvider, type TestProvider } from '../support/sandbox.ts';

const namespace = 'apps';
const operatorNamespace = 'oauthapp-system';
let cluster: PrivateCluster;
let proxy: APIServerProxy;
let provider: TestProvider;
let operator: OperatorProcess;
const canaries: string[] = [];

beforeAll(async () => {
  cluster = await startPrivateCluster('lost-answers', [namespace, operatorNamespace]);
  proxy = await startAPIServerProxy({ upstreamKubeconfig: cluster.controlPlane.adminKubeconfigPath });
  provider = await startTestProvider({ rotateRefreshTokens: true, revokeGrantOnReplay: true });
  canaries.push(provider.clientSecret);
  const args = cluster.operatorArgs({ leaderElect: false, flags: ['--token-request-timeout=2'] }).map((arg) => (arg.startsWith('--kubeconfig=') ? `--kubeconfig=${proxy.kubeconfigPath}` : arg));
  operator = startOperatorProcess(args);
}, 180_000);

afterAll(async () => {
  await operator?.kill('SIGTERM');
  await proxy?.close();
  await provider?.close();
  await cluster?.stop();
});

const getApp = async (name: string) => JSON.parse(await cluster.run(['get', 'oauthapp', name, '-n', namespace, '-o', 'json'])) as AppView;
const appWith = (name: string, predicate: (app: AppView) => boolean, what: string, timeoutMs = 30_000) =>
  eventually(`${name}: ${what}`, async () => {
    const app = await getApp(name);
    return predicate(app) ? app : undefined;
  }, timeoutMs);
const rotate = (name: string, value: string) => cluster.run(['annotate', 'oauthapp', name, '-n', namespace, `oauthapp.dev/rotate=${value}`, '--overwrite']);

/** A PUT of this app's state Secret whose bookkeeping carries a refresh claim. */
const claimWrite = (app: AppView) => (request: ProxiedRequest) =>
  request.method === 'PUT' && request.path.endsWith(`/secrets/oauthapp-state-${app.metadata.uid}`) && stateRecord(request.body).includes('"claim"');

function stateRecord(body: string | undefined): string {
  const data = (JSON.parse(body ?? '{}') as { data?: Record<string, string> }).data ?? {};
  return Buffer.from(data['record.json'] ?? '', 'base64').toString('utf8');
}

async function readyApp(name: string): Promise<AppView> {
  canaries.push(await cluster.applySeededApp(name, provider));
  const app = await appWith(name, (current) => condition(current, 'Ready')?.status === 'True', 'Ready=True', 60_000);
  const target = (await cluster.admin.secretData(namespace, `${name}-credentials`)) ?? {};
  canaries.push(target.access_token ?? '');
  return app;
}

describe('the answer to a refresh claim is lost after the claim committed', () => {
  it('releases its own claim (no request followed it) and refreshes, instead of giving the grant up as RefreshInterrupted', async () => {
    const app = await readyApp('lost-claim');
    const lost = proxy.inject({ kind: 'dropResponse' }, { match: claimWrite(app) });

    await rotate('lost-claim', 'first');
    await lost.applied;
    const refreshed = await appWith('lost-claim', (current) => current.status?.lastRotateRequest === 'first', 'the rotate request acted on');

    expect(proxy.stats.droppedWriteResponses.filter((drop) => drop.committed)).not.toHaveLength(0);
    expect(condition(refreshed, 'Authorized')?.status).toBe('True');
    const presented = provider.sandbox.stats().presentedRefreshTokens;
    expect(presented.map((p) => p.outcome)).toEqual(['ok', 'ok']);
    expect(replays(presented)).toEqual([]);
    // Past the claim's lifetime (2 × 2 s + 5 s) nothing changes: the claim was not left behind.
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    expect(condition(await getApp('lost-claim'), 'Authorized')?.status).toBe('True');
  }, 90_000);
});

describe('the answer to a refresh claim is lost, and the retried claim conflicts because the cache had not seen the first', () => {
  it('still knows the committed claim as its own and never sent, releases it and refreshes (found by the randomized run)', async () => {
    const app = await readyApp('lost-then-conflict');
    // The operator's watch of its state Secrets is held, so its cache keeps the state from before
    // the claim and every retried claim is written against a stale resourceVersion: 409.
    proxy.stallWatches({ match: { path: `/api/v1/namespaces/${operatorNamespace}/secrets`, watch: true }, ms: 60_000 });
    const lost = proxy.inject({ kind: 'dropResponse' }, { match: claimWrite(app) });
    const conflicts = proxy.inject({ kind: 'delayResponse', ms: 0 }, { match: claimWrite(app), times: 1_000 });

    await rotate('lost-then-conflict', 'through-conflicts');
    await lost.applied;
    await eventually('a retried claim refused with 409', async () => (conflicts.hits > 1 ? true : undefined));
    proxy.releaseWatches();
    conflicts.cancel();
    const refreshed = await appWith('lost-then-conflict', (current) => current.status?.lastRotateRequest === 'through-conflicts', 'the rotate request acted on');

    expect(condition(refreshed, 'Authorized')?.status).toBe('True');
    expect(replays(provider.sandbox.stats().presentedRefreshTokens)).toEqual([]);
  }, 90_000);
});

describe('a write after the refresh fails (the target Secret answers 500)', () => {
  it('acts on the rotate request once: the retry does not refresh again', async () => {
    await readyApp('one-rotate');
    const before = provider.sandbox.stats().presentedRefreshTokens.length;
    const failed = proxy.inject({ kind: 'status', status: 500 }, { match: { method: 'PUT', path: `/api/v1/namespaces/${namespace}/secrets/one-rotate-credentials` } });

    await rotate('one-rotate', 'once');
    await failed.applied;
    await appWith('one-rotate', (current) => current.status?.lastRotateRequest === 'once' && condition(current, 'Ready')?.status === 'True', 'the rotate request acted on');
    await new Promise((resolve) => setTimeout(resolve, 3_000));

    const presented = provider.sandbox.stats().presentedRefreshTokens;
    expect(presented.slice(before).map((p) => p.outcome)).toEqual(['ok']);
    expect(replays(presented)).toEqual([]);
  }, 90_000);
});

describe('secrets', () => {
  it('no client secret or token reached logs, Events, status or metrics', async () => {
    await expectNoLeaks({ canaries, namespace, logs: operator.output(), metrics: [], kubeconfig: cluster.controlPlane.adminKubeconfigPath });
  });
});
