// Builds the running operator from a Config: caches, queue, workers and the reconciler.
// main.ts owns the process (signals, exit codes); tests start the operator in-process here.
import { KubeConfig } from '@kubernetes/client-node';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Config } from './config.ts';
import { exponentialBackoff } from './controller/backoff.ts';
import { systemClock } from './controller/clock.ts';
import { createKeyedLimiter } from './controller/limiter.ts';
import { runWorkers } from './controller/runner.ts';
import { WorkQueue } from './controller/work-queue.ts';
import { KubeClient } from './kube/client.ts';
import { EventRecorder } from './kube/events.ts';
import { KubeHTTP } from './kube/http.ts';
import type { Logger } from './log.ts';
import { createTokenClient } from './oauth/token-client.ts';
import { createCaches, enqueueOnChanges } from './oauthapp/controller.ts';
import { Reconciler } from './oauthapp/reconciler.ts';
import { Refresher } from './oauthapp/refresher.ts';
import { Rollouts } from './oauthapp/rollout.ts';
import { SourceSecrets } from './oauthapp/source-secrets.ts';
import { StateStore } from './oauthapp/state-store.ts';
import { StatusWriter } from './oauthapp/status-writer.ts';
import { TargetWriter } from './oauthapp/target-writer.ts';

export interface RunningOperator {
  /** Resolves once every cache has listed its objects. */
  readonly synced: Promise<void>;
  /** Finishes in-flight reconciles (and their writes), starts no new one, closes connections. */
  stop(): Promise<void>;
}

export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (path) kubeConfig.loadFromFile(path);
  else kubeConfig.loadFromCluster();
  return kubeConfig;
}

export async function startOperator(config: Config, logger: Logger, kubeConfig: KubeConfig = loadKubeConfig(config.kubeconfig)): Promise<RunningOperator> {
  const http = await KubeHTTP.fromKubeConfig(kubeConfig);
  const kube = new KubeClient(http);
  const now = () => systemClock.now();
  const holder = `${hostname()}-${randomUUID().slice(0, 8)}`;

  const caches = createCaches({ http, namespaces: config.namespaces, operatorNamespace: config.operatorNamespace, logger });
  const queue = new WorkQueue({ clock: systemClock });
  enqueueOnChanges(caches, (key) => queue.add(key));

  const states = new StateStore(kube, caches.states, config.operatorNamespace);
  const limiter = createKeyedLimiter(config.providerConcurrency);
  const requestTimeoutMs = config.tokenRequestTimeoutSeconds * 1000;
  const events = new EventRecorder(kube, holder, logger, now);
  const reconciler = new Reconciler({
    apps: caches.apps,
    sources: new SourceSecrets(kube, caches.sources),
    states,
    refresher: new Refresher({
      store: states,
      tokens: createTokenClient({ timeoutMs: requestTimeoutMs }),
      limit: (key, task) => limiter.run(key, task),
      now,
      random: Math.random,
      backoffMs: (attempt) => exponentialBackoff({ attempt, random: Math.random }),
      holder,
      requestTimeoutMs,
    }),
    targets: new TargetWriter(kube, caches.targets),
    rollouts: new Rollouts({ states, kube, events, now }),
    status: new StatusWriter(kube, caches.apps, events),
    kube,
    now,
    logger,
  });

  const all = [caches.apps, caches.targets, caches.sources, caches.states];
  for (const cache of all) cache.start();
  const synced = Promise.all(all.map((cache) => cache.synced)).then(() => logger.info({ holder }, 'caches synced'));
  // Workers start only once every cache is complete: a reconcile on a partial cache would
  // mistake a not-yet-listed Secret for a missing one.
  let workers: { stopped: Promise<void> } | undefined;
  void synced.then(() => {
    if (queue.isShuttingDown) return;
    workers = runWorkers({
      queue,
      concurrency: config.workers,
      logger,
      reconcile: (key, { reconcileId }) => reconciler.reconcile(key, logger.child({ key, reconcileId })),
    });
  });

  return {
    synced,
    async stop() {
      queue.shutDown();
      await workers?.stopped;
      await Promise.all(all.map((cache) => cache.stop()));
      await http.close();
    },
  };
}
