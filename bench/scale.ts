// Scale: BENCH_APPS OAuthApps (default 10,000) on one operator, beside BENCH_UNRELATED_SECRETS
// unrelated Secrets (default 50,000, in 10 other namespaces; a fifth of them carry a client-side
// `kubectl apply` annotation of about 4 KiB), the operator run as deploy/ runs it: built with
// tsconfig.build.json (node dist/main.js, NODE_ENV=production), every namespace watched, and the
// node flags of deploy/base/deployment.yaml (its --max-old-space-size). Two runs:
//   (a) first start: every app needs its initial refresh; then BENCH_STEADY_SECONDS (default 400)
//       of steady state, with --relist-interval=1 so that every cache relists (paged) at its next
//       watch timeout (240–360 s) inside that window;
//   (b) restart: every app Ready, no refresh due.
// Per run: process start → every app Ready (its own oauthapp_ready gauges, scraped every 2–15 s:
// scrapeIntervalMs, and /readyz), the peak resident memory (the kernel's VmHWM) and its anonymous /
// file-backed split, the heap after a forced full GC (an IPC probe loaded with --expose-gc), CPU seconds of the
// operator, kube-apiserver and etcd (/proc/<pid>/stat), and the apiserver's own request counts.
// Knobs: BENCH_OPERATOR=src runs src/main.ts instead of the build; BENCH_DEPLOY_FLAGS=0 drops
// deploy/'s node flags; BENCH_NODE_ARGS adds node flags; BENCH_CPU_PROF=DIR and
// BENCH_HEAP_SNAPSHOT=DIR as before (bench/cpu-summary.ts, bench/heap-summary.ts); BENCH_MAIN=PATH
// runs another build (e.g. an older commit's dist/main.js) for comparison, BENCH_OPERATOR_FLAGS
// replaces the extra operator flags (default --relist-interval=1).
// Memory limit: each run's operator runs in a memory cgroup limited to deploy/'s container limit
// (bench/memory-cgroup.ts; needs root), as the kubelet would run it, from a node binary not yet in
// the page cache (so the cgroup is charged for the binary too, as a container is), and the run
// reports the cgroup's peak charge, the pages read back from disk after reclaim, and OOM kills (an
// OOM kill ends the run). BENCH_MEMORY_LIMIT=512Mi sets another limit, BENCH_MEMORY_LIMIT=none
// runs unlimited.
// Run: npm run bench:scale
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../src/localcluster/ports.ts';
import { encodeData } from '../src/kube/objects.ts';
import {
  apiserverRequests,
  buildOperator,
  controlPlanePids,
  cpuSeconds,
  createOAuthApps,
  deployEnvironment,
  deployMemoryLimit,
  forcedGCHeap,
  forEachLimited,
  mib,
  operatorArgs,
  operatorMetrics,
  processMemory,
  removeOperatorBuild,
  requestDelta,
  seconds,
  sleep,
  startBenchCluster,
  startOperatorProcess,
  sumOf,
  waitFor,
  writeVerbs,
  type ForcedGCHeap,
  type ProcessMemory,
} from './harness.ts';
import { createBenchSandbox } from './sandbox.ts';
import { createMemoryCgroup, parseMemoryQuantity, uncachedCopyOfNode, type CgroupUsage } from './memory-cgroup.ts';

const apps = Number(process.env.BENCH_APPS ?? 10_000);
const unrelatedSecrets = Number(process.env.BENCH_UNRELATED_SECRETS ?? 50_000);
const steadySeconds = Number(process.env.BENCH_STEADY_SECONDS ?? 400);
const cpuProfileDir = process.env.BENCH_CPU_PROF;
const heapSnapshotDir = process.env.BENCH_HEAP_SNAPSHOT;
// As deploy/ runs it: its NODE_OPTIONS (heap flags) as node flags, its other variables as they are.
const { NODE_OPTIONS: deployNodeOptions = '', ...deployEnv } = process.env.BENCH_DEPLOY_FLAGS === '0' ? {} : await deployEnvironment();
const extraNodeArgs = [...deployNodeOptions.split(' ').filter(Boolean), ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)];
/** BENCH_OPERATOR_ENV="NAME=value …": more environment for the operator (e.g. MALLOC_ARENA_MAX=2). */
const operatorEnv = { ...deployEnv, ...Object.fromEntries((process.env.BENCH_OPERATOR_ENV ?? '').split(' ').filter(Boolean).map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)])) };
/** Operator flags beyond the harness's; an older build without --relist-interval needs BENCH_OPERATOR_FLAGS=''. */
const operatorFlags = (process.env.BENCH_OPERATOR_FLAGS ?? '--relist-interval=1').split(' ').filter(Boolean);
const memoryLimitSetting = process.env.BENCH_MEMORY_LIMIT ?? 'deploy';
const memoryLimit = memoryLimitSetting === 'none' ? undefined : memoryLimitSetting === 'deploy' ? await deployMemoryLimit() : parseMemoryQuantity(memoryLimitSetting);
const appNamespace = 'bench';
const operatorNamespace = 'oauthapp-system';
const unrelatedNamespaces = Array.from({ length: 10 }, (_, index) => `unrelated-${index}`);
const cores = availableParallelism();
const log = (line: string) => process.stdout.write(`${line}\n`);

let refreshes = 0;
// No kube-controller-manager: its garbage collector would watch every Secret on the same 2 cores.
const cluster = await startBenchCluster({ controllerManager: false });
const sandbox = createBenchSandbox({ onToken: ({ grantType }) => void (grantType === 'refresh_token' && (refreshes += 1)) });
const client = sandbox.registerClient({ redirectUri: 'http://127.0.0.1:8081/oauth/callback' });
const sandboxURL = await sandbox.listen({ host: '127.0.0.1', port: 0 });
const fromSource = process.env.BENCH_OPERATOR === 'src';
const main = process.env.BENCH_MAIN ?? (fromSource ? undefined : await buildOperator());

interface Run {
  name: string;
  readyMs: number;
  refreshes: number;
  /** At all Ready; `peak` is the process's high-water mark until all Ready. */
  atReady: ProcessMemory;
  /** V8's heap at all Ready, before any forced collection (the operator's /metrics). */
  heapAtReady: { used: number; committed: number };
  /** The highest RSS sampled (every 500 ms) during the steady window, and the window's LISTs. */
  steady?: { seconds: number; peakRss: number; peakAnon: number; lists: number; hwm: number };
  heap: ForcedGCHeap;
  afterGC: ProcessMemory;
  /** CPU seconds used until every app was Ready, by process. */
  cpu: Record<string, number>;
  /** apiserver requests until every app was Ready, `VERB resource` → count. */
  requests: Map<string, number>;
  /** The memory cgroup it ran in, at the end of the run; or why it ran without one. */
  cgroup: { limit: number; usage: CgroupUsage } | { unavailable: string };
}

/**
 * How long to wait before the next /metrics scrape while waiting for every app to be Ready: a
 * twentieth of the time so far, between 2 s and 15 s. A scrape of 10,000 apps' series is a 6 MB
 * answer, so a fixed 2 s poll made the operator's CPU grow with apps × duration (the benchmark's
 * own cost, not the operator's); Prometheus scrapes every 15–60 s. The time to all Ready is still
 * known to within 5 %.
 */
const scrapeIntervalMs = (elapsedMs: number) => Math.min(15_000, Math.max(2000, elapsedMs / 20));

const resourcesOfOurs = new Set(['secrets', 'oauthapps', 'oauthapps/status', 'events', 'leases']);

/** Starts the operator, waits until it is ready and every app is Ready by its own gauges, measures. */
async function runOperator(name: string, options: { steadySeconds: number }): Promise<Run> {
  const metricsPort = await freePort();
  const refreshesBefore = refreshes;
  const cpuPids = await controlPlanePids(cluster);
  const cpuBefore = new Map(await Promise.all([...cpuPids].map(async ([process, pid]) => [process, await cpuSeconds(pid)] as const)));
  const requestsBefore = await apiserverRequests(cluster);
  const benchCpuBefore = process.cpuUsage();
  const started = performance.now();
  const nodeArgs = [
    ...extraNodeArgs,
    ...(cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`, `--cpu-prof-name=operator-${name.split(' ')[0]}.cpuprofile`] : []),
    ...(heapSnapshotDir ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${heapSnapshotDir}`] : []),
  ];
  const cgroup = memoryLimit === undefined ? { unavailable: 'BENCH_MEMORY_LIMIT=none' } : await createMemoryCgroup(`oauthapp-bench-${process.pid}-${name.split(' ')[0]}`, memoryLimit);
  const limited = 'procs' in cgroup ? cgroup : undefined;
  if (!limited) log(`${name}: no memory limit (${'unavailable' in cgroup ? cgroup.unavailable : ''})`);
  // Its own uncached node binary, so the cgroup is charged for the binary's pages as a container's is.
  const nodeDir = limited ? await mkdtemp(join(tmpdir(), 'oauthapp-bench-node-')) : undefined;
  const execPath = nodeDir ? await uncachedCopyOfNode(nodeDir) : undefined;
  const operator = startOperatorProcess(operatorArgs(cluster, [], operatorNamespace, metricsPort, operatorFlags), {
    nodeArgs,
    heapProbe: true,
    ...(limited ? { cgroupProcs: limited.procs } : {}),
    ...(execPath ? { execPath } : {}),
    env: { ...operatorEnv, ...(main ? { NODE_ENV: 'production' } : {}) },
    ...(main ? { main } : {}),
  });
  const pid = operator.child.pid!;
  let readyMs = Number.NaN;
  let samples: Awaited<ReturnType<typeof operatorMetrics>> | undefined;
  try {
    await waitFor(`${name}: every app Ready`, async () => {
      if (operator.child.exitCode !== null || operator.child.signalCode !== null) {
        const oomKills = (await limited?.usage())?.oomKills ?? 0;
        throw new Error(`${name}: the operator exited (${operator.child.signalCode ?? `code ${operator.child.exitCode}`}) before every app was Ready; OOM kills in its ${limited ? mib(limited.limit) : 'unlimited'} cgroup: ${oomKills}`);
      }
      const readyz = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).then((response) => response.ok, () => false);
      if (!readyz) return false;
      samples = await operatorMetrics(metricsPort).catch(() => undefined);
      return samples !== undefined && sumOf(samples, 'oauthapp_ready') >= apps;
    }, 3_600_000, () => scrapeIntervalMs(performance.now() - started));
    readyMs = performance.now() - started;
    const atReady = await processMemory(pid);
    const heapAtReady = { used: sumOf(samples ?? [], 'nodejs_heap_size_used_bytes'), committed: sumOf(samples ?? [], 'nodejs_heap_size_total_bytes') };
    const cpu: Record<string, number> = { operator: await cpuSeconds(pid) };
    for (const [process, cpuPid] of cpuPids) cpu[process] = (await cpuSeconds(cpuPid)) - (cpuBefore.get(process) ?? 0);
    const benchCpu = process.cpuUsage(benchCpuBefore);
    cpu['benchmark + sandbox'] = (benchCpu.user + benchCpu.system) / 1e6;
    const requests = requestDelta(requestsBefore, await apiserverRequests(cluster));
    log(`${name}: all ${apps} apps Ready ${seconds(readyMs)} after the operator started (${refreshes - refreshesBefore} refreshes); RSS ${mib(atReady.rss)}, peak ${mib(atReady.peak)}`);

    let steady: Run['steady'];
    if (options.steadySeconds > 0) {
      const listsBefore = await apiserverRequests(cluster);
      let peakRss = 0;
      let peakAnon = 0;
      const until = Date.now() + options.steadySeconds * 1000;
      while (Date.now() < until) {
        const memory = await processMemory(pid);
        peakRss = Math.max(peakRss, memory.rss);
        peakAnon = Math.max(peakAnon, memory.anon);
        await sleep(500);
      }
      const lists = [...requestDelta(listsBefore, await apiserverRequests(cluster))].filter(([key]) => key.startsWith('LIST ')).reduce((total, [, count]) => total + count, 0);
      steady = { seconds: options.steadySeconds, peakRss, peakAnon, lists, hwm: (await processMemory(pid)).peak };
      log(`${name}: steady ${options.steadySeconds} s: peak RSS ${mib(peakRss)} (anonymous ${mib(peakAnon)}), ${lists} LISTs (relists)`);
    }
    if (heapSnapshotDir) {
      const before = new Set(await readdir(heapSnapshotDir));
      operator.child.kill('SIGUSR2');
      await waitFor('the heap snapshot', async () => (await readdir(heapSnapshotDir)).some((file) => !before.has(file) && file.endsWith('.heapsnapshot')), 300_000, 1000);
      await sleep(10_000);
    }
    const heap = await forcedGCHeap(operator.child);
    await sleep(1000);
    const afterGC = await processMemory(pid);
    log(`${name}: heap after a forced GC ${mib(heap.used)} used / ${mib(heap.committed)} committed; RSS then ${mib(afterGC.rss)}`);
    const cgroupResult = limited ? { limit: limited.limit, usage: await limited.usage() } : (cgroup as { unavailable: string });
    return { name, readyMs, cpu, refreshes: refreshes - refreshesBefore, atReady, heapAtReady, ...(steady ? { steady } : {}), heap, afterGC, requests, cgroup: cgroupResult };
  } finally {
    await operator.stop();
    await limited?.remove().catch((error: unknown) => log(`could not remove ${limited.path}: ${String(error)}`));
    if (nodeDir) await rm(nodeDir, { recursive: true, force: true });
  }
}

/** Secrets that are none of the operator's business; every fifth applied client-side (kubectl's annotation holds a copy of it). */
async function createUnrelatedSecrets(count: number): Promise<void> {
  const payload = 'x'.repeat(3000);
  await forEachLimited(Array.from({ length: count }, (_, index) => index), 32, async (index) => {
    const namespace = unrelatedNamespaces[index % unrelatedNamespaces.length] as string;
    const name = `unrelated-${index}`;
    const applied = index % 5 === 0;
    const data = encodeData(applied ? { 'config.json': payload } : { password: `p-${index}` });
    const annotations = applied
      ? { 'kubectl.kubernetes.io/last-applied-configuration': `${JSON.stringify({ apiVersion: 'v1', data, kind: 'Secret', metadata: { annotations: {}, name, namespace }, type: 'Opaque' })}\n` }
      : undefined;
    await cluster.http.json({
      method: 'POST',
      path: `/api/v1/namespaces/${namespace}/secrets`,
      body: { apiVersion: 'v1', kind: 'Secret', metadata: { name, ...(annotations ? { annotations } : {}), labels: { app: `unrelated-${index % 100}` } }, type: 'Opaque', data },
    });
  });
}

const perApp = (value: number) => (apps > 0 ? value / apps : Number.NaN);
const ours = (requests: Map<string, number>) => [...requests].filter(([key]) => resourcesOfOurs.has(key.split(' ')[1] ?? ''));
const writesOf = (requests: Map<string, number>) => ours(requests).filter(([key]) => writeVerbs.has(key.split(' ')[0] ?? '')).reduce((total, [, count]) => total + count, 0);
const getsOf = (requests: Map<string, number>) => ours(requests).filter(([key]) => key.startsWith('GET ')).reduce((total, [, count]) => total + count, 0);

try {
  for (const namespace of [appNamespace, operatorNamespace, ...unrelatedNamespaces]) await cluster.kubectl(['create', 'namespace', namespace]);
  const names = Array.from({ length: apps }, (_, index) => `app-${index}`);
  log(`kube-apiserver ${cluster.controlPlane.version}, no kube-controller-manager; operator: ${main ?? 'src/main.ts'}, node flags: ${extraNodeArgs.join(' ') || 'none'}, environment: ${JSON.stringify(operatorEnv)}`);
  let setupStarted = Date.now();
  await createUnrelatedSecrets(unrelatedSecrets);
  log(`created ${unrelatedSecrets} unrelated Secrets (${Math.ceil(unrelatedSecrets / 5)} with last-applied-configuration) in ${seconds(Date.now() - setupStarted)}`);
  setupStarted = Date.now();
  await createOAuthApps({ cluster, namespace: appNamespace, names, clientId: client.clientId, clientSecret: client.clientSecret, issueRefreshToken: () => sandbox.issueRefreshToken(client.clientId), tokenURL: `${sandboxURL}/oauth/token` });
  log(`created ${apps} OAuthApps (+ ${2 * apps} Secrets) in ${seconds(Date.now() - setupStarted)}`);

  const first = await runOperator('first start (every app needs its initial refresh)', { steadySeconds });
  const restart = await runOperator('restart (every app Ready, no refresh due)', { steadySeconds: 0 });

  log('');
  log(`scale: ${apps} OAuthApps, ${unrelatedSecrets} unrelated Secrets, operator ${main ? 'built (dist/main.js)' : 'from src/'} with ${extraNodeArgs.join(' ') || 'no node flags'}`);
  log('| run | start → all Ready | refreshes | peak RSS (VmHWM) | RSS at all Ready: anonymous + file-backed | heap at all Ready: used / committed | steady-state peak RSS | heap after forced GC: used / committed | RSS after GC |');
  log('|---|---|---|---|---|---|---|---|---|');
  for (const run of [first, restart]) {
    const steadyCell = run.steady ? `${mib(run.steady.peakRss)} (${run.steady.seconds} s, ${run.steady.lists} relist LISTs; VmHWM then ${mib(run.steady.hwm)})` : '–';
    log(`| ${run.name} | ${seconds(run.readyMs)} | ${run.refreshes} | ${mib(run.atReady.peak)} | ${mib(run.atReady.rss)}: ${mib(run.atReady.anon)} + ${mib(run.atReady.file)} | ${mib(run.heapAtReady.used)} / ${mib(run.heapAtReady.committed)} | ${steadyCell} | ${mib(run.heap.used)} / ${mib(run.heap.committed)} | ${mib(run.afterGC.rss)} |`);
  }
  const peak = Math.max(first.atReady.peak, first.steady?.hwm ?? 0, restart.atReady.peak);
  log(`| goal | first ≤ 60 s: ${first.readyMs <= 60_000 ? 'met' : 'missed'}; restart ≤ 15 s: ${restart.readyMs <= 15_000 ? 'met' : 'missed'} | | ≤ 256 MiB: ${peak <= 256 * 1024 * 1024 ? 'met' : 'missed'} | | | | | |`);
  log('');
  log(`The operator's memory cgroup (deploy/'s container limit unless BENCH_MEMORY_LIMIT says otherwise), read at the end of each run:`);
  log('| run | limit | peak charge (anonymous + page cache it faulted in) | charge then: anonymous / page cache | pages read back from disk (major faults) | OOM kills |');
  log('|---|---|---|---|---|---|');
  for (const run of [first, restart]) {
    const { cgroup } = run;
    log('usage' in cgroup
      ? `| ${run.name.split(' ')[0]} | ${mib(cgroup.limit)} | ${mib(cgroup.usage.peak)} | ${mib(cgroup.usage.anon)} / ${mib(cgroup.usage.file)} | ${cgroup.usage.majorFaults} | ${cgroup.usage.oomKills} |`
      : `| ${run.name.split(' ')[0]} | none (${cgroup.unavailable}) | | | | |`);
  }
  log('');
  log(`CPU seconds from operator start until every app was Ready (${cores} cores; the sandbox runs in the benchmark process), and the apiserver's floor (its CPU seconds ÷ ${cores} cores):`);
  log(`| run | wall | ${Object.keys(first.cpu).join(' | ')} | apiserver floor |`);
  log(`|---|---|${Object.keys(first.cpu).map(() => '---').join('|')}|---|`);
  for (const run of [first, restart]) {
    log(`| ${run.name.split(' ')[0]} | ${seconds(run.readyMs)} | ${Object.keys(first.cpu).map((process) => `${(run.cpu[process] ?? Number.NaN).toFixed(1)} s`).join(' | ')} | ${((run.cpu['kube-apiserver'] ?? Number.NaN) / cores).toFixed(1)} s |`);
  }
  log('');
  log('apiserver requests per app until every app was Ready (secrets, oauthapps, events, leases), and the apiserver CPU per app:');
  log('| run | writes / app | GETs / app | apiserver CPU / app | floor: CPU / app × apps ÷ cores | requests |');
  log('|---|---|---|---|---|---|');
  for (const run of [first, restart]) {
    const apiserverCpu = run.cpu['kube-apiserver'] ?? Number.NaN;
    const detail = ours(run.requests).sort(([a], [b]) => a.localeCompare(b)).map(([key, count]) => `${key} ${count}`).join(', ');
    log(`| ${run.name.split(' ')[0]} | ${perApp(writesOf(run.requests)).toFixed(2)} | ${perApp(getsOf(run.requests)).toFixed(2)} | ${(perApp(apiserverCpu) * 1000).toFixed(2)} ms | ${((perApp(apiserverCpu) * apps) / cores).toFixed(1)} s | ${detail} |`);
  }
  log('');
  log(`BENCH_RESULT ${JSON.stringify({ apps, unrelatedSecrets, nodeArgs: extraNodeArgs, runs: [first, restart].map((run) => ({ ...run, requests: Object.fromEntries(run.requests) })) })}`);
} finally {
  await sandbox.close();
  await cluster.stop();
  if (main && !process.env.BENCH_MAIN) await removeOperatorBuild(main);
}
