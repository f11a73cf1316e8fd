// Scale: BENCH_APPS OAuthApps (default 10,000) on one operator. Measures the operator's resident
// memory once every app is Ready, and its cold start (process start → every app Ready, read from
// its own oauthapp_ready gauges) for (a) a first start, where every app needs its initial refresh,
// and (b) a restart when every app is already Ready and no refresh is due. Goals: ≤ 256 MiB,
// ≤ 60 s. BENCH_CPU_PROF=DIR writes a V8 CPU profile of each operator run into DIR;
// BENCH_HEAP_SNAPSHOT=DIR a heap snapshot of each once every app is Ready (bench/heap-summary.ts
// sums one up by constructor); BENCH_NODE_ARGS adds node flags to the operator's command line.
// Run: npm run bench:scale
import { readdir } from 'node:fs/promises';
import { freePort } from '../src/localcluster/ports.ts';
import { controlPlanePids, cpuSeconds, createOAuthApps, mib, operatorArgs, operatorMetrics, rssBytes, seconds, sleep, startBenchCluster, startOperatorProcess, sumOf, waitFor } from './harness.ts';
import { createBenchSandbox } from './sandbox.ts';

const apps = Number(process.env.BENCH_APPS ?? 10_000);
const cpuProfileDir = process.env.BENCH_CPU_PROF;
const heapSnapshotDir = process.env.BENCH_HEAP_SNAPSHOT;
/** Extra node flags for the operator, e.g. BENCH_NODE_ARGS=--max-old-space-size=192. */
const extraNodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
const appNamespace = 'bench';
const operatorNamespace = 'oauthapp-system';
const log = (line: string) => process.stdout.write(`${line}\n`);

let refreshes = 0;
// No kube-controller-manager: its garbage collector would watch 30,000 Secrets on the same 2 cores.
const cluster = await startBenchCluster({ controllerManager: false });
const sandbox = createBenchSandbox({ expiresIn: 3600, onToken: ({ grantType }) => void (grantType === 'refresh_token' && (refreshes += 1)) });
const client = sandbox.registerClient({ redirectUri: 'http://127.0.0.1:8081/oauth/callback' });
const sandboxURL = await sandbox.listen({ host: '127.0.0.1', port: 0 });

interface Run {
  name: string;
  readyMs: number;
  refreshes: number;
  rssReady: number;
  rssPeak: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  /** CPU seconds used until every app was Ready, by process. */
  cpu: Record<string, number>;
}

/** Starts the operator, waits until every app is Ready by its own gauges, samples its memory. */
async function runOperator(name: string): Promise<Run> {
  const metricsPort = await freePort();
  const refreshesBefore = refreshes;
  const cpuPids = await controlPlanePids(cluster);
  const cpuBefore = new Map(await Promise.all([...cpuPids].map(async ([process, pid]) => [process, await cpuSeconds(pid)] as const)));
  const benchCpuBefore = process.cpuUsage();
  const started = performance.now();
  const nodeArgs = [
    ...extraNodeArgs,
    ...(cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`, `--cpu-prof-name=operator-${name.split(' ')[0]}.cpuprofile`] : []),
    ...(heapSnapshotDir ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${heapSnapshotDir}`] : []),
  ];
  const operator = startOperatorProcess(operatorArgs(cluster, [appNamespace], operatorNamespace, metricsPort), { nodeArgs });
  const pid = operator.child.pid!;
  let rssPeak = 0;
  let readyMs = Number.NaN;
  try {
    await waitFor(`${name}: every app Ready`, async () => {
      rssPeak = Math.max(rssPeak, await rssBytes(pid).catch(() => 0));
      const samples = await operatorMetrics(metricsPort).catch(() => undefined);
      return samples !== undefined && sumOf(samples, 'oauthapp_ready') >= apps;
    }, 1_800_000, 1000);
    readyMs = performance.now() - started;
    const cpu: Record<string, number> = { operator: await cpuSeconds(pid) };
    for (const [process, cpuPid] of cpuPids) cpu[process] = (await cpuSeconds(cpuPid)) - (cpuBefore.get(process) ?? 0);
    const benchCpu = process.cpuUsage(benchCpuBefore);
    cpu['benchmark + sandbox'] = (benchCpu.user + benchCpu.system) / 1e6;
    log(`${name}: all ${apps} apps Ready ${seconds(readyMs)} after the operator started (${refreshes - refreshesBefore} refreshes)`);
    await sleep(5000);
    const samples = await operatorMetrics(metricsPort);
    const rssReady = await rssBytes(pid);
    if (heapSnapshotDir) {
      const before = new Set(await readdir(heapSnapshotDir));
      operator.child.kill('SIGUSR2');
      await waitFor('the heap snapshot', async () => (await readdir(heapSnapshotDir)).some((file) => !before.has(file) && file.endsWith('.heapsnapshot')), 300_000, 1000);
      await sleep(10_000);
      log(`heap snapshot in ${heapSnapshotDir}: ${(await readdir(heapSnapshotDir)).filter((file) => !before.has(file)).join(', ')}`);
    }
    return { name, readyMs, cpu, refreshes: refreshes - refreshesBefore, rssReady, rssPeak: Math.max(rssPeak, rssReady), heapUsed: sumOf(samples, 'nodejs_heap_size_used_bytes'), heapTotal: sumOf(samples, 'nodejs_heap_size_total_bytes'), external: sumOf(samples, 'nodejs_external_memory_bytes') };
  } finally {
    await operator.stop();
  }
}

try {
  for (const namespace of [appNamespace, operatorNamespace]) await cluster.kubectl(['create', 'namespace', namespace]);
  const names = Array.from({ length: apps }, (_, index) => `app-${index}`);
  log(`creating ${apps} OAuthApps (+ ${2 * apps} Secrets) on kube-apiserver ${cluster.controlPlane.version} (no kube-controller-manager)`);
  const setupStarted = Date.now();
  await createOAuthApps({ cluster, namespace: appNamespace, names, clientId: client.clientId, clientSecret: client.clientSecret, issueRefreshToken: () => sandbox.issueRefreshToken(client.clientId), tokenURL: `${sandboxURL}/oauth/token` });
  log(`created in ${seconds(Date.now() - setupStarted)}`);

  const first = await runOperator('first start (every app needs its initial refresh)');
  const restart = await runOperator('restart (every app Ready, no refresh due)');

  log('');
  log(`scale, ${apps} OAuthApps on one operator (${2 * apps} Secrets of theirs in the namespace, ${apps} state Secrets)`);
  log('| run | start → all Ready | refreshes | RSS when all Ready | peak RSS | V8 heap used / committed | external |');
  log('|---|---|---|---|---|---|---|');
  for (const run of [first, restart]) log(`| ${run.name} | ${seconds(run.readyMs)} | ${run.refreshes} | ${mib(run.rssReady)} | ${mib(run.rssPeak)} | ${mib(run.heapUsed)} / ${mib(run.heapTotal)} | ${mib(run.external)} |`);
  log(`| goal | ≤ 60.0 s (first: ${first.readyMs <= 60_000 ? 'met' : 'missed'}, restart: ${restart.readyMs <= 60_000 ? 'met' : 'missed'}) | | ≤ 256 MiB (${Math.max(first.rssReady, restart.rssReady) <= 256 * 1024 * 1024 ? 'met' : 'missed'}) | | | |`);
  log('');
  log('CPU seconds used from operator start until every app was Ready (2 cores; the sandbox runs in the benchmark process):');
  log(`| run | wall | ${Object.keys(first.cpu).join(' | ')} |`);
  log(`|---|---|${Object.keys(first.cpu).map(() => '---').join('|')}|`);
  for (const run of [first, restart]) log(`| ${run.name.split(' ')[0]} | ${seconds(run.readyMs)} | ${Object.keys(first.cpu).map((process) => `${(run.cpu[process] ?? Number.NaN).toFixed(1)} s`).join(' | ')} |`);
} finally {
  await sandbox.close();
  await cluster.stop();
}
