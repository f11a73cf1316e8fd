// The Grafana dashboard (deploy/monitoring/dashboard.json) against a running operator: every metric
// its queries use is one the operator exports, and what the operator exports about an app, its
// token requests and itself carries no secret.
import { beforeAll, describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { expectNoLeaks } from '../support/chaos.ts';
import { eventually } from '../support/eventually.ts';
import { kubectlOK } from '../support/kubectl.ts';
import { secretData } from '../support/resources.ts';
import { useTestbed } from '../support/testbed.ts';

const dashboardFile = fileURLToPath(new URL('../../deploy/monitoring/dashboard.json', import.meta.url));

interface Panel {
  title: string;
  type: string;
  targets?: { expr: string }[];
}
interface Dashboard {
  panels: Panel[];
  templating: { list: { name: string; definition?: string }[] };
}

const promqlKeywords = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/** The metric names a PromQL expression selects: identifiers that are not functions, keywords, labels or durations. */
function metricNames(expr: string): string[] {
  const selectors = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  return [...selectors.matchAll(/(?<![\w$.:])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()/g)].map((match) => match[1] ?? '').filter((name) => !promqlKeywords.has(name.toLowerCase()));
}

/** The sample names of a /metrics body (a histogram's _bucket, _sum and _count each count). */
const exported = (body: string) => new Set(body.split('\n').filter((line) => line !== '' && !line.startsWith('#')).map((line) => /^[a-zA-Z_:][\w:]*/.exec(line)?.[0]));

const testbed = useTestbed('dashboard');
let body = '';
/** Every /metrics body read, for the leak check. */
const scrapes: string[] = [];
let dashboard: Dashboard;

beforeAll(async () => {
  dashboard = JSON.parse(await readFile(dashboardFile, 'utf8')) as Dashboard;
  // A Ready app with a token from a refresh: every per-app and per-provider series exists.
  const provider = await testbed.newProvider({ expiresIn: 3600 });
  await testbed.readyApp('crm-sync', provider);
  const data = await secretData(testbed.namespace, 'crm-sync-credentials');
  testbed.canaries.push(data?.access_token ?? '');
  body = await eventually('the app\'s series in /metrics', async () => {
    const text = await (await fetch(`${testbed.operator.metricsURL}/metrics`)).text();
    return text.includes(`oauthapp_next_refresh_timestamp_seconds{namespace="${testbed.namespace}",name="crm-sync"}`) ? text : undefined;
  });
  scrapes.push(body);
}, 90_000);

describe('metricNames (the dashboard check\'s PromQL reading)', () => {
  it('finds the selected metrics and skips functions, keywords, labels, strings and ranges', () => {
    expect(metricNames('histogram_quantile(0.95, sum by (provider, le) (rate(a_bucket{x="y z"}[$__rate_interval]))) / on (namespace) b - time() > bool 1 or vector(0)')).toEqual(['a_bucket', 'b']);
  });
});

describe('deploy/monitoring/dashboard.json', () => {
  it('queries only metrics a running operator exports', () => {
    const names = exported(body);
    const queries = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel: panel.title, expr: target.expr })));
    const variables = dashboard.templating.list.flatMap(({ name, definition }) => (definition ? [{ panel: `$${name}`, expr: definition.replace(/^label_values\(([^,]+),.*$/, '$1') }] : []));
    const used = [...queries, ...variables].flatMap(({ panel, expr }) => metricNames(expr).map((metric) => ({ panel, metric })));
    expect(used.length).toBeGreaterThan(queries.length);
    expect(used.filter(({ metric }) => !names.has(metric))).toEqual([]);
  });

  it('has a query in every panel but rows', () => {
    const empty = dashboard.panels.filter((panel) => panel.type !== 'row' && !panel.targets?.some((target) => metricNames(target.expr).length > 0));
    expect(empty.map((panel) => panel.title)).toEqual([]);
  });
});

describe('the running operator\'s /metrics', () => {
  it('reports the app\'s conditions and token schedule, the refresh by provider, leadership and version', () => {
    const app = `namespace="${testbed.namespace}",name="crm-sync"`;
    expect(body).toContain(`oauthapp_status_condition{${app},type="Ready",status="True",reason="TokenValid"} 1`);
    expect(body).toMatch(new RegExp(`^oauthapp_access_token_expiration_timestamp_seconds\\{${app}\\} \\d+`, 'm'));
    expect(body).toMatch(new RegExp(`^oauthapp_renew_before_seconds\\{${app}\\} 1200$`, 'm'));
    expect(body).toMatch(/^oauthapp_token_refresh_total\{provider="127\.0\.0\.1:\d+",result="success"\} 1$/m);
    expect(body).toContain('oauthapp_leader 1');
    expect(body).toMatch(/^oauthapp_build_info\{version="\d+\.\d+\.\d+"\} 1$/m);
  });

  it('drops every series of an app once the OAuthApp is deleted', async () => {
    await kubectlOK(['delete', 'oauthapp', 'crm-sync', '-n', testbed.namespace, '--wait=true']);
    const after = await eventually('the app\'s series gone from /metrics', async () => {
      const text = await (await fetch(`${testbed.operator.metricsURL}/metrics`)).text();
      return text.includes('name="crm-sync"') ? undefined : text;
    });
    scrapes.push(after);
    expect(after).toContain('oauthapp_leader 1');
  });

  it('leaked no client secret or token into it, the logs, Events or status', async () => {
    await expectNoLeaks({ canaries: testbed.canaries, namespace: testbed.namespace, logs: testbed.logs(), metrics: scrapes });
  });
});
