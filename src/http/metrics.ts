// The operator's Prometheus metrics, on a registry of their own (never prom-client's global one, so
// tests and embedders get a clean set each time). Label values come from closed sets (result,
// outcome, condition type, status and reason, version) or from object keys (namespace, name, and
// the token URL's host as provider): never from a secret, an error message or a whole URL.
//
// The recorders are plain functions, bound at creation, with the signatures of the hooks they feed:
// WorkQueueOptions.onDepthChange / onLatency / onAdd / onRetry, RunWorkersOptions.onReconcile,
// Refresher's onResult, Reconciler's observe.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ReconcileOutcome } from '../controller/runner.ts';
import { tokenErrorCodes } from '../oauth/errors.ts';

/** How a token refresh ended: `success`, or the token client's error code. */
export const refreshResults = ['success', ...tokenErrorCodes] as const;
export type RefreshResult = (typeof refreshResults)[number];

export const reconcileOutcomes = ['success', 'error', 'requeue'] as const satisfies readonly ReconcileOutcome[];

/** The work queue's `name` label, as client-go's workqueue metrics name their queue. */
export const workqueueName = 'oauthapp';

/** One OAuthApp, or one OAuthInstallation of a public app `name`, as its series are labelled. */
export interface AppKey {
  namespace: string;
  name: string;
  /** The OAuthInstallation's name; absent for an OAuthApp's own grant. */
  installation?: string | undefined;
}

/** One status condition, as `oauthapp_status_condition` labels it (its message is never a label). */
export interface ConditionFacts {
  type: string;
  status: string;
  reason: string;
}

/** What the last reconcile of an app found; an absent time drops that app's series of it. */
export interface AppFacts {
  conditions: readonly ConditionFacts[];
  /** Milliseconds since the epoch. */
  accessTokenExpiresAt?: number | undefined;
  /** Milliseconds since the epoch: the scheduled refresh, or the retry after a failure. */
  nextRefreshAt?: number | undefined;
  /** Milliseconds before expiry the current token is due for refresh. */
  renewBeforeMs?: number | undefined;
}

export interface OperatorMetrics {
  /** Holds every series below plus the process metrics (process_*, nodejs_*). */
  readonly registry: Registry;
  /** The app's conditions, token expiry and refresh schedule, as its last reconcile found them. */
  readonly observeApp: (app: AppKey, facts: AppFacts) => void;
  /** One token request to a provider (the token URL's host), how it ended and how long it took. */
  readonly recordTokenRefresh: (result: RefreshResult, seconds: number, provider: string) => void;
  /** Whether this replica holds the leader Lease (or runs the controller without leader election). */
  readonly setLeader: (leading: boolean) => void;
  /** Keys waiting for a worker (fits WorkQueueOptions.onDepthChange). */
  readonly setWorkqueueDepth: (depth: number) => void;
  /** How long a key waited in the queue before a worker took it (fits WorkQueueOptions.onLatency). */
  readonly observeQueueDuration: (seconds: number) => void;
  /** A key added that was not already waiting (fits WorkQueueOptions.onAdd). */
  readonly countWorkqueueAdd: () => void;
  /** A key scheduled again after a failed reconcile (fits WorkQueueOptions.onRetry). */
  readonly countWorkqueueRetry: () => void;
  /** One reconcile, its outcome and duration (fits RunWorkersOptions.onReconcile). */
  readonly recordReconcile: (outcome: ReconcileOutcome, seconds: number) => void;
  /** Drops every series labelled with this app or installation (call when it is gone). */
  readonly forgetApp: (app: AppKey) => void;
}

export interface MetricsOptions {
  /** Register prom-client's process and Node.js runtime metrics too (default true). */
  processMetrics?: boolean;
  /** The operator's version, for oauthapp_build_info (default 'unknown'). */
  version?: string;
}

/** Token requests are HTTP calls to a provider: tens of milliseconds up to the request timeout. */
export const tokenRefreshBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30];
/** A key waits from microseconds (idle queue) to minutes (10,000 apps after a restart). */
export const queueDurationBuckets = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300];
/** A reconcile is a few cache reads and apiserver writes, or a token request (up to its timeout). */
export const reconcileDurationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export function createMetrics(options: MetricsOptions = {}): OperatorMetrics {
  const registry = new Registry();
  const registers = [registry];
  // An OAuthApp's series carry no installation label; an installation's carry one (bounded by installations).
  const appLabelNames = ['namespace', 'name', 'installation'] as const;

  const expiration = new Gauge({
    name: 'oauthapp_access_token_expiration_timestamp_seconds',
    help: 'When the access token in the OAuthApp\'s target Secret expires, in seconds since the Unix epoch.',
    labelNames: appLabelNames,
    registers,
  });
  const nextRefresh = new Gauge({
    name: 'oauthapp_next_refresh_timestamp_seconds',
    help: 'When the OAuthApp\'s next token refresh is due (status.nextRefreshTime: the schedule, or the retry after a failure), in seconds since the Unix epoch. Absent while a person must act.',
    labelNames: appLabelNames,
    registers,
  });
  const renewBefore = new Gauge({
    name: 'oauthapp_renew_before_seconds',
    help: 'How long before its expiry the OAuthApp\'s current access token is due for refresh (spec.renewBefore, else a third of the token\'s lifetime).',
    labelNames: appLabelNames,
    registers,
  });
  const ready = new Gauge({
    name: 'oauthapp_ready',
    help: 'Whether the OAuthApp\'s Ready condition is True (1) or not (0).',
    labelNames: appLabelNames,
    registers,
  });
  const condition = new Gauge({
    name: 'oauthapp_status_condition',
    help: 'The OAuthApp\'s status conditions: one series per condition, always 1, labelled with its type, status and reason (the series of an earlier status or reason is removed).',
    labelNames: [...appLabelNames, 'type', 'status', 'reason'] as const,
    registers,
  });
  const refreshTotal = new Counter({
    name: 'oauthapp_token_refresh_total',
    help: 'Token requests sent to OAuth providers, by provider (the token URL\'s host) and how they ended (success, or the error kind such as invalid_grant or timeout).',
    labelNames: ['provider', 'result'] as const,
    registers,
  });
  const refreshDuration = new Histogram({
    name: 'oauthapp_token_refresh_duration_seconds',
    help: 'How long token requests to OAuth providers took, from sending to a usable answer or failure, by provider (the token URL\'s host).',
    labelNames: ['provider'] as const,
    buckets: tokenRefreshBuckets,
    registers,
  });
  const leader = new Gauge({
    name: 'oauthapp_leader',
    help: 'Whether this replica leads (1: it holds the leader Lease and reconciles) or stands by (0).',
    registers,
  });
  const buildInfo = new Gauge({
    name: 'oauthapp_build_info',
    help: 'Always 1, labelled with the running operator\'s version.',
    labelNames: ['version'] as const,
    registers,
  });
  // client-go's workqueue metric names, so dashboards made for controllers work here too.
  const queueDepth = new Gauge({
    name: 'workqueue_depth',
    help: 'Keys waiting in the work queue for a worker (keys scheduled for later are not counted).',
    labelNames: ['name'] as const,
    registers,
  });
  const queueDuration = new Histogram({
    name: 'workqueue_queue_duration_seconds',
    help: 'How long a key waited in the work queue before a worker took it.',
    labelNames: ['name'] as const,
    buckets: queueDurationBuckets,
    registers,
  });
  const queueAdds = new Counter({
    name: 'workqueue_adds_total',
    help: 'Keys added to the work queue that were not already waiting in it.',
    labelNames: ['name'] as const,
    registers,
  });
  const queueRetries = new Counter({
    name: 'workqueue_retries_total',
    help: 'Keys scheduled again, after their backoff, because their reconcile failed.',
    labelNames: ['name'] as const,
    registers,
  });
  const reconcileDuration = new Histogram({
    name: 'oauthapp_reconcile_duration_seconds',
    help: 'How long one reconcile of an OAuthApp took, by outcome (success, error, requeue).',
    labelNames: ['outcome'] as const,
    buckets: reconcileDurationBuckets,
    registers,
  });
  const reconcileTotal = new Counter({
    name: 'oauthapp_reconcile_total',
    help: 'Reconciles of OAuthApps, by outcome (success, error, requeue).',
    labelNames: ['outcome'] as const,
    registers,
  });

  // Every result and outcome exists from the start at 0 (results: from a provider's first request
  // on), so rate() and absent() work before the first failure of a kind.
  const providersSeen = new Set<string>();
  const startProvider = (provider: string) => {
    if (providersSeen.has(provider)) return;
    providersSeen.add(provider);
    for (const result of refreshResults) refreshTotal.inc({ provider, result }, 0);
  };
  for (const outcome of reconcileOutcomes) {
    reconcileTotal.inc({ outcome }, 0);
    reconcileDuration.zero({ outcome });
  }
  const queue = { name: workqueueName };
  queueDepth.set(queue, 0);
  queueDuration.zero(queue);
  queueAdds.inc(queue, 0);
  queueRetries.inc(queue, 0);
  leader.set(0);
  buildInfo.set({ version: options.version ?? 'unknown' }, 1);
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });

  /** The condition series each app has now, by app key: the ones to remove when they change. */
  const conditionSeries = new Map<string, ReturnType<typeof conditionLabels>[]>();
  const setOrRemove = (gauge: Gauge<(typeof appLabelNames)[number]>, app: AppKey, value: number | undefined) => {
    if (value === undefined) gauge.remove(appLabels(app));
    else gauge.set(appLabels(app), value);
  };

  return {
    registry,
    observeApp: (app, facts) => {
      const series = facts.conditions.map((each) => conditionLabels(app, each));
      for (const stale of conditionSeries.get(appKey(app)) ?? []) {
        if (!series.some((labels) => sameLabels(labels, stale))) condition.remove(stale);
      }
      for (const labels of series) condition.set(labels, 1);
      conditionSeries.set(appKey(app), series);
      ready.set(appLabels(app), facts.conditions.some(({ type, status }) => type === 'Ready' && status === 'True') ? 1 : 0);
      setOrRemove(expiration, app, toSeconds(facts.accessTokenExpiresAt));
      setOrRemove(nextRefresh, app, toSeconds(facts.nextRefreshAt));
      setOrRemove(renewBefore, app, toSeconds(facts.renewBeforeMs));
    },
    recordTokenRefresh: (result, seconds, provider) => {
      startProvider(provider);
      refreshTotal.inc({ provider, result });
      refreshDuration.observe({ provider }, nonNegative(seconds));
    },
    setLeader: (leading) => leader.set(leading ? 1 : 0),
    setWorkqueueDepth: (depth) => queueDepth.set(queue, depth),
    observeQueueDuration: (seconds) => queueDuration.observe(queue, nonNegative(seconds)),
    countWorkqueueAdd: () => queueAdds.inc(queue),
    countWorkqueueRetry: () => queueRetries.inc(queue),
    recordReconcile: (outcome, seconds) => {
      reconcileTotal.inc({ outcome });
      reconcileDuration.observe({ outcome }, nonNegative(seconds));
    },
    forgetApp: (app) => {
      const labels = appLabels(app);
      for (const gauge of [expiration, nextRefresh, renewBefore, ready]) gauge.remove(labels);
      for (const stale of conditionSeries.get(appKey(labels)) ?? []) condition.remove(stale);
      conditionSeries.delete(appKey(labels));
    },
  };
}

const appLabels = ({ namespace, name, installation }: AppKey) => ({ namespace, name, ...(installation !== undefined ? { installation } : {}) });
const appKey = ({ namespace, name, installation }: AppKey) => `${namespace}/${name}/${installation ?? ''}`;
const conditionLabels = (app: AppKey, { type, status, reason }: ConditionFacts) => ({ ...appLabels(app), type, status, reason });
const sameLabels = (a: ReturnType<typeof conditionLabels>, b: ReturnType<typeof conditionLabels>) =>
  a.type === b.type && a.status === b.status && a.reason === b.reason;
const toSeconds = (ms: number | undefined) => (ms === undefined ? undefined : ms / 1000);

/** A clock step backwards must not produce a negative observation (prom-client would accept it). */
const nonNegative = (seconds: number) => (seconds > 0 ? seconds : 0);
