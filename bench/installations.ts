// Public apps: one OAuthApp with `installations: multiple` (provider pipedrive, its endpoints
// overridden to the sandbox) and BENCH_INSTALLATIONS Marketplace installs of it (default 10,000),
// on one operator run as deploy/ runs it (built with tsconfig.build.json, NODE_ENV=production, the
// node flags of deploy/base/deployment.yaml), watching the namespace `bench`. Each install is what
// a browser does after "Install now": a GET of the app's redirectURI (<callback URL>/bench-app)
// with `?code=` and no state, BENCH_INSTALL_CONCURRENCY (default 16) at once. The callback server
// allows 60 requests a minute per client IP by default, and every install comes from 127.0.0.1:
// the operator runs with --callback-rate-limit=BENCH_CALLBACK_RATE_LIMIT (default 100000/min).
// Measured, in one run:
//   1. installs: callback answer time, install request → the installation's Secret holds an
//      access_token (per install, and for the last request sent), first request → all N Secrets,
//      and the apiserver's request counts per install;
//   2. refresh smoothness: every token lives BENCH_LIFETIME seconds (default 1.5 × the window, so
//      each installation refreshes at least once in it, or longer where the schedule would ask for
//      more than ≈ 50 refreshes/s; --min-refresh-interval is lowered to half the lifetime when
//      that is under 30 s). After every installation has refreshed once, for
//      BENCH_STEADY_SECONDS (default 60): the refreshes the provider answered per 1 s bucket,
//      peak-to-mean (bench/smoothing.ts's method), next to independent uniform random times, and
//      how many installations' Secrets held an expired access token at any 1 s sample;
//   3. client-secret propagation: the secret rotated at the sandbox, then in the app's client
//      Secret; from that write until each of the N installation Secrets carries it (p50/p99/max
//      and total), after the same for a bare watch-then-write fan-out (this file run as its own
//      process: one watched source Secret, N copies written with --workers' 8 at once) on the
//      same apiserver in the same run;
//   4. operator memory: RSS after the installs, during the steady window and after a forced GC
//      (heap probe), the high-water mark (VmHWM), and CPU seconds of the operator, kube-apiserver
//      and etcd per phase.
// Knobs: BENCH_OPERATOR=src runs src/main.ts instead of the build; BENCH_FAN_OUT_CONCURRENCY
// (default 8) for the baseline; BENCH_CPU_PROF=DIR profiles the operator (bench/cpu-summary.ts). Run: npm run bench:installations
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { loadKubeConfigFile } from '../src/kube/kubeconfig.ts';
import { KubeHTTP } from '../src/kube/http.ts';
import { KubeClient } from '../src/kube/client.ts';
import { isNotFound } from '../src/kube/errors.ts';
import { Informer } from '../src/kube/informer.ts';
import { encodeData, type Secret } from '../src/kube/objects.ts';
import { freePort } from '../src/localcluster/ports.ts';
import { createLogger } from '../src/log.ts';
import {
  apiserverRequests,
  buckets,
  buildOperator,
  controlPlanePids,
  cpuSeconds,
  deployEnvironment,
  forcedGCHeap,
  forEachLimited,
  mib,
  ms,
  operatorArgs,
  operatorMetrics,
  processMemory,
  removeOperatorBuild,
  randomPeakToMean,
  requestDelta,
  seconds,
  sleep,
  startBenchCluster,
  startOperatorProcess,
  sumOf,
  summarize,
  waitFor,
  writeVerbs,
} from './harness.ts';
import { createBenchSandbox } from './sandbox.ts';

const log = (line: string) => process.stdout.write(`${line}\n`);
const silent = createLogger({ level: 'silent' });
type AppView = { status?: { conditions?: Array<{ type: string; status: string; reason?: string }> } };
const decoded = (secret: Secret | undefined, key: string) => (secret?.data?.[key] === undefined ? undefined : Buffer.from(secret.data[key], 'base64').toString('utf8'));

if (process.argv[2] === '--fan-out-copier') await fanOutCopier(process.argv.slice(3));
else await benchmark();

/**
 * The yardstick, in its own process: a bare watch-then-write fan-out. It watches one Secret
 * (labelled bench-role=fan-out-source) and on every change writes its data to `fan-out-copy-<i>`,
 * i < COUNT, CONCURRENCY at once: no cache beyond the watch, no reads, nothing to decide.
 */
async function fanOutCopier([kubeconfigPath, namespace, count, concurrency]: string[]): Promise<void> {
  if (!kubeconfigPath || !namespace || !count || !concurrency) throw new Error('usage: installations.ts --fan-out-copier KUBECONFIG NAMESPACE COUNT CONCURRENCY');
  const http = await KubeHTTP.fromKubeConfig(loadKubeConfigFile(kubeconfigPath));
  const kube = new KubeClient(http);
  const indexes = Array.from({ length: Number(count) }, (_, index) => index);
  const source = new Informer<Secret>({ name: 'fan-out-source', http, path: `/api/v1/namespaces/${namespace}/secrets`, labelSelector: 'bench-role=fan-out-source', logger: silent });
  source.on((event, secret) => {
    if (event === 'deleted') return;
    void forEachLimited(indexes, Number(concurrency), async (index) => {
      const copy: Secret = { metadata: { name: `fan-out-copy-${index}`, namespace, labels: { 'bench-role': 'fan-out-copy' } }, type: 'Opaque', data: secret.data ?? {} };
      await kube.replaceSecret(namespace, copy).catch(async (error: unknown) => {
        if (isNotFound(error)) await kube.createSecret(namespace, copy);
        else throw error;
      });
    }).catch((error: unknown) => process.stderr.write(`fan-out copy failed: ${String(error)}\n`));
  });
  source.start();
  await source.synced;
  process.on('SIGTERM', () => void source.stop().then(() => http.close()).then(() => process.exit(0)));
}

async function benchmark(): Promise<void> {
  const installations = Number(process.env.BENCH_INSTALLATIONS ?? 10_000);
  const steadySeconds = Number(process.env.BENCH_STEADY_SECONDS ?? 60);
  // Each installation refreshes about every 0.63 lifetimes: at least once in the window, and the
  // schedule asks for at most ≈ 50 refreshes/s (at 10,000 installations: 334 s tokens).
  const lifetimeSeconds = Number(process.env.BENCH_LIFETIME ?? Math.max(Math.round(1.5 * steadySeconds), Math.ceil(installations / 50 / 0.6)));
  const installConcurrency = Number(process.env.BENCH_INSTALL_CONCURRENCY ?? 16);
  const fanOutConcurrency = Number(process.env.BENCH_FAN_OUT_CONCURRENCY ?? 8);
  const callbackRateLimit = process.env.BENCH_CALLBACK_RATE_LIMIT ?? '100000/min';
  // The operator's floor between two token requests of one installation (default 30 s) must stay
  // below the refresh interval (about 0.6–0.67 of the lifetime) or it would set every refresh time.
  const minRefreshInterval = Math.min(30, Math.max(1, Math.floor(lifetimeSeconds / 2)));
  const appNamespace = 'bench';
  const baselineNamespace = 'baseline';
  const operatorNamespace = 'oauthapp-system';
  const appName = 'bench-app';
  const firstCompany = 100_001;
  const { NODE_OPTIONS: deployNodeOptions = '', ...deployEnv } = await deployEnvironment();
  const cpuProfileDir = process.env.BENCH_CPU_PROF;
  const nodeArgs = [...deployNodeOptions.split(' ').filter(Boolean), ...(cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`, '--cpu-prof-name=operator-installations.cpuprofile'] : [])];
  const fromSource = process.env.BENCH_OPERATOR === 'src';

  // No kube-controller-manager (as bench:scale): nothing is deleted, and its garbage collector would watch every Secret on the same 2 cores.
  const cluster = await startBenchCluster({ controllerManager: false });
  const { kube, http } = cluster;
  const refreshTimes: number[] = [];
  const sandbox = createBenchSandbox({
    expiresInAt: () => lifetimeSeconds,
    onToken: ({ at, grantType }) => void (grantType === 'refresh_token' && refreshTimes.push(at)),
  });
  const callbackPort = await freePort();
  const metricsPort = await freePort();
  const callbackURL = `http://127.0.0.1:${callbackPort}/oauth/callback`;
  const redirectURI = `${callbackURL}/${appName}`;
  const client = sandbox.registerClient({ redirectUri: redirectURI });
  const sandboxURL = await sandbox.listen({ host: '127.0.0.1', port: 0 });
  const main = fromSource ? undefined : await buildOperator();
  const secret = (name: string, namespace: string, data: Record<string, string>, labels: Record<string, string> = {}): Secret => ({ metadata: { name, namespace, labels }, type: 'Opaque', data: encodeData(data) });
  /** Token requests the sandbox answered, by grant and outcome: `grant outcome` → count. */
  const tokenOutcomes = () => {
    const stats = sandbox.stats();
    return new Map([
      ...Object.entries(stats.byGrant).flatMap(([grant, outcomes]) => Object.entries(outcomes).map(([outcome, count]) => [`${grant} ${outcome}`, count ?? 0] as const)),
      // Included in refresh_token above: the operator's client-secret checks (a made-up refresh token, answered invalid_grant).
      ['of which client checks', stats.clientChecks.length] as const,
    ]);
  };
  const outcomeDelta = (before: Map<string, number>, after: Map<string, number>) =>
    [...after].map(([key, count]) => [key, count - (before.get(key) ?? 0)] as const).filter(([, count]) => count !== 0).map(([key, count]) => `${key} ${count}`).join(', ') || 'none';

  // The installations' Secrets, watched: when each first held an access token, and when it changed.
  const companies = Array.from({ length: installations }, (_, index) => firstCompany + index);
  const secretName = (company: number) => `${appName}-${company}`;
  const tokenAt = new Map<string, number>();
  const firstToken = new Map<string, string>();
  const refreshedOnce = new Set<string>();
  const waitingFor = new Map<string, (name: string, at: number) => void>();
  const targets = new Informer<Secret>({ name: 'targets', http, path: `/api/v1/namespaces/${appNamespace}/secrets`, labelSelector: `oauthapp.dev/app=${appName}`, logger: silent });
  targets.on((event, object) => {
    if (event === 'deleted') return;
    const at = performance.now();
    const name = object.metadata.name;
    const accessToken = decoded(object, 'access_token');
    if (accessToken !== undefined && !tokenAt.has(name)) {
      tokenAt.set(name, at);
      firstToken.set(name, accessToken);
    } else if (accessToken !== undefined && accessToken !== firstToken.get(name)) refreshedOnce.add(name);
    const clientSecret = decoded(object, 'client_secret');
    if (clientSecret !== undefined) waitingFor.get(clientSecret)?.(name, at);
  });
  const copies = new Informer<Secret>({ name: 'copies', http, path: `/api/v1/namespaces/${baselineNamespace}/secrets`, labelSelector: 'bench-role=fan-out-copy', logger: silent });
  copies.on((event, object) => {
    if (event === 'deleted') return;
    const value = decoded(object, 'client_secret');
    if (value !== undefined) waitingFor.get(value)?.(object.metadata.name, performance.now());
  });

  // Resident memory sampled every 500 ms for the whole run; CPU seconds per phase.
  let sampling = true;
  let peakSampledRss = 0;
  const cpuPids = await controlPlanePids(cluster);
  const cpu = async (pid: number) => {
    const figures: Record<string, number> = { operator: await cpuSeconds(pid) };
    for (const [name, cpuPid] of cpuPids) figures[name] = await cpuSeconds(cpuPid);
    return figures;
  };
  const cpuDelta = (before: Record<string, number>, after: Record<string, number>) => Object.keys(after).map((name) => `${name} ${((after[name] ?? 0) - (before[name] ?? 0)).toFixed(1)} s`).join(', ');
  const rows: string[] = [];
  const ourResources = new Set(['secrets', 'oauthapps', 'oauthapps/status', 'oauthinstallations', 'oauthinstallations/status', 'events']);
  /** `VERB resource count/each`, our resources only, writes first. */
  const perEach = (requests: Map<string, number>, each: number) =>
    [...requests]
      .filter(([key]) => ourResources.has(key.split(' ')[1] ?? ''))
      .sort(([a], [b]) => Number(!writeVerbs.has(a.split(' ')[0] ?? '')) - Number(!writeVerbs.has(b.split(' ')[0] ?? '')) || a.localeCompare(b))
      .map(([key, count]) => `${key} ${(count / Math.max(1, each)).toFixed(2)}`)
      .join(', ');

  let operator: ReturnType<typeof startOperatorProcess> | undefined;
  let copier: ReturnType<typeof fork> | undefined;
  try {
    for (const namespace of [appNamespace, baselineNamespace, operatorNamespace]) await cluster.kubectl(['create', 'namespace', namespace]);
    targets.start();
    copies.start();
    await Promise.all([targets.synced, copies.synced]);
    log(`kube-apiserver ${cluster.controlPlane.version}; operator ${main ?? 'src/main.ts'}, node flags ${nodeArgs.join(' ') || 'none'}; ${installations} installations, ${installConcurrency} install requests at once; tokens live ${lifetimeSeconds} s`);
    log(`operator flags beyond the harness's: --callback-rate-limit=${callbackRateLimit} (default 60/min per client IP: every install here comes from 127.0.0.1), --min-refresh-interval=${minRefreshInterval}`);

    await kube.createSecret(appNamespace, secret(`${appName}-client`, appNamespace, { client_secret: client.clientSecret }));
    await http.json({
      method: 'POST',
      path: `/apis/oauthapp.dev/v1alpha1/namespaces/${appNamespace}/oauthapps`,
      body: {
        apiVersion: 'oauthapp.dev/v1alpha1',
        kind: 'OAuthApp',
        metadata: { name: appName },
        spec: {
          provider: 'pipedrive',
          tokenURL: `${sandboxURL}/oauth/token`,
          authorizeURL: `${sandboxURL}/oauth/authorize`,
          revokeURL: `${sandboxURL}/oauth/revoke`,
          clientId: client.clientId,
          clientSecretRef: { name: `${appName}-client`, key: 'client_secret' },
          redirectURI,
          installations: 'multiple',
        },
      },
    });

    const operatorStarted = performance.now();
    operator = startOperatorProcess(operatorArgs(cluster, [appNamespace], operatorNamespace, metricsPort, [`--callback-addr=127.0.0.1:${callbackPort}`, `--callback-rate-limit=${callbackRateLimit}`, `--min-refresh-interval=${minRefreshInterval}`]), {
      nodeArgs,
      heapProbe: true,
      env: { ...deployEnv, ...(main ? { NODE_ENV: 'production' } : {}) },
      ...(main ? { main } : {}),
    });
    const pid = operator.child.pid!;
    void (async () => {
      while (sampling && operator?.child.exitCode === null) {
        peakSampledRss = Math.max(peakSampledRss, (await processMemory(pid).catch(() => ({ rss: 0 }))).rss);
        await sleep(500);
      }
    })();
    await waitFor('the app accepting installations', async () => {
      const app = (await http.json({ method: 'GET', path: `/apis/oauthapp.dev/v1alpha1/namespaces/${appNamespace}/oauthapps/${appName}` })) as AppView;
      return app.status?.conditions?.some((condition) => condition.type === 'Ready' && condition.reason === 'AcceptingInstallations') === true;
    }, 120_000);
    log(`operator started; the app accepts installations ${seconds(performance.now() - operatorStarted)} after start`);

    // 1. Installs.
    const cpuBeforeInstalls = await cpu(pid);
    const requestsBeforeInstalls = await apiserverRequests(cluster);
    const outcomesBeforeInstalls = tokenOutcomes();
    const sentAt = new Map<string, number>();
    const answerMs: number[] = [];
    const refusals = new Map<string, number>();
    let lastSent = '';
    const installsStarted = performance.now();
    await forEachLimited(companies, installConcurrency, async (company) => {
      const { redirectURL } = sandbox.marketplaceInstall(client.clientId, company);
      const started = performance.now();
      sentAt.set(secretName(company), started);
      lastSent = secretName(company);
      const response = await fetch(redirectURL, { redirect: 'manual' });
      const body = await response.text();
      answerMs.push(performance.now() - started);
      if (response.status === 200) return;
      const reason = `${response.status} ${/reason[^a-z_]*([a-z_]+)/.exec(body)?.[1] ?? body.slice(0, 80)}`;
      refusals.set(reason, (refusals.get(reason) ?? 0) + 1);
    });
    const allSent = performance.now();
    if (refusals.size > 0) log(`install requests refused: ${[...refusals].map(([reason, count]) => `${reason} × ${count}`).join(', ')}`);
    await waitFor(`${installations} installation Secrets with an access token`, () => companies.every((company) => tokenAt.has(secretName(company))), 1_800_000, 200);
    const allInstalled = Math.max(...tokenAt.values());
    const memoryAfterInstalls = await processMemory(pid);
    const heapAfterInstalls = sumOf(await operatorMetrics(metricsPort), 'nodejs_heap_size_used_bytes');
    const installLatency = summarize(companies.map((company) => (tokenAt.get(secretName(company)) ?? Number.NaN) - (sentAt.get(secretName(company)) ?? Number.NaN)));
    const answers = summarize(answerMs);
    const lastMs = (tokenAt.get(lastSent) ?? Number.NaN) - (sentAt.get(lastSent) ?? Number.NaN);
    log(`installed ${installations} in ${seconds(allInstalled - installsStarted)} (requests sent over ${seconds(allSent - installsStarted)}); last request → its Secret ${ms(lastMs)}; RSS ${mib(memoryAfterInstalls.rss)}, heap used ${mib(heapAfterInstalls)}`);
    const installRequests = requestDelta(requestsBeforeInstalls, await apiserverRequests(cluster));
    log(`  CPU during installs: ${cpuDelta(cpuBeforeInstalls, await cpu(pid))}; token requests: ${outcomeDelta(outcomesBeforeInstalls, tokenOutcomes())}`);
    log(`  apiserver requests during installs (secrets, oauthapps, oauthinstallations, events): ${perEach(installRequests, installations)} per install (refreshes of early installs included)`);
    rows.push(`| callback answer (GET of the redirect URI, ${installConcurrency} at once) | ${answers.n} | ${ms(answers.p50)} | ${ms(answers.p99)} | ${ms(answers.max)} |`);
    rows.push(`| install request → its Secret holds an access_token | ${installLatency.n} | ${ms(installLatency.p50)} | ${ms(installLatency.p99)} | ${ms(installLatency.max)} |`);

    // 2. Refresh smoothness, once every installation has refreshed at least once.
    const warmupStarted = performance.now();
    await waitFor('every installation refreshed once', () => refreshedOnce.size >= installations, (3 * lifetimeSeconds + 300) * 1000, 500);
    log(`every installation refreshed at least once ${seconds(performance.now() - warmupStarted)} after the last install; steady window of ${steadySeconds} s starts`);
    const cpuBeforeSteady = await cpu(pid);
    const requestsBeforeSteady = await apiserverRequests(cluster);
    const outcomesBeforeSteady = tokenOutcomes();
    const windowStart = Date.now();
    const expiredSeen = new Set<string>();
    let peakSteadyRss = 0;
    while (Date.now() < windowStart + steadySeconds * 1000) {
      const now = Date.now();
      for (const target of targets.list()) {
        const expiresAt = decoded(target, 'expires_at');
        if (expiresAt !== undefined && Date.parse(expiresAt) <= now) expiredSeen.add(target.metadata.name);
      }
      peakSteadyRss = Math.max(peakSteadyRss, (await processMemory(pid)).rss);
      await sleep(1000);
    }
    const windowEnd = windowStart + steadySeconds * 1000;
    const windowTimes = refreshTimes.filter((time) => time >= windowStart && time < windowEnd);
    const steadyCpu = cpuDelta(cpuBeforeSteady, await cpu(pid));
    const steadyRequests = requestDelta(requestsBeforeSteady, await apiserverRequests(cluster));
    const steadyOutcomes = outcomeDelta(outcomesBeforeSteady, tokenOutcomes());
    const smooth = buckets(refreshTimes, { start: windowStart, end: windowEnd });
    // No refresh in the window: every installation's next one falls after it (installs sent within
    // less than two thirds of a lifetime refresh in a burst, then pause); a longer window sees them.
    const random = windowTimes.length > 0 ? randomPeakToMean(windowTimes.length, steadySeconds) : Number.NaN;
    if (windowTimes.length === 0) log(`no refresh fell in the ${steadySeconds} s window: the installs came within less than two thirds of a token lifetime (${lifetimeSeconds} s), so refreshes come in bursts with pauses between them; a window of at least ${Math.ceil((lifetimeSeconds * 2) / 3)} s sees one whole cycle`);
    // The same refreshes from the window's first to its last (smoothing.ts's span).
    const span = windowTimes.length > 0 ? buckets(windowTimes) : undefined;
    // refreshTime(): the renewal point at two thirds of the lifetime, jittered over the last tenth before it.
    const expectedPerSecond = installations / (lifetimeSeconds * (2 / 3 - 2 / 3 / 20));
    const heapSteady = sumOf(await operatorMetrics(metricsPort), 'nodejs_heap_size_used_bytes');

    // 3. Client-secret propagation: the bare fan-out first, then the operator, both while refreshes go on.
    const propagate = async (label: string, names: readonly string[], value: string, write: (value: string) => Promise<void>) => {
      const seen = new Map<string, number>();
      const pending = new Set(names);
      let done!: () => void;
      const all = new Promise<void>((resolve) => (done = resolve));
      waitingFor.set(value, (name, at) => {
        if (!pending.delete(name)) return;
        seen.set(name, at);
        if (pending.size === 0) done();
      });
      const started = performance.now();
      await write(value);
      const timeout = setTimeout(() => done(), 1_200_000);
      await all;
      clearTimeout(timeout);
      waitingFor.delete(value);
      if (pending.size > 0) log(`${label}: ${pending.size} of ${names.length} never carried the new value (20 min)`);
      const perSecret = summarize([...seen.values()].map((at) => at - started));
      return { label, perSecret, totalMs: Math.max(...seen.values()) - started };
    };
    copier = fork(import.meta.filename, ['--fan-out-copier', cluster.controlPlane.adminKubeconfigPath, baselineNamespace, String(installations), String(fanOutConcurrency)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    await kube.createSecret(baselineNamespace, secret('fan-out-source', baselineNamespace, { client_secret: 'initial' }, { 'bench-role': 'fan-out-source' }));
    await waitFor('the fan-out copies', () => copies.list().length >= installations, 1_200_000, 200);
    const copyNames = Array.from({ length: installations }, (_, index) => `fan-out-copy-${index}`);
    const baseline = await propagate(`bare watch-then-write fan-out (${fanOutConcurrency} writes at once)`, copyNames, `baseline-${randomBytes(8).toString('hex')}`, async (value) => {
      await kube.replaceSecret(baselineNamespace, secret('fan-out-source', baselineNamespace, { client_secret: value }, { 'bench-role': 'fan-out-source' }));
    });
    copier.kill('SIGTERM');
    const outcomesBeforeRotation = tokenOutcomes();
    const cpuBeforeRotation = await cpu(pid);
    const rotated = `rotated-${randomBytes(16).toString('hex')}`;
    const ours = await propagate('oauthapp-operator', companies.map(secretName), rotated, async (value) => {
      sandbox.rotateClientSecret(client.clientId, value);
      await kube.replaceSecret(appNamespace, secret(`${appName}-client`, appNamespace, { client_secret: value }));
    });
    const rotationCpu = cpuDelta(cpuBeforeRotation, await cpu(pid));
    await sleep(5000);
    const rotationOutcomes = outcomeDelta(outcomesBeforeRotation, tokenOutcomes());
    const listed = (await http.json({ method: 'GET', path: `/apis/oauthapp.dev/v1alpha1/namespaces/${appNamespace}/oauthinstallations` })) as { items: AppView[] };
    const readyAfterRotation = listed.items.filter((installation) => installation.status?.conditions?.some((condition) => condition.type === 'Ready' && condition.status === 'True')).length;
    const expiredAfterRotation = targets.list().filter((target) => Date.parse(decoded(target, 'expires_at') ?? '') <= Date.now()).length;

    // 4. Memory once it has settled: a forced full GC.
    const heap = await forcedGCHeap(operator.child);
    await sleep(1000);
    const settled = await processMemory(pid);
    sampling = false;

    log('');
    log(`public app, ${installations} installations (one OAuthApp, installations: multiple; operator ${main ? 'built (dist/main.js)' : 'from src/'}, --callback-rate-limit=${callbackRateLimit}, --min-refresh-interval=${minRefreshInterval})`);
    log('');
    log(`installs: all ${installations} in ${seconds(allInstalled - installsStarted)} (first request → last Secret with an access_token; ${(installations / ((allInstalled - installsStarted) / 1000)).toFixed(1)} installs/s); the last request sent → its Secret: ${ms(lastMs)}`);
    log('| step | samples | p50 | p99 | max |');
    log('|---|---|---|---|---|');
    for (const row of rows) log(row);
    log('');
    log(`refresh smoothness over ${steadySeconds} s of steady state (tokens live ${lifetimeSeconds} s; 1 s buckets of the refreshes the provider answered)`);
    log('| refreshes | count | mean / s | peak / s | peak-to-mean |');
    log('|---|---|---|---|---|');
    log(`| seen by the provider over the ${steadySeconds} s window | ${windowTimes.length} | ${smooth.mean.toFixed(1)} | ${smooth.peak} | ${smooth.peakToMean.toFixed(2)} |`);
    if (span) log(`| the same, from the window's first refresh to its last (${span.windowSeconds} s) | ${windowTimes.length} | ${span.mean.toFixed(1)} | ${span.peak} | ${span.peakToMean.toFixed(2)} |`);
    log(`| reference: ${windowTimes.length} independent uniform random times over ${steadySeconds} s (median of 500) | | ${(windowTimes.length / steadySeconds).toFixed(1)} | | ${random.toFixed(2)} |`);
    log(`| the schedule's demand (N ÷ the mean refresh interval, ${(installations / expectedPerSecond).toFixed(1)} s) | | ${expectedPerSecond.toFixed(1)} | | |`);
    log(`installations whose Secret held an expired access token at a 1 s sample in the window: ${expiredSeen.size}; token requests in the window: ${steadyOutcomes}; CPU: ${steadyCpu}`);
    log(`apiserver requests per refresh in the window: ${perEach(steadyRequests, windowTimes.length)}`);
    log(`per-second counts over the window: ${smooth.counts.join(' ')}`);
    log(`(the installs were sent over ${seconds(allSent - installsStarted)}; an installation's refresh time moves by at most a tenth of two thirds of the lifetime per refresh, so installs sent in a shorter burst than one refresh interval still refresh in a burst)`);
    log('');
    log(`client-secret propagation: the app's client Secret (and, just before, the sandbox) rotated → each of the ${installations} Secrets carries the new secret; refreshes go on meanwhile`);
    log('| loop | Secrets | p50 | p99 | max (= total) |');
    log('|---|---|---|---|---|');
    for (const run of [baseline, ours]) log(`| ${run.label} | ${run.perSecret.n} | ${ms(run.perSecret.p50)} | ${ms(run.perSecret.p99)} | ${ms(run.totalMs)} |`);
    log(`| ratio operator / bare | | ${(ours.perSecret.p50 / baseline.perSecret.p50).toFixed(2)}x | ${(ours.perSecret.p99 / baseline.perSecret.p99).toFixed(2)}x | ${(ours.totalMs / baseline.totalMs).toFixed(2)}x |`);
    log(`token requests from the rotation until 5 s after the last Secret: ${rotationOutcomes}; operator CPU while propagating: ${rotationCpu}`);
    log(`5 s after the last Secret: ${readyAfterRotation} of ${listed.items.length} OAuthInstallations Ready=True, ${expiredAfterRotation} Secrets with an expired access token`);
    log('');
    log('operator memory');
    log('| after all installs: RSS / heap used | steady window: peak RSS / heap used | peak RSS (VmHWM) | sampled peak RSS | heap after forced GC: used / committed | RSS after GC |');
    log('|---|---|---|---|---|---|');
    log(`| ${mib(memoryAfterInstalls.rss)} / ${mib(heapAfterInstalls)} | ${mib(peakSteadyRss)} / ${mib(heapSteady)} | ${mib(settled.peak)} | ${mib(peakSampledRss)} | ${mib(heap.used)} / ${mib(heap.committed)} | ${mib(settled.rss)} |`);
    log('');
    log(`BENCH_RESULT ${JSON.stringify({ installations, lifetimeSeconds, steadySeconds, installMs: allInstalled - installsStarted, lastMs, installLatency, answers, smooth: { count: windowTimes.length, peak: smooth.peak, mean: smooth.mean, peakToMean: smooth.peakToMean, spanSeconds: span?.windowSeconds, spanPeakToMean: span?.peakToMean, random }, expired: expiredSeen.size, baseline, ours, memory: { afterInstalls: memoryAfterInstalls, heapAfterInstalls, peakSteadyRss, heapSteady, heap, settled } })}`);
  } finally {
    sampling = false;
    if (copier && copier.exitCode === null) copier.kill('SIGTERM');
    await operator?.stop();
    await Promise.all([targets.stop(), copies.stop()]);
    await sandbox.close();
    await cluster.stop();
    if (main) await removeOperatorBuild(main);
  }
}
