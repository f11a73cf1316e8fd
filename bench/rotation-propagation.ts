// Rotation propagation: how long from a client-secret Secret update to the target Secret carrying
// the new value, at BENCH_APPS OAuthApps (default 1,000), next to a bare watch-then-write loop
// measured in the same run on the same apiserver. Run: npm run bench:rotation
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Informer } from '../src/kube/informer.ts';
import { encodeData, type Secret } from '../src/kube/objects.ts';
import { createLogger } from '../src/log.ts';
import { createSandbox } from '../src/sandbox/server.ts';
import { forEachLimited, ms, startBenchCluster, startOperatorProcess, summarize } from './harness.ts';

const apps = Number(process.env.BENCH_APPS ?? 1000);
const appNamespace = 'bench';
const baselineNamespace = 'baseline';
const operatorNamespace = 'oauthapp-system';
const log = (line: string) => process.stdout.write(`${line}\n`);

const cluster = await startBenchCluster();
const { kube, http } = cluster;
const sandbox = createSandbox({ expiresIn: 3600 });
const client = sandbox.registerClient({ redirectUri: 'http://127.0.0.1:8081/oauth/callback' });
const sandboxURL = await sandbox.listen({ host: '127.0.0.1', port: 0 });
const silent = createLogger({ level: 'silent' });
try {
  for (const namespace of [appNamespace, baselineNamespace, operatorNamespace]) await cluster.kubectl(['create', 'namespace', namespace]);
  const names = Array.from({ length: apps }, (_, index) => `app-${index}`);
  const secret = (name: string, namespace: string, data: Record<string, string>, labels: Record<string, string> = {}): Secret => ({
    metadata: { name, namespace, labels },
    type: 'Opaque',
    data: encodeData(data),
  });

  log(`creating ${apps} OAuthApps and ${apps} baseline Secrets on kube-apiserver ${cluster.controlPlane.version}`);
  const setupStarted = Date.now();
  await forEachLimited(names, 16, async (name) => {
    await kube.createSecret(appNamespace, secret(`${name}-client`, appNamespace, { client_secret: client.clientSecret }));
    await kube.createSecret(appNamespace, secret(`${name}-bootstrap`, appNamespace, { refresh_token: sandbox.issueRefreshToken(client.clientId) }));
    await http.json({
      method: 'POST',
      path: `/apis/oauthapp.dev/v1alpha1/namespaces/${appNamespace}/oauthapps`,
      body: {
        apiVersion: 'oauthapp.dev/v1alpha1',
        kind: 'OAuthApp',
        metadata: { name },
        spec: {
          tokenURL: `${sandboxURL}/oauth/token`,
          clientId: client.clientId,
          clientSecretRef: { name: `${name}-client`, key: 'client_secret' },
          refreshTokenRef: { name: `${name}-bootstrap`, key: 'refresh_token' },
          redirectURI: 'http://127.0.0.1:8081/oauth/callback',
        },
      },
    });
    await kube.createSecret(baselineNamespace, secret(`${name}-source`, baselineNamespace, { client_secret: 'initial' }, { 'bench-role': 'source' }));
  });
  log(`created in ${((Date.now() - setupStarted) / 1000).toFixed(1)} s`);

  // Both loops' outputs watched from here; a sample completes when its new value shows up.
  const waiting = new Map<string, () => void>();
  const watch = (name: string, namespace: string, labelSelector: string) => {
    const informer = new Informer<Secret>({ name, http, path: `/api/v1/namespaces/${namespace}/secrets`, labelSelector, logger: silent });
    informer.on((_event, object) => {
      const value = object.data?.client_secret ? Buffer.from(object.data.client_secret, 'base64').toString('utf8') : undefined;
      if (value) waiting.get(value)?.();
    });
    informer.start();
    return informer;
  };
  const targets = watch('targets', appNamespace, 'oauthapp.dev/role=credentials');
  const copies = watch('copies', baselineNamespace, 'bench-role=copy');

  const operatorStarted = Date.now();
  const operator = startOperatorProcess([
    `--kubeconfig=${cluster.controlPlane.adminKubeconfigPath}`,
    `--namespaces=${appNamespace}`,
    `--operator-namespace=${operatorNamespace}`,
    '--no-leader-elect',
    '--log-level=warn',
    '--metrics-addr=127.0.0.1:0',
    '--callback-addr=127.0.0.1:0',
    '--allow-loopback-providers',
    '--allow-preset-overrides',
  ]);
  const copier = spawn(process.execPath, [fileURLToPath(new URL('./baseline-copier.ts', import.meta.url)), cluster.controlPlane.adminKubeconfigPath, baselineNamespace], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    while (targets.list().filter((target) => target.data?.access_token).length < apps) await new Promise((resolve) => setTimeout(resolve, 200));
    log(`operator: all ${apps} target Secrets hold an access token ${((Date.now() - operatorStarted) / 1000).toFixed(1)} s after start`);
    while (copies.list().length < apps) await new Promise((resolve) => setTimeout(resolve, 200));

    const measure = async (namespace: string, sourceName: string, value: string) => {
      const seen = new Promise<void>((resolve) => waiting.set(value, resolve));
      const started = performance.now();
      await kube.replaceSecret(namespace, secret(sourceName, namespace, { client_secret: value }, namespace === baselineNamespace ? { 'bench-role': 'source' } : {}));
      await seen;
      waiting.delete(value);
      return performance.now() - started;
    };
    const operatorSamples: number[] = [];
    const baselineSamples: number[] = [];
    // Alternating, one at a time: both loops see the same apiserver at the same moment.
    for (const [index, name] of names.entries()) {
      baselineSamples.push(await measure(baselineNamespace, `${name}-source`, `baseline-${index}-rotated`));
      operatorSamples.push(await measure(appNamespace, `${name}-client`, `operator-${index}-rotated`));
    }

    const bare = summarize(baselineSamples);
    const ours = summarize(operatorSamples);
    log('');
    log(`rotation propagation, ${apps} apps (source Secret update -> target Secret carries the new value)`);
    log('| loop | samples | p50 | p99 | max |');
    log('|---|---|---|---|---|');
    log(`| bare watch-then-write | ${bare.n} | ${ms(bare.p50)} | ${ms(bare.p99)} | ${ms(bare.max)} |`);
    log(`| oauthapp-operator | ${ours.n} | ${ms(ours.p50)} | ${ms(ours.p99)} | ${ms(ours.max)} |`);
    log(`| ratio operator / bare | | ${(ours.p50 / bare.p50).toFixed(2)}x | ${(ours.p99 / bare.p99).toFixed(2)}x | |`);
  } finally {
    copier.kill('SIGTERM');
    await operator.stop();
    await Promise.all([targets.stop(), copies.stop()]);
  }
} finally {
  await sandbox.close();
  await cluster.stop();
}
