// The operator's metrics: the series the DESIGN names, on a registry of their own, labelled only
// with closed sets or object keys, and dropped when an OAuthApp goes away.
import { describe, expect, it } from '@jest/globals';
import { register as globalRegistry } from 'prom-client';
import { createMetrics, refreshResults, type AppFacts, type OperatorMetrics } from '../../../src/http/metrics.ts';

const app = { namespace: 'sales', name: 'crm-sync' };
const provider = 'oauth.pipedrive.com';

/** The exposition text, as Prometheus scrapes it. */
const scrape = (metrics: OperatorMetrics) => metrics.registry.metrics();

/** The sample lines of one series name (without # HELP / # TYPE). */
const samples = async (metrics: OperatorMetrics, name: string) =>
  (await scrape(metrics)).split('\n').filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `));

const ready: AppFacts['conditions'] = [
  { type: 'Ready', status: 'True', reason: 'TokenValid' },
  { type: 'Authorized', status: 'True', reason: 'RefreshTokenPresent' },
  { type: 'ClientSecretValid', status: 'True', reason: 'Verified' },
];
const withCondition = (type: string, status: string, reason: string) =>
  ready.map((condition) => (condition.type === type ? { type, status, reason } : condition));

describe('createMetrics', () => {
  it('declares each series with its type and a help text', async () => {
    const text = await scrape(createMetrics());
    const types = {
      oauthapp_access_token_expiration_timestamp_seconds: 'gauge',
      oauthapp_next_refresh_timestamp_seconds: 'gauge',
      oauthapp_renew_before_seconds: 'gauge',
      oauthapp_status_condition: 'gauge',
      oauthapp_token_refresh_total: 'counter',
      oauthapp_token_refresh_duration_seconds: 'histogram',
      oauthapp_ready: 'gauge',
      oauthapp_leader: 'gauge',
      oauthapp_build_info: 'gauge',
      workqueue_depth: 'gauge',
      workqueue_queue_duration_seconds: 'histogram',
      workqueue_adds_total: 'counter',
      workqueue_retries_total: 'counter',
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
    first.recordTokenRefresh('success', 0.2, provider);
    expect(await samples(first, 'oauthapp_token_refresh_total')).toContain(`oauthapp_token_refresh_total{provider="${provider}",result="success"} 1`);
    expect(await samples(second, 'oauthapp_token_refresh_total')).toEqual([]);
    expect(globalRegistry.getSingleMetric('oauthapp_token_refresh_total')).toBeUndefined();
  });

  it('starts every reconcile outcome at 0, so rates exist before the first failure', async () => {
    expect(await samples(createMetrics(), 'oauthapp_reconcile_total')).toEqual([
      'oauthapp_reconcile_total{outcome="success"} 0',
      'oauthapp_reconcile_total{outcome="error"} 0',
      'oauthapp_reconcile_total{outcome="requeue"} 0',
    ]);
  });

  it('starts every refresh result of a provider at 0 with its first token request', async () => {
    const metrics = createMetrics();
    metrics.recordTokenRefresh('timeout', 10, provider);
    const refreshes = await samples(metrics, 'oauthapp_token_refresh_total');
    expect(refreshes).toHaveLength(refreshResults.length);
    for (const result of ['success', 'invalid_grant', 'invalid_client', 'rate_limited', 'server_error', 'network', 'malformed_response', 'rejected', 'aborted']) {
      expect(refreshes).toContain(`oauthapp_token_refresh_total{provider="${provider}",result="${result}"} 0`);
    }
    expect(refreshes).toContain(`oauthapp_token_refresh_total{provider="${provider}",result="timeout"} 1`);
  });

  it('counts token refreshes by provider and result, and times them per provider in buckets from 50 ms to 30 s', async () => {
    const metrics = createMetrics();
    metrics.recordTokenRefresh('success', 0.3, provider);
    metrics.recordTokenRefresh('success', 0.04, provider);
    metrics.recordTokenRefresh('invalid_grant', 12, provider);
    metrics.recordTokenRefresh('success', 1, 'idp.example.com:8443');
    expect(await samples(metrics, 'oauthapp_token_refresh_total')).toEqual(
      expect.arrayContaining([
        `oauthapp_token_refresh_total{provider="${provider}",result="success"} 2`,
        `oauthapp_token_refresh_total{provider="${provider}",result="invalid_grant"} 1`,
        'oauthapp_token_refresh_total{provider="idp.example.com:8443",result="success"} 1',
      ]),
    );
    const buckets = await samples(metrics, 'oauthapp_token_refresh_duration_seconds_bucket');
    expect(buckets[0]).toBe(`oauthapp_token_refresh_duration_seconds_bucket{le="0.05",provider="${provider}"} 1`);
    expect(buckets).toContain(`oauthapp_token_refresh_duration_seconds_bucket{le="0.5",provider="${provider}"} 2`);
    expect(buckets).toContain(`oauthapp_token_refresh_duration_seconds_bucket{le="10",provider="${provider}"} 2`);
    expect(buckets).toContain(`oauthapp_token_refresh_duration_seconds_bucket{le="30",provider="${provider}"} 3`);
    expect(await samples(metrics, 'oauthapp_token_refresh_duration_seconds_count')).toEqual([
      `oauthapp_token_refresh_duration_seconds_count{provider="${provider}"} 3`,
      'oauthapp_token_refresh_duration_seconds_count{provider="idp.example.com:8443"} 1',
    ]);
  });

  it('records the access token expiry, the next refresh and the renew window in seconds, per app', async () => {
    const metrics = createMetrics();
    metrics.observeApp(app, {
      conditions: ready,
      accessTokenExpiresAt: Date.parse('2030-01-02T03:04:05.500Z'),
      nextRefreshAt: Date.parse('2030-01-02T02:50:00Z'),
      renewBeforeMs: 15 * 60_000,
    });
    expect(await samples(metrics, 'oauthapp_access_token_expiration_timestamp_seconds')).toEqual([
      'oauthapp_access_token_expiration_timestamp_seconds{namespace="sales",name="crm-sync"} 1893553445.5',
    ]);
    expect(await samples(metrics, 'oauthapp_next_refresh_timestamp_seconds')).toEqual(['oauthapp_next_refresh_timestamp_seconds{namespace="sales",name="crm-sync"} 1893552600']);
    expect(await samples(metrics, 'oauthapp_renew_before_seconds')).toEqual(['oauthapp_renew_before_seconds{namespace="sales",name="crm-sync"} 900']);
  });

  it('drops an app\'s next refresh series when no refresh is scheduled (a person must act)', async () => {
    const metrics = createMetrics();
    metrics.observeApp(app, { conditions: ready, accessTokenExpiresAt: 1_900_000_000_000, nextRefreshAt: 1_899_999_000_000 });
    metrics.observeApp(app, { conditions: withCondition('Authorized', 'False', 'InvalidGrant'), accessTokenExpiresAt: 1_900_000_000_000 });
    expect(await samples(metrics, 'oauthapp_next_refresh_timestamp_seconds')).toEqual([]);
    expect(await samples(metrics, 'oauthapp_access_token_expiration_timestamp_seconds')).toHaveLength(1);
  });

  it('records readiness as 1 or 0 per app, from its Ready condition', async () => {
    const metrics = createMetrics();
    metrics.observeApp(app, { conditions: ready });
    metrics.observeApp({ namespace: 'sales', name: 'other' }, { conditions: withCondition('Ready', 'False', 'TokenExpired') });
    expect(await samples(metrics, 'oauthapp_ready')).toEqual([
      'oauthapp_ready{namespace="sales",name="crm-sync"} 1',
      'oauthapp_ready{namespace="sales",name="other"} 0',
    ]);
  });

  it('exports one oauthapp_status_condition series per condition, valued 1 and labelled with type, status and reason', async () => {
    const metrics = createMetrics();
    metrics.observeApp(app, { conditions: ready });
    expect(await samples(metrics, 'oauthapp_status_condition')).toEqual([
      'oauthapp_status_condition{namespace="sales",name="crm-sync",type="Ready",status="True",reason="TokenValid"} 1',
      'oauthapp_status_condition{namespace="sales",name="crm-sync",type="Authorized",status="True",reason="RefreshTokenPresent"} 1',
      'oauthapp_status_condition{namespace="sales",name="crm-sync",type="ClientSecretValid",status="True",reason="Verified"} 1',
    ]);
  });

  it('removes a condition\'s earlier series when its status or reason changes', async () => {
    const metrics = createMetrics();
    metrics.observeApp(app, { conditions: ready });
    metrics.observeApp(app, { conditions: withCondition('ClientSecretValid', 'False', 'InvalidClient') });
    const series = await samples(metrics, 'oauthapp_status_condition');
    expect(series).toHaveLength(3);
    expect(series).toContain('oauthapp_status_condition{namespace="sales",name="crm-sync",type="ClientSecretValid",status="False",reason="InvalidClient"} 1');
    expect(series.join('\n')).not.toContain('reason="Verified"');
  });

  it('reports 0 for oauthapp_leader until this replica leads, and 0 again once it stops', async () => {
    const metrics = createMetrics();
    expect(await samples(metrics, 'oauthapp_leader')).toEqual(['oauthapp_leader 0']);
    metrics.setLeader(true);
    expect(await samples(metrics, 'oauthapp_leader')).toEqual(['oauthapp_leader 1']);
    metrics.setLeader(false);
    expect(await samples(metrics, 'oauthapp_leader')).toEqual(['oauthapp_leader 0']);
  });

  it('reports the version in oauthapp_build_info', async () => {
    expect(await samples(createMetrics({ version: '1.2.3' }), 'oauthapp_build_info')).toEqual(['oauthapp_build_info{version="1.2.3"} 1']);
  });

  it('feeds the work queue and runner hooks under client-go\'s workqueue names: depth, queue wait, adds, retries, reconcile outcome and duration', async () => {
    const metrics = createMetrics();
    // Passed unbound, as WorkQueueOptions and RunWorkersOptions take them.
    const { setWorkqueueDepth, observeQueueDuration, countWorkqueueAdd, countWorkqueueRetry, recordReconcile } = metrics;
    setWorkqueueDepth(7);
    observeQueueDuration(0.002);
    countWorkqueueAdd();
    countWorkqueueAdd();
    countWorkqueueRetry();
    recordReconcile('success', 0.03);
    recordReconcile('requeue', 0.01);
    recordReconcile('error', 2);
    expect(await samples(metrics, 'workqueue_depth')).toEqual(['workqueue_depth{name="oauthapp"} 7']);
    expect(await samples(metrics, 'workqueue_queue_duration_seconds_count')).toEqual(['workqueue_queue_duration_seconds_count{name="oauthapp"} 1']);
    expect(await samples(metrics, 'workqueue_adds_total')).toEqual(['workqueue_adds_total{name="oauthapp"} 2']);
    expect(await samples(metrics, 'workqueue_retries_total')).toEqual(['workqueue_retries_total{name="oauthapp"} 1']);
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
      metrics.observeApp(key, { conditions: ready, accessTokenExpiresAt: 1_900_000_000_000, nextRefreshAt: 1_899_999_000_000, renewBeforeMs: 1_200_000 });
    }
    metrics.forgetApp({ namespace: 'sales', name: 'crm-sync' });
    const text = await scrape(metrics);
    expect(text).not.toContain('name="crm-sync"');
    expect(text).toContain('oauthapp_ready{namespace="sales",name="other"} 1');
    expect(text).toContain('oauthapp_access_token_expiration_timestamp_seconds{namespace="sales",name="other"} 1900000000');
    expect(await samples(metrics, 'oauthapp_status_condition')).toHaveLength(3);
    expect(() => metrics.forgetApp({ namespace: 'sales', name: 'never-seen' })).not.toThrow();
  });

  it('labels an installation\'s series with its app and its installation, kept apart from the app\'s and from each other', async () => {
    const metrics = createMetrics();
    const first = { namespace: 'sales', name: 'crm', installation: 'crm-101' };
    const second = { namespace: 'sales', name: 'crm', installation: 'crm-102' };
    metrics.observeApp({ namespace: 'sales', name: 'crm' }, { conditions: ready });
    metrics.observeApp(first, { conditions: ready, accessTokenExpiresAt: 1_900_000_000_000 });
    metrics.observeApp(second, { conditions: withCondition('Ready', 'False', 'Uninstalled') });
    expect(await samples(metrics, 'oauthapp_ready')).toEqual([
      'oauthapp_ready{namespace="sales",name="crm"} 1',
      'oauthapp_ready{namespace="sales",name="crm",installation="crm-101"} 1',
      'oauthapp_ready{namespace="sales",name="crm",installation="crm-102"} 0',
    ]);
    expect(await samples(metrics, 'oauthapp_access_token_expiration_timestamp_seconds')).toEqual([
      'oauthapp_access_token_expiration_timestamp_seconds{namespace="sales",name="crm",installation="crm-101"} 1900000000',
    ]);

    metrics.forgetApp(second);
    const text = await scrape(metrics);
    expect(text).not.toContain('installation="crm-102"');
    expect(text).toContain('oauthapp_ready{namespace="sales",name="crm",installation="crm-101"} 1');
    expect(text).toContain('oauthapp_ready{namespace="sales",name="crm"} 1');
  });

  it('labels its series only with app keys, closed sets, the provider host and the version (and histogram le)', async () => {
    const metrics = createMetrics();
    metrics.observeApp(app, { conditions: ready, accessTokenExpiresAt: 1_900_000_000_000, nextRefreshAt: 1_899_999_000_000, renewBeforeMs: 1_200_000 });
    metrics.recordTokenRefresh('rate_limited', 1, provider);
    metrics.recordReconcile('error', 1);
    metrics.observeQueueDuration(1);
    const labelNames = new Set<string>();
    for (const metric of await metrics.registry.getMetricsAsJSON()) {
      if (!metric.name.startsWith('oauthapp_') && !metric.name.startsWith('workqueue_')) continue;
      for (const value of metric.values) for (const label of Object.keys(value.labels)) labelNames.add(label);
    }
    expect([...labelNames].sort()).toEqual(['le', 'name', 'namespace', 'outcome', 'provider', 'reason', 'result', 'status', 'type', 'version']);
  });
});
