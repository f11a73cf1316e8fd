// The operator's Prometheus metrics, on a registry of their own (never prom-client's global one, so
// tests and embedders get a clean set each time). Label values come from closed sets (result,
// outcome) or from object keys (namespace, name): never from a secret, an error message or a URL.
//
// The recorders are plain functions, bound at creation, with the signatures of the hooks they feed:
// WorkQueueOptions.onDepthChange / onLatency, RunWorkersOptions.onReconcile.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ReconcileOutcome } from '../controller/runner.ts';
import { tokenErrorCodes } from '../oauth/errors.ts';

/** How a token refresh ended: `success`, or the token client's error code. */
export const refreshResults = ['success', ...tokenErrorCodes] as const;
export type RefreshResult = (typeof refreshResults)[number];

export const reconcileOutcomes = ['success', 'error', 'requeue'] as const satisfies readonly ReconcileOutcome[];

/** One OAuthApp, as its series are labelled. */
export interface AppKey {
  namespace: string;
  name: string;
}

export interface OperatorMetrics {
  /** Holds every series below plus the process metrics (process_*, nodejs_*). */
  readonly registry: Registry;
  /** The app's current access token expires at `expiresAtMs` (milliseconds since the epoch). */
  readonly setAccessTokenExpiry: (app: AppKey, expiresAtMs: number) => void;
  /** The app's Ready condition: 1 when True, 0 otherwise. */
  readonly setAppReady: (app: AppKey, ready: boolean) => void;
  /** One token request to a provider (either grant), how it ended and how long it took. */
  readonly recordTokenRefresh: (result: RefreshResult, seconds: number) => void;
  /** Keys waiting for a worker (fits WorkQueueOptions.onDepthChange). */
  readonly setWorkqueueDepth: (depth: number) => void;
  /** How long a key waited in the queue before a worker took it (fits WorkQueueOptions.onLatency). */
  readonly observeQueueDuration: (seconds: number) => void;
  /** One reconcile, its outcome and duration (fits RunWorkersOptions.onReconcile). */
  readonly recordReconcile: (outcome: ReconcileOutcome, seconds: number) => void;
  /** Drops every series labelled with this app (call when the OAuthApp is gone). */
  readonly forgetApp: (namespace: string, name: string) => void;
}

export interface MetricsOptions {
  /** Register prom-client's process and Node.js runtime metrics too (default true). */
  processMetrics?: boolean;
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

  const expiration = new Gauge({
    name: 'oauthapp_access_token_expiration_timestamp_seconds',
    help: 'When the access token in the OAuthApp\'s target Secret expires, in seconds since the Unix epoch.',
    labelNames: ['namespace', 'name'] as const,
    registers,
  });
  const ready = new Gauge({
    name: 'oauthapp_ready',
    help: 'Whether the OAuthApp\'s Ready condition is True (1) or not (0).',
    labelNames: ['namespace', 'name'] as const,
    registers,
  });
  const refreshTotal = new Counter({
    name: 'oauthapp_token_refresh_total',
    help: 'Token requests sent to OAuth providers, by how they ended (success, or the error kind such as invalid_grant or timeout).',
    labelNames: ['result'] as const,
    registers,
  });
  const refreshDuration = new Histogram({
    name: 'oauthapp_token_refresh_duration_seconds',
    help: 'How long token requests to OAuth providers took, from sending to a usable answer or failure.',
    buckets: tokenRefreshBuckets,
    registers,
  });
  const queueDepth = new Gauge({
    name: 'oauthapp_workqueue_depth',
    help: 'OAuthApp keys waiting in the work queue for a worker (keys scheduled for later are not counted).',
    registers,
  });
  const queueDuration = new Histogram({
    name: 'oauthapp_workqueue_queue_duration_seconds',
    help: 'How long a key waited in the work queue before a worker took it.',
    buckets: queueDurationBuckets,
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

  // Every result and outcome exists from the start at 0, so rate() and absent() work before the
  // first failure of a kind.
  for (const result of refreshResults) refreshTotal.inc({ result }, 0);
  for (const outcome of reconcileOutcomes) {
    reconcileTotal.inc({ outcome }, 0);
    reconcileDuration.zero({ outcome });
  }
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });

  return {
    registry,
    setAccessTokenExpiry: (app, expiresAtMs) => expiration.set(appLabels(app), expiresAtMs / 1000),
    setAppReady: (app, isReady) => ready.set(appLabels(app), isReady ? 1 : 0),
    recordTokenRefresh: (result, seconds) => {
      refreshTotal.inc({ result });
      refreshDuration.observe(nonNegative(seconds));
    },
    setWorkqueueDepth: (depth) => queueDepth.set(depth),
    observeQueueDuration: (seconds) => queueDuration.observe(nonNegative(seconds)),
    recordReconcile: (outcome, seconds) => {
      reconcileTotal.inc({ outcome });
      reconcileDuration.observe({ outcome }, nonNegative(seconds));
    },
    forgetApp: (namespace, name) => {
      const labels = appLabels({ namespace, name });
      expiration.remove(labels);
      ready.remove(labels);
    },
  };
}

const appLabels = ({ namespace, name }: AppKey) => ({ namespace, name });

/** A clock step backwards must not produce a negative observation (prom-client would accept it). */
const nonNegative = (seconds: number) => (seconds > 0 ? seconds : 0);
