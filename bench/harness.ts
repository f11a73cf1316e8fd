import { openSync } from 'node:fs';
// Shared parts of the benchmarks: a private control plane with the CRD, an admin client, the
// operator as its own process (as in production), and small statistics helpers.
import { loadKubeConfigFile } from '../src/kube/kubeconfig.ts';
import { copyFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { fileURLToPath } from 'node:url';
import { controlPlaneBinaries } from '../src/localcluster/binaries.ts';
import { startControlPlane, type RunningControlPlane } from '../src/localcluster/controlplane.ts';
import { KubeHTTP } from '../src/kube/http.ts';
import { KubeClient } from '../src/kube/client.ts';
import { encodeData, type Secret } from '../src/kube/objects.ts';
import { parseMemoryQuantity } from './memory-cgroup.ts';

export interface BenchCluster {
  controlPlane: RunningControlPlane;
  http: KubeHTTP;
  kube: KubeClient;
  kubectl(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

/** `controllerManager: false` leaves the operator and the benchmark the apiserver's only clients. */
export async function startBenchCluster(options: { controllerManager?: boolean } = {}): Promise<BenchCluster> {
  const binDir = await controlPlaneBinaries();
  const controlPlane = await startControlPlane({ binDir, workDir: await mkdtemp(join(tmpdir(), 'oauthapp-bench-')), ...(options.controllerManager === false ? { controllerManager: false } : {}) });
  const kubectl = async (args: string[]) =>
    (await promisify(execFile)(join(binDir, 'kubectl'), args, { env: { ...process.env, KUBECONFIG: controlPlane.adminKubeconfigPath } })).stdout;
  const crds = fileURLToPath(new URL('../crds/', import.meta.url));
  await kubectl(['apply', '--server-side', '-f', crds]);
  await kubectl(['wait', '--for=condition=Established', '--timeout=60s', '-f', crds]);
  const config = loadKubeConfigFile(controlPlane.adminKubeconfigPath);
  const http = await KubeHTTP.fromKubeConfig(config);
  return {
    controlPlane,
    http,
    kube: new KubeClient(http),
    kubectl,
    async stop() {
      await http.close();
      await controlPlane.stop();
    },
  };
}

const mainPath = fileURLToPath(new URL('../src/main.ts', import.meta.url));

/**
 * The operator in its own process, so its event loop is not the benchmark's. `nodeArgs` go before
 * the script (e.g. `--cpu-prof --cpu-prof-dir=…` to profile it); `main` replaces src/main.ts (e.g.
 * the built dist/main.js, as the image runs it); `heapProbe` lets `forcedGCHeap` ask it for its heap.
 */
export function startOperatorProcess(
  args: string[],
  options: {
    nodeArgs?: string[];
    main?: string;
    env?: Record<string, string>;
    heapProbe?: boolean;
    /** Its debug log goes here. */
    logFile?: string;
    /** A cgroup's cgroup.procs (memory-cgroup.ts): the process enters it before node starts. */
    cgroupProcs?: string;
    /** Another node binary (memory-cgroup.ts's uncachedCopyOfNode); default this one's. */
    execPath?: string;
  } = {},
): { child: ChildProcess; stop(): Promise<void> } {
  const probe = options.heapProbe ? ['--expose-gc', `--import=${heapProbeModule}`] : [];
  const logging = options.logFile ? ['--log-level=debug'] : [];
  const command = [options.execPath ?? process.execPath, ...(options.nodeArgs ?? []), ...probe, options.main ?? mainPath, ...args, ...logging];
  // The shell writes its own pid and then becomes node (exec keeps the pid), so everything node
  // allocates is charged to the cgroup from the first page on.
  const [file, ...argv] = options.cgroupProcs ? ['/bin/sh', '-c', 'echo $$ > "$0" && exec "$@"', options.cgroupProcs, ...command] : command;
  const child = spawn(file as string, argv, {
    stdio: ['ignore', options.logFile ? openSync(options.logFile, 'w') : 'ignore', 'inherit', ...(options.heapProbe ? ['ipc' as const] : [])],
    env: { ...process.env, ...options.env },
  });
  return {
    child,
    stop: () =>
      new Promise((resolve) => {
        // Exited already: by a signal (an OOM kill), exitCode stays null and only signalCode says so.
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * Loaded into the operator process (a data: URL, so no TypeScript loader is pulled in with it): on
 * the message 'gc' it collects garbage and answers with V8's heap figures and process.memoryUsage().
 */
const heapProbeModule = `data:text/javascript,${encodeURIComponent(`
import { getHeapStatistics } from 'node:v8';
process.on('message', (message) => {
  if (message !== 'gc') return;
  globalThis.gc();
  const heap = getHeapStatistics();
  process.send({ used: heap.used_heap_size, committed: heap.total_heap_size, limit: heap.heap_size_limit, external: heap.external_memory, memory: process.memoryUsage() });
});
process.channel?.unref();
`)}`;

export interface ForcedGCHeap {
  used: number;
  committed: number;
  limit: number;
  external: number;
  memory: NodeJS.MemoryUsage;
}

/** A full garbage collection in the operator (started with heapProbe), then its heap figures. */
export function forcedGCHeap(child: ChildProcess, timeoutMs = 60_000): Promise<ForcedGCHeap> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the operator did not answer the heap probe')), timeoutMs);
    child.once('message', (answer) => {
      clearTimeout(timer);
      resolve(answer as ForcedGCHeap);
    });
    child.send('gc');
  });
}

/**
 * Compiles src/ as the image does (tsconfig.build.json) into a directory inside the repository (so
 * its imports find node_modules) and returns its main.js: the operator as deploy/ runs it, without
 * Node's TypeScript stripping, which costs 10–30 MiB of its own.
 */
export async function buildOperator(): Promise<string> {
  // Laid out as the image is: dist/ with package.json beside it (src/version.ts reads it from there).
  const buildDir = fileURLToPath(new URL(`../.tmp/bench-${process.pid}/`, import.meta.url));
  const outDir = join(buildDir, 'dist');
  const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url));
  await promisify(execFile)(process.execPath, [tsc, '-p', fileURLToPath(new URL('../tsconfig.build.json', import.meta.url)), '--outDir', outDir, '--sourceMap', 'false']);
  await copyFile(fileURLToPath(new URL('../package.json', import.meta.url)), join(buildDir, 'package.json'));
  return join(outDir, 'main.js');
}

/** Removes what buildOperator made for `main` (its dist/ and the package.json beside it). */
export async function removeOperatorBuild(main: string): Promise<void> {
  await rm(dirname(dirname(main)), { recursive: true, force: true });
}

interface DeployedContainer {
  env?: Array<{ name: string; value?: string }>;
  resources?: { limits?: { memory?: string } };
}

/** deploy/base/deployment.yaml's operator container. */
async function deployedOperator(): Promise<DeployedContainer | undefined> {
  const manifest = parse(await readFile(fileURLToPath(new URL('../deploy/base/deployment.yaml', import.meta.url)), 'utf8')) as {
    spec: { template: { spec: { containers: Array<DeployedContainer & { name: string }> } } };
  };
  return manifest.spec.template.spec.containers.find((container) => container.name === 'operator');
}

/**
 * The environment deploy/base/deployment.yaml gives the operator container (its literal values:
 * NODE_OPTIONS with the heap flags, and the like), so a benchmark runs the process as deployed.
 */
export async function deployEnvironment(): Promise<Record<string, string>> {
  const operator = await deployedOperator();
  return Object.fromEntries((operator?.env ?? []).filter((variable) => typeof variable.value === 'string').map((variable) => [variable.name, variable.value as string]));
}

/** The operator container's memory limit in deploy/base/deployment.yaml, in bytes. */
export async function deployMemoryLimit(): Promise<number> {
  const limit = (await deployedOperator())?.resources?.limits?.memory;
  if (!limit) throw new Error('deploy/base/deployment.yaml gives the operator no memory limit');
  return parseMemoryQuantity(limit);
}

/** Runs `task` for every item with at most `concurrency` at once. */
export async function forEachLimited<T>(items: readonly T[], concurrency: number, task: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      await task(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

export function percentile(sortedMs: readonly number[], p: number): number {
  if (sortedMs.length === 0) return Number.NaN;
  return sortedMs[Math.min(sortedMs.length - 1, Math.ceil((p / 100) * sortedMs.length) - 1)] as number;
}

export function summarize(samplesMs: readonly number[]) {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN };
}

/**
 * Counts per 1-second bucket from the first to the last time (or over `window`, [start, end) in
 * ms, times outside it left out); peak / mean.
 */
export function buckets(timesMs: readonly number[], window?: { start: number; end: number }) {
  const first = window?.start ?? Math.min(...timesMs);
  const last = window ? window.end - 1 : Math.max(...timesMs);
  const counts = new Array<number>(Math.floor((last - first) / 1000) + 1).fill(0);
  const inside = window ? timesMs.filter((time) => time >= window.start && time < window.end) : timesMs;
  for (const time of inside) counts[Math.floor((time - first) / 1000)]! += 1;
  const mean = inside.length / counts.length;
  const peak = Math.max(...counts);
  return { windowSeconds: counts.length, mean, peak, peakToMean: peak / mean, counts };
}

/** Median peak-to-mean of `n` independent uniform times over `seconds` (what plain random jitter gives). */
export function randomPeakToMean(n: number, seconds: number, trials = 500): number {
  const ratios: number[] = [];
  for (let trial = 0; trial < trials; trial++) ratios.push(buckets(Array.from({ length: n }, () => Math.random() * seconds * 1000)).peakToMean);
  return ratios.sort((a, b) => a - b)[Math.floor(trials / 2)] as number;
}

export const ms = (value: number) => `${value.toFixed(1)} ms`;

export const sleep = (milliseconds: number) => new Promise<void>((resolve) => setTimeout(resolve, milliseconds));

/**
 * Polls `check` every `intervalMs` (a number, or a function asked before each pause) until it
 * holds; throws after `timeoutMs`.
 */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 600_000, intervalMs: number | (() => number) = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(typeof intervalMs === 'number' ? intervalMs : intervalMs());
  }
}

export interface BenchApps {
  cluster: BenchCluster;
  namespace: string;
  names: readonly string[];
  clientId: string;
  clientSecret: string;
  /** A fresh bootstrap refresh token per app. */
  issueRefreshToken: () => string | Promise<string>;
  tokenURL: string;
  concurrency?: number;
  /** Extra spec fields, e.g. renewBefore. */
  spec?: Record<string, unknown>;
}

/** Per app: a client-secret Secret, a bootstrap refresh-token Secret and the OAuthApp (16 at once). */
export async function createOAuthApps({ cluster, namespace, names, clientId, clientSecret, issueRefreshToken, tokenURL, concurrency = 16, spec = {} }: BenchApps): Promise<void> {
  const secret = (name: string, data: Record<string, string>): Secret => ({ metadata: { name, namespace }, type: 'Opaque', data: encodeData(data) });
  await forEachLimited(names, concurrency, async (name) => {
    await cluster.kube.createSecret(namespace, secret(`${name}-client`, { client_secret: clientSecret }));
    await cluster.kube.createSecret(namespace, secret(`${name}-bootstrap`, { refresh_token: await issueRefreshToken() }));
    await cluster.http.json({
      method: 'POST',
      path: `/apis/oauthapp.dev/v1alpha1/namespaces/${namespace}/oauthapps`,
      body: {
        apiVersion: 'oauthapp.dev/v1alpha1',
        kind: 'OAuthApp',
        metadata: { name },
        spec: {
          tokenURL,
          clientId,
          clientSecretRef: { name: `${name}-client`, key: 'client_secret' },
          refreshTokenRef: { name: `${name}-bootstrap`, key: 'refresh_token' },
          redirectURI: 'http://127.0.0.1:8081/oauth/callback',
          ...spec,
        },
      },
    });
  });
}

/** The operator's flags for a benchmark: one namespace, no leader election, quiet logs. */
export function operatorArgs(cluster: BenchCluster, namespaces: string[], operatorNamespace: string, metricsPort = 0, extra: string[] = []): string[] {
  return [
    `--kubeconfig=${cluster.controlPlane.adminKubeconfigPath}`,
    // None: every namespace, as deploy/ runs it.
    ...(namespaces.length > 0 ? [`--namespaces=${namespaces.join(',')}`] : []),
    `--operator-namespace=${operatorNamespace}`,
    '--no-leader-elect',
    '--log-level=warn',
    `--metrics-addr=127.0.0.1:${metricsPort}`,
    '--callback-addr=127.0.0.1:0',
    // The sandbox provider listens on loopback and stands in for the pipedrive preset.
    '--allow-loopback-providers',
    '--allow-preset-overrides',
    ...extra,
  ];
}

/** Prometheus text exposition → samples, `name{labels}` → value (histogram buckets included). */
export function parsePrometheus(text: string): Array<{ name: string; labels: Record<string, string>; value: number }> {
  const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const label of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[label[1] as string] = label[2] as string;
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The apiserver's own request counters (`apiserver_request_total`), keyed `VERB resource[/subresource]`. */
export async function apiserverRequests(cluster: BenchCluster): Promise<Map<string, number>> {
  const response = await cluster.http.stream({ method: 'GET', path: '/metrics', accept: 'text/plain' });
  const counts = new Map<string, number>();
  for (const sample of parsePrometheus(await response.text())) {
    if (sample.name !== 'apiserver_request_total') continue;
    const { verb = '', resource = '', subresource = '' } = sample.labels;
    const key = `${verb} ${resource}${subresource ? `/${subresource}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + sample.value);
  }
  return counts;
}

/** after − before, only the keys that changed. */
export function requestDelta(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const delta = new Map<string, number>();
  for (const [key, value] of after) {
    const change = value - (before.get(key) ?? 0);
    if (change !== 0) delta.set(key, change);
  }
  return delta;
}

export const writeVerbs = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'DELETECOLLECTION', 'APPLY', 'CREATE', 'UPDATE']);

/** The operator's own /metrics. */
export async function operatorMetrics(metricsPort: number): Promise<ReturnType<typeof parsePrometheus>> {
  const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  return parsePrometheus(await response.text());
}

export const sumOf = (samples: ReturnType<typeof parsePrometheus>, name: string, filter: (labels: Record<string, string>) => boolean = () => true) =>
  samples.filter((sample) => sample.name === name && filter(sample.labels)).reduce((total, sample) => total + sample.value, 0);

export interface ProcessMemory {
  /** Resident now (VmRSS), and its high-water mark since the process started (VmHWM). */
  rss: number;
  peak: number;
  /** Of rss: anonymous memory (heap, malloc, stacks) and file-backed pages (the node binary, libraries). */
  anon: number;
  file: number;
  /** Of anon: pages given back with MADV_FREE, still counted until the kernel needs them (smaps_rollup LazyFree). */
  lazyFree: number;
}

/** A process's resident memory from /proc/<pid>/status (Linux). */
export async function processMemory(pid: number): Promise<ProcessMemory> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)\\s+kB`).exec(status)?.[1] ?? Number.NaN) * 1024;
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
  const lazyFree = Number(/LazyFree:\s+(\d+)\s+kB/.exec(rollup)?.[1] ?? Number.NaN) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM'), anon: kib('RssAnon'), file: kib('RssFile'), lazyFree };
}

/** Resident set size of a process, from /proc (Linux). */
export async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  return match ? Number(match[1]) * 1024 : Number.NaN;
}

export const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
export const seconds = (milliseconds: number) => `${(milliseconds / 1000).toFixed(1)} s`;

/** CPU time (user + system) a process has used so far, in seconds (Linux /proc). */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/** The bench control plane's own processes (kube-apiserver, etcd, …) by name, found by their work directory. */
export async function controlPlanePids(cluster: BenchCluster): Promise<Map<string, number>> {
  const pids = new Map<string, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.includes(cluster.controlPlane.workDir)) continue;
    const binary = cmdline.split('\0')[0]?.split('/').at(-1);
    if (binary) pids.set(binary, Number(entry));
  }
  return pids;
}
