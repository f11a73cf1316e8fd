// A Cluster for the commands' unit tests: apps answered from a script, writes recorded.
import type { AppView, Cluster, LeaseView } from '../../../src/cli/cluster.ts';
import { appNotFound } from '../../../src/cli/errors.ts';
import type { CommandContext } from '../../../src/cli/context.ts';
import type { Secret } from '../../../src/kube/objects.ts';

export interface FakeCluster extends Cluster {
  /** Each getApp answers the next one; the last repeats. A function sees the rotate value asked for. */
  apps: Array<AppView | ((rotate: string | undefined) => AppView)>;
  rotates: string[];
  secrets: Record<string, Secret>;
  lease: LeaseView | Error;
}

export function fakeCluster(namespace = 'sales'): FakeCluster {
  const cluster: FakeCluster = {
    namespace,
    apps: [],
    rotates: [],
    secrets: {},
    lease: new Error('no lease'),
    async getApp(name) {
      const next = cluster.apps.length > 1 ? cluster.apps.shift() : cluster.apps[0];
      if (next === undefined) throw appNotFound(namespace, name);
      return typeof next === 'function' ? next(cluster.rotates.at(-1)) : next;
    },
    async requestRotate(_name, value) {
      cluster.rotates.push(value);
    },
    async getSecret(_namespace, name) {
      return cluster.secrets[name];
    },
    async getLease() {
      if (cluster.lease instanceof Error) throw cluster.lease;
      return cluster.lease;
    },
    async close() {},
  };
  return cluster;
}

/** A context whose clock moves only when a command sleeps, and whose output is kept. */
export function fakeContext(cluster: Cluster, start = Date.parse('2026-12-01T17:00:00Z')) {
  let now = start;
  const output = { out: '', err: '' };
  const context: CommandContext = {
    cluster,
    io: { out: (text) => (output.out += text), err: (text) => (output.err += text) },
    clock: {
      now: () => now,
      sleep: async (ms) => {
        now += ms;
      },
    },
    pollIntervalMs: 1_000,
  };
  return { context, output, elapsed: () => now - start };
}

export const condition = (type: string, status: 'True' | 'False' | 'Unknown', reason: string, message = `${type} is ${status}`) => ({ type, status, reason, message, lastTransitionTime: '2026-12-01T16:00:00Z' });
