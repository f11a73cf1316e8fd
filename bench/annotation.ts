// Rotation by annotation: `oauthapp.dev/rotate=<new value>` (a merge patch on the OAuthApp) → the
// target Secret carries a new access token, at BENCH_APPS OAuthApps (default 200). In the same run,
// on the same apiserver and sandbox: a bare watch-then-write loop (bench/baseline-copier.ts) and one
// direct refresh-grant round trip to the sandbox, so the table shows the goal
// (bare loop + one token round trip + 100 ms) next to the operator. Run: npm run bench:annotation
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Informer } from '../src/kube/informer.ts';
import { encodeData, type Secret } from '../src/kube/objects.ts';
import { createLogger } from '../src/log.ts';
import { createOAuthApps, forEachLimited, ms, operatorArgs, startBenchCluster, startOperatorProcess, summarize, waitFor } from './harness.ts';
import { createBenchSandbox, tokenRoundTrip } from './sandbox.ts';

const apps = Number(process.env.BENCH_APPS ?? 200);
const appNamespace = 'bench';
const baselineNamespace = 'baseline';
const operatorNamespace = 'oauthapp-system';
const log = (line: string) => process.stdout.write(`${line}\n`);
const decode = (value: string | undefined) => (value ? Buffer.from(value, 'base64').toString('utf8') : undefined);

const cluster = await startBenchCluster();
const { kube, http } = cluster;
const sandbox = createBenchSandbox({ expiresIn: 3600 });
const client = sandbox.registerClient({ redirectUri: 'http://127.0.0.1:8081/oauth/callback' });
const sandboxURL = await sandbox.listen({ host: '127.0.0.1', port: 0 });
const tokenURL = `${sandboxURL}/oauth/token`;
const silent = createLogger({ level: 'silent' });
try {
  for (const namespace of [appNamespace, baselineNamespace, operatorNamespace]) await cluster.kubectl(['create', 'namespace', namespace]);
  const names = Array.from({ length: apps }, (_, index) => `app-${index}`);
  const source = (name: string, value: string): Secret => ({
    metadata: { name: `${name}-source`, namespace: baselineNamespace, labels: { 'bench-role': 'source' } },
    type: 'Opaque',
    data: encodeData({ client_secret: value }),
  });

  log(`creating ${apps} OAuthApps and ${apps} baseline Secrets on kube-apiserver ${cluster.controlPlane.version}`);
  await createOAuthApps({ cluster, namespace: appNamespace, names, clientId: client.clientId, clientSecret: client.clientSecret, issueRefreshToken: () => sandbox.issueRefreshToken(client.clientId), tokenURL });
  await forEachLimited(names, 16, async (name) => void (await kube.createSecret(baselineNamespace, source(name, 'initial'))));

  // A sample completes when its awaited change shows up in one of these watches.
  const waiting = new Map<string, (secret: Secret) => void>();
  const watch = (name: string, namespace: string, labelSelector: string) => {
    const informer = new Informer<Secret>({ name, http, path: `/api/v1/namespaces/${namespace}/secrets`, labelSelector, logger: silent });
    informer.on((_event, object) => waiting.get(`${namespace}/${object.metadata.name}`)?.(object));
    informer.start();
    return informer;
  };
  const targets = watch('targets', appNamespace, 'oauthapp.dev/role=credentials');
  const copies = watch('copies', baselineNamespace, 'bench-role=copy');

  const operatorStarted = Date.now();
  // Every app was refreshed moments ago (its first token): with the default floor a rotate request
  // would wait out the rest of --min-refresh-interval, which is policy, not the path measured here.
  const operator = startOperatorProcess([...operatorArgs(cluster, [appNamespace], operatorNamespace), '--min-refresh-interval=1']);
  const copier = spawn(process.execPath, [fileURLToPath(new URL('./baseline-copier.ts', import.meta.url)), cluster.controlPlane.adminKubeconfigPath, baselineNamespace], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await waitFor('every target Secret to hold an access token', () => targets.list().filter((target) => target.data?.access_token).length === apps);
    log(`operator: all ${apps} target Secrets hold an access token ${((Date.now() - operatorStarted) / 1000).toFixed(1)} s after start`);
    await waitFor('every baseline copy', () => copies.list().length === apps);

    /** Starts `change`, resolves with the ms until `key`'s Secret satisfies `done`. */
    const measure = async (key: string, done: (secret: Secret) => boolean, change: () => Promise<unknown>) => {
      const seen = new Promise<void>((resolve) => waiting.set(key, (secret) => done(secret) && resolve()));
      const started = performance.now();
      await change();
      await seen;
      waiting.delete(key);
      return performance.now() - started;
    };
    const bareSamples: number[] = [];
    const tokenSamples: number[] = [];
    const operatorSamples: number[] = [];
    // Alternating, one at a time: all three see the same apiserver and sandbox at the same moment.
    for (const [index, name] of names.entries()) {
      const copyValue = `baseline-${index}-rotated`;
      bareSamples.push(await measure(`${baselineNamespace}/${name}-source-copy`, (copy) => decode(copy.data?.client_secret) === copyValue, () => kube.replaceSecret(baselineNamespace, source(name, copyValue))));
      const refreshToken = sandbox.issueRefreshToken(client.clientId);
      tokenSamples.push(await tokenRoundTrip(tokenURL, client.clientId, client.clientSecret, refreshToken));
      const targetKey = `${appNamespace}/${name}-credentials`;
      const before = targets.get(appNamespace, `${name}-credentials`)?.data?.access_token;
      operatorSamples.push(
        await measure(targetKey, (target) => target.data?.access_token !== undefined && target.data.access_token !== before, () =>
          http.json({
            method: 'PATCH',
            path: `/apis/oauthapp.dev/v1alpha1/namespaces/${appNamespace}/oauthapps/${name}`,
            contentType: 'application/merge-patch+json',
            body: { metadata: { annotations: { 'oauthapp.dev/rotate': `rotate-${index}` } } },
          }),
        ),
      );
    }

    const bare = summarize(bareSamples);
    const token = summarize(tokenSamples);
    const ours = summarize(operatorSamples);
    const goal = { p50: bare.p50 + token.p50 + 100, p99: bare.p99 + token.p99 + 100 };
    log('');
    log(`rotation by annotation, ${apps} apps (merge patch of oauthapp.dev/rotate -> new access_token in the target Secret)`);
    log('| measured | samples | p50 | p99 | max |');
    log('|---|---|---|---|---|');
    log(`| bare watch-then-write loop | ${bare.n} | ${ms(bare.p50)} | ${ms(bare.p99)} | ${ms(bare.max)} |`);
    log(`| one token round trip (refresh grant, direct) | ${token.n} | ${ms(token.p50)} | ${ms(token.p99)} | ${ms(token.max)} |`);
    log(`| goal: bare + token + 100 ms | | ${ms(goal.p50)} | ${ms(goal.p99)} | |`);
    log(`| oauthapp-operator | ${ours.n} | ${ms(ours.p50)} | ${ms(ours.p99)} | ${ms(ours.max)} |`);
    log(`| goal met | | ${ours.p50 <= goal.p50 ? 'yes' : 'no'} | ${ours.p99 <= goal.p99 ? 'yes' : 'no'} | |`);
  } finally {
    copier.kill('SIGTERM');
    await operator.stop();
    await Promise.all([targets.stop(), copies.stop()]);
  }
} finally {
  await sandbox.close();
  await cluster.stop();
}
