// Refresh smoothing: BENCH_APPS OAuthApps (default 1,000) whose access tokens all expire at the
// same moment, T = operator start + BENCH_LIFETIME seconds (default 300; a bench-only sandbox hook
// sets each response's expires_in to "until T"). What the provider then sees: refreshes per
// 1-second bucket over the refresh window, peak-to-mean. Next to it, in the same run: the schedule
// the operator published (status.nextRefreshTime, before the wave) and what independent uniform
// random times over the same window give (Monte Carlo). Goal: peak-to-mean ≤ 1.5.
// Run: npm run bench:smoothing
import { Informer } from '../src/kube/informer.ts';
import type { KubeObject } from '../src/kube/objects.ts';
import { createLogger } from '../src/log.ts';
import { buckets, createOAuthApps, operatorArgs, randomPeakToMean, startBenchCluster, startOperatorProcess, waitFor } from './harness.ts';
import { createBenchSandbox } from './sandbox.ts';

const apps = Number(process.env.BENCH_APPS ?? 1000);
const lifetimeSeconds = Number(process.env.BENCH_LIFETIME ?? 300);
const appNamespace = 'bench';
const operatorNamespace = 'oauthapp-system';
const log = (line: string) => process.stdout.write(`${line}\n`);

type App = KubeObject & { status?: { conditions?: Array<{ type: string; status: string }>; nextRefreshTime?: string } };
const ready = (app: App | undefined) => app?.status?.conditions?.some((condition) => condition.type === 'Ready' && condition.status === 'True') === true;

let expiresAt = Number.POSITIVE_INFINITY;
let inWave = false;
const waveTimes: number[] = [];
const cluster = await startBenchCluster();
const { http } = cluster;
const sandbox = createBenchSandbox({
  // Until T, every token expires at T; the wave's own refreshes get an hour.
  expiresInAt: (now) => (inWave ? 3600 : (expiresAt - now) / 1000),
  onToken: ({ at, grantType }) => void (inWave && grantType === 'refresh_token' && waveTimes.push(at)),
});
const client = sandbox.registerClient({ redirectUri: 'http://127.0.0.1:8081/oauth/callback' });
const sandboxURL = await sandbox.listen({ host: '127.0.0.1', port: 0 });
try {
  for (const namespace of [appNamespace, operatorNamespace]) await cluster.kubectl(['create', 'namespace', namespace]);
  const names = Array.from({ length: apps }, (_, index) => `app-${index}`);
  log(`creating ${apps} OAuthApps on kube-apiserver ${cluster.controlPlane.version}`);
  await createOAuthApps({ cluster, namespace: appNamespace, names, clientId: client.clientId, clientSecret: client.clientSecret, issueRefreshToken: () => sandbox.issueRefreshToken(client.clientId), tokenURL: `${sandboxURL}/oauth/token` });
  const appCache = new Informer<App>({ name: 'apps', http, path: `/apis/oauthapp.dev/v1alpha1/namespaces/${appNamespace}/oauthapps`, logger: createLogger({ level: 'silent' }) });
  appCache.start();
  await appCache.synced;

  const operatorStarted = Date.now();
  expiresAt = operatorStarted + lifetimeSeconds * 1000;
  const operator = startOperatorProcess(operatorArgs(cluster, [appNamespace], operatorNamespace));
  try {
    await waitFor('every app Ready', () => names.every((name) => ready(appCache.get(appNamespace, name))));
    const initialDone = Date.now();
    log(`all ${apps} apps Ready ${((initialDone - operatorStarted) / 1000).toFixed(1)} s after start; every token expires at ${new Date(expiresAt).toISOString()}`);
    const scheduled = names.map((name) => Date.parse(appCache.get(appNamespace, name)?.status?.nextRefreshTime ?? ''));
    if (scheduled.some((time) => Number.isNaN(time))) throw new Error('an app has no status.nextRefreshTime');
    if (Math.min(...scheduled) <= initialDone) throw new Error(`the first refresh is due before the initial wave ended: raise BENCH_LIFETIME`);
    inWave = true;
    await waitFor('the refresh wave', () => waveTimes.length >= apps, lifetimeSeconds * 1000 + 120_000, 500);

    const actual = buckets(waveTimes);
    const schedule = buckets(scheduled);
    const random = randomPeakToMean(apps, actual.windowSeconds);
    const lagMs = Math.max(...waveTimes) - Math.max(...scheduled);
    log('');
    log(`refresh smoothing, ${apps} apps whose tokens all expire at T (1 s buckets over the refresh window)`);
    log('| refreshes | window | mean / s | peak / s | peak-to-mean |');
    log('|---|---|---|---|---|');
    log(`| scheduled by the operator (status.nextRefreshTime, 1 s resolution) | ${schedule.windowSeconds} s | ${schedule.mean.toFixed(1)} | ${schedule.peak} | ${schedule.peakToMean.toFixed(2)} |`);
    log(`| seen by the provider | ${actual.windowSeconds} s | ${actual.mean.toFixed(1)} | ${actual.peak} | ${actual.peakToMean.toFixed(2)} |`);
    log(`| reference: ${apps} independent uniform random times over ${actual.windowSeconds} s (median of 500) | ${actual.windowSeconds} s | ${(apps / actual.windowSeconds).toFixed(1)} | | ${random.toFixed(2)} |`);
    log(`| goal | | | | ≤ 1.50 (${actual.peakToMean <= 1.5 ? 'met' : 'missed'}) |`);
    log('');
    log(`window: first refresh ${((expiresAt - Math.min(...waveTimes)) / 1000).toFixed(1)} s before T, last ${((expiresAt - Math.max(...waveTimes)) / 1000).toFixed(1)} s before T; last refresh ${(lagMs / 1000).toFixed(1)} s after the last scheduled time`);
    log(`per-second counts seen by the provider: ${actual.counts.join(' ')}`);
  } finally {
    await operator.stop();
    await appCache.stop();
  }
} finally {
  await sandbox.close();
  await cluster.stop();
}
