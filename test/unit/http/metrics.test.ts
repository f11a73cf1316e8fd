// The operator's metrics: the series the DESIGN names, on a registry of their own, labelled only
// with closed sets or object keys, and dropped when an OAuthApp goes away.
import { describe, expect, it } from '@jest/globals';
import { register as globalRegistry } from 'prom-client';
import { createMetrics, refreshResults, type OperatorMetrics } from '../../../src/http/metrics.ts';

const app = { namespace: 'sales', name: 'crm-sync' };

/** The exposition text, as Prometheus scrapes it. */
const scrape = (metrics: OperatorMetrics) => metrics.registry.metrics();

/** The sample lines of one series name (without # HELP / # TYPE). */
const samples = async (metrics: OperatorMetrics, name: string) =>
  (await scrape(metrics)).split('\n').filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `));

describe('createMetrics', () => {
  it('declares each series with its type and a help text', async () => {
    const text = await scrape(createMetrics());
    const types = {
      oauthapp_access_token_expiration_timestamp_seconds: 'gauge',
      oauthapp_token_refresh_total: 'counter',
      oauthapp_token_refresh_duration_seconds: 'histogram',
      oauthapp_ready: 'gauge',
      oauthapp_workqueue_depth: 'gauge',
      oauthapp_workqueue_queue_duration_seconds: 'histogram',
      oauthapp_reconcile_duration_seconds: 'histogram',
      oauthapp_reconcile_total: 'counter',
    };
    for (const [name, type] of Object.entries(types)) {
      expect(text).toContain(`# TYPE ${name} ${type}\n`);
      expect(text).toMatch(new RegExp(`# HELP ${name} \\S.{20,}\\n`));
    }
  });

  it('includes the process metrics, unless asked not to', async () => {
    const text = await scrape(createMetrics());
    expect(text).toContain('# TYPE process_resident_memory_bytes gauge');
    expect(text).toContain('# TYPE nodejs_heap_size_used_bytes gauge');
    expect(await scrape(createMetrics({ processMetrics: false }))).not.toContain('process_');
  });

  it('uses a registry of its own, so two instances never collide and the global one stays empty', async () => {
    const first = createMetrics();
    const second = createMetrics();
    first.recordTokenRefresh('success', 0.2);
    expect(await samples(first, 'oauthapp_token_refresh_total')).toContain('oauthapp_token_refresh_total{result="success"} 1');
    expect(await samples(second, 'oauthapp_token_refresh_total')).toContain('oauthapp_token_refresh_total{result="success"} 0');
    expect(globalRegistry.getSingleMetric('oauthapp_token_refresh_total')).toBeUndefined();
  });

  it('starts every refresh result and reconcile outcome at 0, so rates exist before the first failure', async () => {
    const metrics = createMetrics();
    const refreshes = await samples(metrics, 'oauthapp_token_refresh_total');
    expect(refreshes).toHaveLength(refreshResults.length);
    for (const result of ['success', 'invalid_grant', 'invalid_client', 'rate_limited', 'server_error', 'timeout', 'network', 'malformed_response', 'rejected', 'aborted']) {
      expect(refreshes).toContain(`oauthapp_token_refresh_total{result="${result}"} 0`);
    }
    expect(await samples(metrics, 'oauthapp_reconcile_total')).toEqual([
      'oauthapp_reconcile_total{outcome="success"} 0',
      'oauthapp_reconcile_total{outcome="error"} 0',
      'oauthapp_reconcile_total{outcome="requeue"} 0',
    ]);
  });

  it('records the access token expiry in seconds since the epoch, per app', async () => {
    const metrics = createMetrics();
    metrics.setAccessTokenExpiry(app, Date.parse('2030-01-02T03:04:05.500Z'));
    expect(await samples(metrics, 'oauthapp_access_token_expiration_timestamp_seconds')).toEqual([
      'oauthapp_access_token_expiration_timestamp_seconds{namespace="sales",name="crm-sync"} 1893553445.5',
    ]);
  });

  it('records readiness as 1 or 0 per app', async () => {
    const metrics = createMetrics();
    metrics.setAppReady(app, true);
    metrics.setAppReady({ namespace: 'sales', name: 'other' }, false);
    expect(await samples(metrics, 'oauthapp_ready')).toEqual([
      'oauthapp_ready{namespace="sales",name="crm-sync"} 1',
      'oauthapp_ready{namespace="sales",name="other"} 0',
    ]);
    metrics.setAppReady(app, false);
    expect(await samples(metrics, 'oauthapp_ready')).toContain('oauthapp_ready{namespace="sales",name="crm-sync"} 0');
  });

  it('counts token refreshes by result and times them in buckets from 50 ms to 30 s', async () => {
    const metrics = createMetrics();
    metrics.recordTokenRefresh('success', 0.3);
    metrics.recordTokenRefresh('success', 0.04);
    metrics.recordTokenRefresh('invalid_grant', 12);
    expect(await samples(metrics, 'oauthapp_token_refresh_total')).toEqual(
      expect.arrayContaining(['oauthapp_token_refresh_total{result="success"} 2', 'oauthapp_token_refresh_total{result="invalid_grant"} 1']),
    );
    const buckets = await samples(metrics, 'oauthapp_token_refresh_duration_seconds_bucket');
    expect(buckets[0]).toBe('oauthapp_token_refresh_duration_seconds_bucket{le="0.05"} 1');
    expect(buckets).toContain('oauthapp_token_refresh_duration_seconds_bucket{le="0.5"} 2');
    expect(buckets).toContain('oauthapp_token_refresh_duration_seconds_bucket{le="10"} 2');
    expect(buckets).toContain('oauthapp_token_refresh_duration_seconds_bucket{le="30"} 3');
    expect(await samples(metrics, 'oauthapp_token_refresh_duration_seconds_count')).toEqual(['oauthapp_token_refresh_duration_seconds_count 3']);
  });

  it('feeds the work queue and runner hooks: depth, queue wait, reconcile outcome and duration', async () => {
    const metrics = createMetrics();
    // Passed unbound, as WorkQueueOptions and RunWorkersOptions take them.
    const { setWorkqueueDepth, observeQueueDuration, recordReconcile } = metrics;
    setWorkqueueDepth(7);
    observeQueueDuration(0.002);
    recordReconcile('success', 0.03);
    recordReconcile('requeue', 0.01);
    recordReconcile('error', 2);
    expect(await samples(metrics, 'oauthapp_workqueue_depth')).toEqual(['oauthapp_workqueue_depth 7']);
    expect(await samples(metrics, 'oauthapp_workqueue_queue_duration_seconds_count')).toEqual(['oauthapp_workqueue_queue_duration_seconds_count 1']);
    expect(await samples(metrics, 'oauthapp_reconcile_total')).toEqual([
      'oauthapp_reconcile_total{outcome="success"} 1',
      'oauthapp_reconcile_total{outcome="error"} 1',
      'oauthapp_reconcile_total{outcome="requeue"} 1',
    ]);
    expect(await samples(metrics, 'oauthapp_reconcile_duration_seconds_count')).toEqual([
      'oauthapp_reconcile_duration_seconds_count{outcome="success"} 1',
      'oauthapp_reconcile_duration_seconds_count{outcome="error"} 1',
      'oauthapp_reconcile_duration_seconds_count{outcome="requeue"} 1',
    ]);
  });

  it('never records a negative duration (a clock that stepped back)', async () => {
    const metrics = createMetrics();
    metrics.recordReconcile('success', -5);
    expect(await samples(metrics, 'oauthapp_reconcile_duration_seconds_sum')).toContain('oauthapp_reconcile_duration_seconds_sum{outcome="success"} 0');
  });

  it('forgetApp drops every series of that app and only of that app', async () => {
    const metrics = createMetrics();
    const other = { namespace: 'sales', name: 'other' };
    for (const key of [app, other]) {
      metrics.setAccessTokenExpiry(key, 1_900_000_000_000);
      metrics.setAppReady(key, true);
    }
    metrics.forgetApp('sales', 'crm-sync');
    const text = await scrape(metrics);
    expect(text).not.toContain('name="crm-sync"');
    expect(text).toContain('oauthapp_ready{namespace="sales",name="other"} 1');
    expect(text).toContain('oauthapp_access_token_expiration_timestamp_seconds{namespace="sales",name="other"} 1900000000');
    expect(() => metrics.forgetApp('sales', 'never-seen')).not.toThrow();
  });

  it('labels its series only with namespace, name, result, outcome (and histogram le)', async () => {
    const metrics = createMetrics();
    metrics.setAccessTokenExpiry(app, 1_900_000_000_000);
    metrics.setAppReady(app, true);
    metrics.recordTokenRefresh('rate_limited', 1);
    metrics.recordReconcile('error', 1);
    metrics.observeQueueDuration(1);
    const labelNames = new Set<string>();
    for (const metric of await metrics.registry.getMetricsAsJSON()) {
      if (!metric.name.startsWith('oauthapp_')) continue;
      for (const value of metric.values) for (const label of Object.keys(value.labels)) labelNames.add(label);
    }
    expect([...labelNames].sort()).toEqual(['le', 'name', 'namespace', 'outcome', 'result']);
  });
});
