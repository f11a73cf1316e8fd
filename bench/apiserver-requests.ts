// What the operator asks of the apiserver, counted by the apiserver itself (its /metrics
// `apiserver_request_total`, by verb and resource), at BENCH_APPS OAuthApps (default 200) on a
// control plane without kube-controller-manager, so the operator and this benchmark are the only
// clients (the benchmark's own requests are known and subtracted). Phases:
//   (a) writes per refresh: every app refreshed once through the rotate annotation, then once more
//       on its own schedule (short token lifetimes, BENCH_SHORT_LIFETIME seconds, default 90);
//   (b) writes while idle: every app Ready, tokens good for an hour, BENCH_IDLE_SECONDS (default
//       180) measured and extrapolated to an hour;
//   (c) LISTs after the operator's initial lists.
// Run: npm run bench:apiserver-requests
import { Informer } from '../src/kube/informer.ts';
import type { KubeObject, Secret } from '../src/kube/objects.ts';
import { createLogger } from '../src/log.ts';
import {
  apiserverRequests,
  createOAuthApps,
  forEachLimited,
  operatorArgs,
  requestDelta,
  sleep,
  startBenchCluster,
  startOperatorProcess,
  waitFor,
  writeVerbs,
} from './harness.ts';
import { createBenchSandbox } from './sandbox.ts';

const apps = Number(process.env.BENCH_APPS ?? 200);
const shortLifetimeSeconds = Number(process.env.BENCH_SHORT_LIFETIME ?? 90);
const idleSeconds = Number(process.env.BENCH_IDLE_SECONDS ?? 180);
const appNamespace = 'bench';
const operatorNamespace = 'oauthapp-system';
const log = (line: string) => process.stdout.write(`${line}\n`);
// Resources the operator reads or writes; the apiserver's own bookkeeping (leases, endpoints…) is left out.
const ours = new Set(['secrets', 'oauthapps', 'oauthapps/status', 'events', 'deployments', 'statefulsets', 'daemonsets']);

type App = KubeObject & { status?: { conditions?: Array<{ type: string; status: string }>; lastRotateRequest?: string } };
const ready = (app: App | undefined) => app?.status?.conditions?.some((condition) => condition.type === 'Ready' && condition.status === 'True') === true;

let lifetimeSeconds = 3600;
let refreshes = 0;
const cluster = await startBenchCluster({ controllerManager: false });
const { http } = cluster;
const sandbox = createBenchSandbox({ expiresInAt: () => lifetimeSeconds, onToken: ({ grantType }) => void (grantType === 'refresh_token' && (refreshes += 1)) });
const client = sandbox.registerClient({ redirectUri: 'http://127.0.0.1:8081/oauth/callback' });
const sandboxURL = await sandbox.listen({ host: '127.0.0.1', port: 0 });
const silent = createLogger({ level: 'silent' });
try {
  for (const namespace of [appNamespace, operatorNamespace]) await cluster.kubectl(['create', 'namespace', namespace]);
  const names = Array.from({ length: apps }, (_, index) => `app-${index}`);
  log(`creating ${apps} OAuthApps on kube-apiserver ${cluster.controlPlane.version} (no kube-controller-manager)`);
  await createOAuthApps({ cluster, namespace: appNamespace, names, clientId: client.clientId, clientSecret: client.clientSecret, issueRefreshToken: () => sandbox.issueRefreshToken(client.clientId), tokenURL: `${sandboxURL}/oauth/token` });

  // The benchmark's own watches: one LIST each, before the first count.
  const appCache = new Informer<App>({ name: 'apps', http, path: `/apis/oauthapp.dev/v1alpha1/namespaces/${appNamespace}/oauthapps`, logger: silent });
  const targets = new Informer<Secret>({ name: 'targets', http, path: `/api/v1/namespaces/${appNamespace}/secrets`, labelSelector: 'oauthapp.dev/role=credentials', logger: silent });
  for (const informer of [appCache, targets]) informer.start();
  await Promise.all([appCache.synced, targets.synced]);
  const allReady = () => names.every((name) => ready(appCache.get(appNamespace, name)));

  const counts: Array<{ phase: string; delta: Map<string, number>; refreshes: number; seconds: number; benchWrites: Map<string, number> }> = [];
  const phase = async (name: string, run: () => Promise<number>) => {
    const before = await apiserverRequests(cluster);
    const refreshesBefore = refreshes;
    const started = Date.now();
    const benchPatches = await run();
    const after = await apiserverRequests(cluster);
    counts.push({ phase: name, delta: requestDelta(before, after), refreshes: refreshes - refreshesBefore, seconds: (Date.now() - started) / 1000, benchWrites: new Map(benchPatches ? [['PATCH oauthapps', benchPatches]] : []) });
    log(`${name}: ${refreshes - refreshesBefore} refreshes in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  };

  const operator = startOperatorProcess(operatorArgs(cluster, [appNamespace], operatorNamespace));
  try {
    await phase('start (initial lists, first refreshes)', async () => {
      await waitFor('every app Ready', allReady);
      await sleep(3000);
      return 0;
    });

    // (a1) The rotate annotation on every app; the tokens it brings live BENCH_SHORT_LIFETIME.
    lifetimeSeconds = shortLifetimeSeconds;
    await phase('refresh by rotate annotation', async () => {
      await forEachLimited(names, 4, async (name) => {
        await http.json({
          method: 'PATCH',
          path: `/apis/oauthapp.dev/v1alpha1/namespaces/${appNamespace}/oauthapps/${name}`,
          contentType: 'application/merge-patch+json',
          body: { metadata: { annotations: { 'oauthapp.dev/rotate': 'bench-1' } } },
        });
      });
      await waitFor('every rotate request echoed', () => names.every((name) => appCache.get(appNamespace, name)?.status?.lastRotateRequest === 'bench-1' && ready(appCache.get(appNamespace, name))));
      await sleep(3000);
      return apps;
    });
    // (a2) The scheduled refresh of those short-lived tokens; what it brings lives an hour.
    lifetimeSeconds = 3600;
    await phase('scheduled refresh (short lifetime)', async () => {
      const target = refreshes + apps;
      await waitFor('every app refreshed on schedule', () => refreshes >= target, shortLifetimeSeconds * 2000 + 120_000);
      await waitFor('every app Ready', allReady);
      await sleep(5000);
      return 0;
    });
    // (b) Nothing to do for an hour.
    await phase(`idle (${idleSeconds} s, tokens valid for an hour)`, async () => {
      await sleep(idleSeconds * 1000);
      return 0;
    });
  } finally {
    await operator.stop();
    await Promise.all([appCache.stop(), targets.stop()]);
  }

  const operatorCount = (entry: (typeof counts)[number], key: string) => (entry.delta.get(key) ?? 0) - (entry.benchWrites.get(key) ?? 0);
  const keys = [...new Set(counts.flatMap((entry) => [...entry.delta.keys()]))].filter((key) => ours.has(key.split(' ')[1] ?? '')).sort();
  const writeKeys = keys.filter((key) => writeVerbs.has(key.split(' ')[0] ?? ''));
  const listKeys = keys.filter((key) => key.startsWith('LIST '));
  const getKeys = keys.filter((key) => key.startsWith('GET '));

  log('');
  log(`apiserver requests by the operator, ${apps} apps (apiserver_request_total deltas; the benchmark's own ${apps} annotation PATCHes subtracted)`);
  log(`| request | ${counts.map((entry) => entry.phase).join(' | ')} |`);
  log(`|---|${counts.map(() => '---').join('|')}|`);
  log(`| token refreshes (sandbox) | ${counts.map((entry) => entry.refreshes).join(' | ')} |`);
  for (const key of [...writeKeys, ...listKeys, ...getKeys]) log(`| ${key} | ${counts.map((entry) => operatorCount(entry, key)).join(' | ')} |`);
  const writes = (entry: (typeof counts)[number]) => writeKeys.reduce((total, key) => total + operatorCount(entry, key), 0);
  const lists = (entry: (typeof counts)[number]) => listKeys.reduce((total, key) => total + operatorCount(entry, key), 0);
  log(`| **writes** | ${counts.map(writes).join(' | ')} |`);
  log(`| **writes per refresh** | ${counts.map((entry) => (entry.refreshes ? (writes(entry) / entry.refreshes).toFixed(2) : '–')).join(' | ')} |`);
  log(`| **LISTs** | ${counts.map(lists).join(' | ')} |`);

  const idle = counts.at(-1)!;
  const afterStart = counts.slice(1);
  log('');
  log('| goal | measured | met |');
  log('|---|---|---|');
  const perRefresh = counts.slice(1, 3).map((entry) => writes(entry) / entry.refreshes);
  log(`| ≤ 3 writes per refresh | ${perRefresh.map((value) => value.toFixed(2)).join(' (annotation), ')} (schedule) | ${perRefresh.every((value) => value <= 3) ? 'yes' : 'no'} |`);
  const perHour = (writes(idle) * 3600) / idle.seconds;
  log(`| 0 writes per idle hour | ${writes(idle)} in ${idle.seconds.toFixed(0)} s → ${perHour.toFixed(0)} per hour (extrapolated) | ${writes(idle) === 0 ? 'yes' : 'no'} |`);
  const listsAfterStart = afterStart.reduce((total, entry) => total + lists(entry), 0);
  log(`| 0 LISTs after start (apart from relists) | ${listsAfterStart} in ${afterStart.reduce((total, entry) => total + entry.seconds, 0).toFixed(0)} s after the initial lists | ${listsAfterStart === 0 ? 'yes' : 'no'} |`);
} finally {
  await sandbox.close();
  await cluster.stop();
}
