// Shared parts of the benchmarks: a private control plane with the CRD, an admin client, the
// operator as its own process (as in production), and small statistics helpers.
import { KubeConfig } from '@kubernetes/client-node';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { controlPlaneBinaries } from '../src/localcluster/binaries.ts';
import { startControlPlane, type RunningControlPlane } from '../src/localcluster/controlplane.ts';
import { KubeHTTP } from '../src/kube/http.ts';
import { KubeClient } from '../src/kube/client.ts';

export interface BenchCluster {
  controlPlane: RunningControlPlane;
  http: KubeHTTP;
  kube: KubeClient;
  kubectl(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export async function startBenchCluster(): Promise<BenchCluster> {
  const binDir = await controlPlaneBinaries();
  const controlPlane = await startControlPlane({ binDir, workDir: await mkdtemp(join(tmpdir(), 'oauthapp-bench-')) });
  const kubectl = async (args: string[]) =>
    (await promisify(execFile)(join(binDir, 'kubectl'), args, { env: { ...process.env, KUBECONFIG: controlPlane.adminKubeconfigPath } })).stdout;
  const crds = fileURLToPath(new URL('../crds/', import.meta.url));
  await kubectl(['apply', '--server-side', '-f', crds]);
  await kubectl(['wait', '--for=condition=Established', '--timeout=60s', '-f', crds]);
  const config = new KubeConfig();
  config.loadFromFile(controlPlane.adminKubeconfigPath);
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

/** The operator in its own process, so its event loop is not the benchmark's. */
export function startOperatorProcess(args: string[]): { child: ChildProcess; stop(): Promise<void> } {
  const child = spawn(process.execPath, [mainPath, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  return {
    child,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
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

export const ms = (value: number) => `${value.toFixed(1)} ms`;
