// Builds the running operator from a Config: caches, queue, workers, reconciler, servers and
// leader election. main.ts owns the process (signals, exit codes); tests start the operator
// in-process here.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Config } from './config.ts';
import { exponentialBackoff } from './controller/backoff.ts';
import { systemClock } from './controller/clock.ts';
import { createKeyedLimiter } from './controller/limiter.ts';
import { runWorkers } from './controller/runner.ts';
import { WorkQueue } from './controller/work-queue.ts';
import { startCallbackServer } from './http/callback-server.ts';
import { createMetrics } from './http/metrics.ts';
import { startMetricsServer } from './http/metrics-server.ts';
import { KubeClient } from './kube/client.ts';
import { EventRecorder } from './kube/events.ts';
import { ApiserverAvailability } from './kube/availability.ts';
import { isTransient } from './kube/errors.ts';
import { KubeHTTP } from './kube/http.ts';
import { loadKubeConfig, type KubeConfig } from './kube/kubeconfig.ts';
import { noCache } from './kube/informer.ts';
import { createLeaderElector } from './kube/leader-election.ts';
import type { Logger } from './log.ts';
import { createStateSigner, defaultStateTtlMs, replaceableStateSigner, type ReplaceableStateSigner } from './oauth/state-token.ts';
import { createTokenClient } from './oauth/token-client.ts';
import { createAddressPolicy } from './oauth/address-policy.ts';
import { checkClientSecret } from './oauth/client-check.ts';
import { createProviderPolicy } from './oauth/provider-policy.ts';
import { Authorizations } from './oauthapp/authorization.ts';
import { ClientSecretChecks } from './oauthapp/client-secret-checks.ts';
import { signingKeySecretName, startSigningKeyRefresh, type SigningKeys } from './oauthapp/signing-key.ts';
import { createCaches, enqueueOnChanges, type Caches } from './oauthapp/controller.ts';
import { Reconciler } from './oauthapp/reconciler.ts';
import { Refresher } from './oauthapp/refresher.ts';
import { RefreshSlots } from './oauthapp/refresh-slots.ts';
import { Rollouts } from './oauthapp/rollout.ts';
import { SourceSecrets } from './oauthapp/source-secrets.ts';
import { StateStore } from './oauthapp/state-store.ts';
import { StateAdoption } from './oauthapp/state-adoption.ts';
import { SeedLedger } from './oauthapp/seed-ledger.ts';
import { OrphanSweep } from './oauthapp/orphan-sweep.ts';
import { requeueOnConflict } from './oauthapp/conflicts.ts';
import { StatusWriter } from './oauthapp/status-writer.ts';
import { TargetWriter } from './oauthapp/target-writer.ts';
import { objectKey, type KubeObject } from './kube/objects.ts';
import { parseKey } from './oauthapp/keys.ts';
import { CallbackPaths } from './oauthapp/callback-paths.ts';
import { Installations } from './oauthapp/installations.ts';
import { PublicApps } from './oauthapp/public-apps.ts';
import { installationKind } from './api/oauthinstallation.ts';
import { operatorVersion } from './version.ts';

export interface RunningOperator {
  /** Resolves once every cache has listed its objects. */
  readonly synced: Promise<void>;
  /** Where /metrics, /healthz and /readyz are served. */
  readonly metricsURL: string;
  /** Where the OAuth callback (/oauth/callback) is served; '' when this process runs no callback component. */
  readonly callbackURL: string;
  /** Resolves with 'lost' when this replica lost its leadership (the process should exit). */
  readonly ended: Promise<'lost'>;
  /** What this process holds in memory (for tests and diagnostics: which objects, which fields). */
  readonly caches: Caches;
  /** Finishes in-flight reconciles (and their writes), starts no new one, releases the Lease. */
  stop(): Promise<void>;
}

/**
 * How long a replica that lost its Lease keeps trying to store refresh results held only in
 * memory. Nobody kills it meanwhile (SIGTERM's budget is --shutdown-timeout), and an apiserver
 * outage, the usual reason for losing the Lease, may take a while to end.
 */
const lostLeaseFlushBudgetMs = 120_000;
/** How often every replica retries provider answers it could not store yet. */
const heldAnswerRetryMs = 5_000;
/** Of the SIGTERM budget, kept back for releasing the Lease and closing the servers. */
const releaseReserveMs = 5_000;

/** Waits for `work` until `deadline` (epoch ms) at most; true if it settled in time. */
async function settledBefore(work: Promise<unknown> | undefined, deadline: number): Promise<boolean> {
  if (!work) return true;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()))));
  try {
    return await Promise.race([work.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

export { loadKubeConfig };

export async function startOperator(config: Config, logger: Logger, kubeConfig: KubeConfig = loadKubeConfig(config.kubeconfig)): Promise<RunningOperator> {
  const availability = new ApiserverAvailability(systemClock);
  const http = await KubeHTTP.fromKubeConfig(kubeConfig, { availability });
  const kube = new KubeClient(http);
  const now = () => systemClock.now();
  const identity = `${hostname()}-${randomUUID().slice(0, 8)}`;
  const metrics = createMetrics({ version: operatorVersion });

  const caches = createCaches({ http, namespaces: config.namespaces, operatorNamespace: config.operatorNamespace, logger, relistIntervalMs: config.relistIntervalSeconds * 1000 });
  // --components: the internet-facing callback server may run in a Deployment of its own, with a
  // ServiceAccount that reaches only what a callback needs (deploy/overlays/split-callback): the
  // OAuthApps (cached), a referenced client secret (one live get per callback: no Secret is listed
  // or cached), and the state and signing-key Secrets in the operator namespace (live reads and
  // guarded writes). It runs no workers, no leader election, no target writes, no restarts.
  const runsCallback = config.components.includes('callback');
  const runsController = config.components.includes('controller');
  const queue = new WorkQueue({
    clock: systemClock,
    onDepthChange: metrics.setWorkqueueDepth,
    onLatency: metrics.observeQueueDuration,
    onAdd: metrics.countWorkqueueAdd,
    onRetry: metrics.countWorkqueueRetry,
  });
  const references = enqueueOnChanges(caches, (key) => queue.add(key));
  availability.onRecovered(() => {
    const retried = queue.expedite();
    if (retried > 0) logger.info({ apps: retried }, 'the apiserver answers again: retrying the apps that failed on it now');
  });
  caches.apps.on((event, app) => {
    if (event === 'deleted') metrics.forgetApp({ namespace: app.metadata.namespace ?? '', name: app.metadata.name });
  });
  /** An installation's series are labelled with its app's name and its own (metrics.ts AppKey). */
  const installationMetricsKey = (installation: KubeObject) => ({
    namespace: installation.metadata.namespace ?? '',
    name: String((installation as { spec?: { app?: unknown } }).spec?.app ?? ''),
    installation: installation.metadata.name,
  });
  caches.installations.on((event, installation) => {
    if (event === 'deleted') metrics.forgetApp(installationMetricsKey(installation));
  });
  const metricsKey = (key: string) => {
    const { namespace, name, kind } = parseKey(key);
    const installation = kind === 'installation' ? caches.installations.get(namespace, name) : undefined;
    return installation ? installationMetricsKey(installation) : { namespace, name };
  };
  // Which public app a Marketplace install or an uninstall callback is for (by callback path).
  const callbackPaths = new CallbackPaths(caches.apps);

  const states = new StateStore(kube, runsController ? caches.states : noCache(), config.operatorNamespace, {
    now,
    onAnswerDropped: (app, why) => logger.warn({ app: `${app.namespace}/${app.name}`, why }, 'gave up a provider answer that could not be stored'),
  });
  // Standbys too: a callback any replica answered may be holding tokens the apiserver refused.
  const heldAnswerRetry = setInterval(() => void states.retryHeld(), heldAnswerRetryMs);
  // Token requests per provider: a reconcile never waits for a slot (a slow provider would hold
  // the workers every other app needs); an app that found none is queued again when one frees up.
  const limiter = createKeyedLimiter(config.providerConcurrency, { wake: (appKey) => queue.add(appKey) });
  const requestTimeoutMs = config.tokenRequestTimeoutSeconds * 1000;
  const events = new EventRecorder(kube, identity, logger, now);
  const slots = new RefreshSlots(Math.random, now);
  const pickRefreshTime = (earliest: number, latest: number) => slots.pick(earliest, latest);
  const sources = new SourceSecrets(kube, runsController ? caches.sources : undefined, references);
  // Where token requests may go: hosts checked on the spec, addresses on each connection.
  const providerPolicy = createProviderPolicy({ hosts: config.providerHosts, allowPresetOverrides: config.allowPresetOverrides });
  const tokens = createTokenClient({
    timeoutMs: requestTimeoutMs,
    defaultExpiresInSeconds: config.defaultTokenLifetimeSeconds,
    addresses: createAddressPolicy({ allowNetworks: config.allowProviderNetworks, allowLoopback: config.allowLoopbackProviders }),
    proxy: config.proxy,
  });
  // The state-signing keys, re-read every 10 s by every replica; a replica that sees a new
  // oauthapp.dev/rotate value on their Secret rotates them (one wins: a guarded update). States
  // sealed with the previous key stay good for their lifetime (docs/runbooks/rotate-state-signing-key.md).
  const signerFor = (keys: SigningKeys) => createStateSigner({ key: keys.key, previousKey: keys.previous, now });
  let signer: ReplaceableStateSigner | undefined;
  const signingKeySecret = `${config.operatorNamespace}/${signingKeySecretName}`;
  const signingKeys = await startSigningKeyRefresh({
    kube,
    namespace: config.operatorNamespace,
    now,
    onChange: (keys, { rotatedFor, lostRace }) => {
      signer?.replace(signerFor(keys));
      const previousKeyAcceptedUntil = keys.previous ? new Date(keys.previous.rotatedAt + defaultStateTtlMs).toISOString() : null;
      if (rotatedFor !== undefined) logger.info({ secret: signingKeySecret, rotateRequest: rotatedFor, previousKeyAcceptedUntil }, 'state signing key rotated: new states use the new key');
      else logger.info({ secret: signingKeySecret, previousKeyAcceptedUntil, ...(lostRace ? { lostRace } : {}) }, 'state signing key changed: new states use the new key');
      // Authorization URLs in status are renewed with the new key now; the ones shown so far keep
      // working until previousKeyAcceptedUntil.
      if (runsController) {
        for (const app of caches.apps.list()) {
          if ((app as { status?: { authorizationURL?: string } }).status?.authorizationURL) queue.add(objectKey(app.metadata.namespace ?? '', app.metadata.name));
        }
      }
    },
    onProblem: (message) => logger.warn({ secret: signingKeySecret }, message),
  });
  signer = replaceableStateSigner(signerFor(signingKeys.keys));
  // What both kinds of callback (a first authorization, a public app's install) work with.
  const callbackSide = {
    states,
    sources,
    tokens,
    limit: <T>(key: string, task: () => Promise<T>) => limiter.run(key, task),
    kube,
    providerPolicy,
    // A callback's outcome is stored in the state Secret; the controller's reconcile turns it into
    // conditions, and every transition into an Event. So the callback component records none and
    // needs no write in app namespaces; in one process the callback adds its own Events as before.
    events: runsController ? events : { record: async () => undefined },
    // The controller of another process sees the state Secret change through its informer.
    enqueue: (key: string) => (runsController ? queue.add(key) : undefined),
    now,
    random: Math.random,
    pickRefreshTime,
  };
  const installations = new Installations({ ...callbackSide, paths: callbackPaths, previousSecretGraceMs: config.previousSecretGraceSeconds * 1000, logger });
  const authorizations = new Authorizations({ ...callbackSide, installations, signer, apps: caches.apps });
  const seeds = new SeedLedger(kube, config.operatorNamespace, now);
  const sweep = new OrphanSweep({
    states: caches.states,
    apps: caches.apps,
    installations: caches.installations,
    kube,
    seeds,
    watches: (namespace) => config.namespaces.length === 0 || config.namespaces.includes(namespace),
    logger,
  });
  const refresher = new Refresher({
    store: states,
    tokens,
    slots: limiter,
    // The answer is stored: the app's next reconcile writes its target and status.
    onSettled: (app) => queue.add(objectKey(app.namespace, app.name)),
    now,
    random: Math.random,
    pickRefreshTime,
    backoffMs: (attempt) => exponentialBackoff({ attempt, random: Math.random }),
    holder: identity,
    requestTimeoutMs,
    minRefreshIntervalMs: config.minRefreshIntervalSeconds * 1000,
    onResult: metrics.recordTokenRefresh,
  });
  const clientSecretChecks = new ClientSecretChecks({
    // Through the provider's slots, like code exchanges: a check is a token request too.
    check: (request) => limiter.run(new URL(request.tokenURL).host, () => checkClientSecret(tokens, request)),
    wake: (appKey) => queue.add(appKey),
    now,
    random: Math.random,
    onUnknown: (reason) => logger.info({ reason }, 'a client secret check was not answered clearly; asking again later'),
  });
  const appStatus = new StatusWriter(kube, caches.apps, events);
  const reconciler = new Reconciler({
    clientSecretChecks,
    adoption: new StateAdoption({ kube, cache: caches.states, operatorNamespace: config.operatorNamespace, now, logger }),
    providerPolicy,
    apps: caches.apps,
    sources,
    states,
    refresher,
    providerSlots: limiter,
    targets: new TargetWriter(kube, caches.targets),
    rollouts: new Rollouts({ states, kube, events, now }),
    authorizations,
    status: appStatus,
    publicApps: new PublicApps({
      installations: caches.installations,
      status: new StatusWriter(kube, caches.installations, events, installationKind),
      appStatus,
      paths: callbackPaths,
      states,
      sources,
      authorizations,
      kube,
      revoke: (request) => callbackSide.limit(new URL(request.revokeURL).host, () => tokens.revokeToken(request)),
      events,
      providerPolicy,
      now,
      observe: (key, facts) => metrics.observeApp(metricsKey(key), facts),
    }),
    seeds,
    kube,
    now,
    logger,
    minRefreshIntervalMs: config.minRefreshIntervalSeconds * 1000,
    observe: (key, facts) => metrics.observeApp(metricsKey(key), facts),
  });

  const all = runsController ? [caches.apps, caches.installations, caches.targets, caches.sources, caches.states] : [caches.apps];
  for (const cache of all) cache.start();
  const synced = Promise.all(all.map((cache) => cache.synced)).then(() => logger.info({ identity }, 'caches synced'));
  // Standbys keep warm caches, so they are ready; only the leader reconciles.
  const server = await startMetricsServer({
    address: config.metricsAddr,
    registry: metrics.registry,
    ready: () => all.every((cache) => cache.hasSynced()) || { reason: 'caches not synced yet' },
    logger,
  });

  // Any replica may answer a callback: the state's round is claimed with a guarded write.
  const callbacks = runsCallback
    ? await startCallbackServer({
        address: config.callbackAddr,
        handler: {
          complete: (input) => authorizations.complete(input),
          refused: (input) => authorizations.refused(input),
          acceptsStatelessCode: (path) => installations.acceptsStatelessCode(path),
          installFromMarketplace: (input) => installations.installFromMarketplace(input),
          uninstall: (input) => installations.uninstall(input),
        },
        logger,
        rateLimit: config.callbackRateLimit,
        maxConnections: config.callbackMaxConnections,
        trustedProxies: config.callbackTrustedProxies,
      })
    : undefined;

  let workers: { stopped: Promise<void> } | undefined;
  const startWorkers = async (leadership?: AbortSignal) => {
    // A reconcile on a partial cache would mistake a not-yet-listed Secret for a missing one.
    // Leadership may end first (the caches may never sync): then there is nothing to wait for.
    const leadershipEnded = leadership && new Promise<void>((resolve) => leadership.addEventListener('abort', () => resolve(), { once: true }));
    await Promise.race([synced, ...(leadershipEnded ? [leadershipEnded] : [])]);
    if (queue.isShuttingDown) return;
    logger.info({ identity }, 'leading: reconciling');
    workers = runWorkers({
      queue,
      concurrency: config.workers,
      logger,
      onReconcile: metrics.recordReconcile,
      isExpeditable: isTransient,
      reconcile: requeueOnConflict((key, { reconcileId }) => reconciler.reconcile(key, logger.child({ key, reconcileId }), leadership)),
    });
    const sweeping = setInterval(() => {
      if (!leadership?.aborted) sweep.sweep().catch((error: unknown) => logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'orphaned state sweep failed'));
    }, config.orphanSweepIntervalSeconds * 1000);
    await workers.stopped;
    clearInterval(sweeping);
  };

  /** Tokens the provider issued but the apiserver has not stored yet must not leave with us. */
  const flushUnsaved = async (deadline: number) => {
    // flushAllUnsaved checks its deadline between writes only, and one write to a stuck apiserver
    // takes up to the client's 30 s timeout: the deadline is enforced here.
    let left: string[] | undefined; // undefined: still writing at the deadline
    await settledBefore(states.flushAllUnsaved(deadline).then((uids) => (left = uids)), deadline);
    if (left?.length !== 0) logger.error({ apps: left?.length ?? 'unknown' }, 'could not store refresh results before stopping; those apps will report RefreshInterrupted');
  };

  let lost!: () => void;
  const ended = new Promise<'lost'>((resolve) => (lost = () => resolve('lost')));
  const elector = runsController && config.leaderElect
    ? createLeaderElector({ http, namespace: config.operatorNamespace, identity, logger, ...config.leaderElection })
    : undefined;
  if (elector) {
    const electing = elector.run({
      onStartedLeading: (signal) => {
        metrics.setLeader(true);
        // Leadership ends: no reconcile starts after this; in-flight ones finish their writes.
        signal.addEventListener('abort', () => queue.shutDown(), { once: true });
        return startWorkers(signal);
      },
      onStoppedLeading: (reason) => {
        metrics.setLeader(false);
        queue.shutDown();
        if (reason === 'lost') {
          logger.error({ identity }, 'lost the leader Lease: stopping');
          // Workers are undefined when the Lease was lost before the caches synced: the replica
          // must end all the same, or it would never lead again while reporting healthy.
          void Promise.resolve(workers?.stopped)
            .then(() => refresher.idle())
            // Before they run out (2 × the request timeout + 5 s): the next leader would take them
            // for requests that may have reached the provider.
            .then(() => {
              const deadline = Date.now() + 2 * requestTimeoutMs;
              return settledBefore(refresher.releaseUnsentClaims(deadline), deadline);
            })
            .then(() => flushUnsaved(Date.now() + lostLeaseFlushBudgetMs))
            // The elector releases the Lease if it still names us (a renewal that committed with its
            // answer lost): the successor starts a retry period later, not a lease duration.
            .then(() => electing)
            .then(lost);
        }
      },
    });
  } else if (runsController) {
    metrics.setLeader(true);
    void startWorkers();
  }

  return {
    synced,
    metricsURL: server.url,
    callbackURL: callbacks ? `${callbacks.url}/oauth/callback` : '',
    ended,
    caches,
    async stop() {
      // The kubelet kills the pod terminationGracePeriodSeconds after SIGTERM, so every step
      // shares one budget; whatever has not finished by its deadline is abandoned, not waited for.
      const budgetMs = config.shutdownTimeoutSeconds * 1000;
      const deadline = Date.now() + budgetMs;
      const writesDeadline = deadline - Math.min(releaseReserveMs, budgetMs / 5);
      clearInterval(heldAnswerRetry);
      signingKeys.stop();
      queue.shutDown();
      // Token requests already sent run off the workers: their answers are stored before we go.
      if (!(await settledBefore(Promise.resolve(workers?.stopped).then(() => refresher.idle()), writesDeadline))) logger.error({ identity }, 'reconciles still running at the shutdown deadline: abandoned');
      await settledBefore(refresher.releaseUnsentClaims(writesDeadline), writesDeadline);
      await flushUnsaved(writesDeadline);
      // Held-back Events are best effort: not worth the budget, and no timer may outlive us.
      events.stop();
      const closed = settledBefore((async () => {
        await elector?.stop();
        await Promise.all([server.close(), callbacks?.close()]);
        await Promise.all(all.map((cache) => cache.stop()));
        availability.close();
        await http.close();
      })(), deadline);
      if (!(await closed)) logger.warn({ identity }, 'shutdown deadline reached before the Lease was released and connections closed');
    },
  };
}
