// The alert rules in deploy/monitoring/, checked and unit-tested by promtool (built from the
// Prometheus module, hack/promtool/build.sh), shipped unchanged as the kustomize PrometheusRule, each
// alert linking a runbook section that exists; and the ServiceMonitor that feeds them, both
// validated by the apiserver against the Prometheus Operator's CRDs.
import { describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { requiredEnvironment } from '../support/environment.ts';
import { kubectlOK, runClient, waitEstablished } from '../support/kubectl.ts';
import { findManifest, kustomizeBuild, toYAML, type Manifest } from '../support/manifests.ts';
import { createTestNamespace, deleteTestNamespace } from '../support/namespaces.ts';

const repository = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const monitoringDir = repository('deploy/monitoring/');
const rulesFile = repository('deploy/monitoring/prometheus-rules.yaml');
const rulesTests = repository('deploy/monitoring/tests/alerts.yaml');
const monitoringCRDs = repository('test/fixtures/prometheus-operator/');

interface Rule {
  alert?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleGroups {
  groups: { name: string; rules: Rule[] }[];
}
interface ServiceMonitor extends Manifest {
  spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string }[] };
}
interface Service extends Manifest {
  spec: { ports: { name: string }[] };
}
interface RulesTests {
  tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}

const promtool = (args: string[]) => runClient(requiredEnvironment('promtool'), args);
const rules = async () => parse(await readFile(rulesFile, 'utf8')) as RuleGroups;
const alerts = async () => (await rules()).groups.flatMap((group) => group.rules).filter((rule) => rule.alert !== undefined);

describe('deploy/monitoring/prometheus-rules.yaml', () => {
  it('passes promtool check rules', async () => {
    const result = await promtool(['check', 'rules', rulesFile]);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    expect(result.stdout).toContain(`SUCCESS: ${(await alerts()).length} rules found`);
  });

  it('fires and stays quiet as its unit tests say (promtool test rules)', async () => {
    const result = await promtool(['test', 'rules', rulesTests]);
    expect({ code: result.code, output: result.stdout + result.stderr }).toEqual({ code: 0, output: expect.stringContaining('SUCCESS') });
  });

  it('has a unit test for every alert, in which it fires', async () => {
    const { tests } = parse(await readFile(rulesTests, 'utf8')) as RulesTests;
    const firing = new Set(tests.flatMap((test) => test.alert_rule_test ?? []).filter((check) => check.exp_alerts.length > 0).map((check) => check.alertname));
    expect([...firing].sort()).toEqual((await alerts()).map((rule) => rule.alert).sort());
  });

  it('gives every alert a severity, a summary, a description and a runbook section that exists', async () => {
    for (const rule of await alerts()) {
      expect({ alert: rule.alert, severity: rule.labels?.severity }).toEqual({ alert: rule.alert, severity: expect.stringMatching(/^(critical|warning)$/) });
      expect(rule.annotations).toEqual(expect.objectContaining({ summary: expect.any(String), description: expect.any(String) }));
      const [, page, anchor] = /\/blob\/main\/(docs\/runbooks\/[\w-]+\.md)#([\w-]+)$/.exec(rule.annotations?.runbook_url ?? '') ?? [];
      expect({ alert: rule.alert, page }).toEqual({ alert: rule.alert, page: expect.any(String) });
      const headings = (await readFile(repository(page ?? ''), 'utf8')).split('\n').filter((line) => line.startsWith('#'));
      const anchors = headings.map((heading) => heading.replace(/^#+\s*/, '').toLowerCase().replace(/[^\w\s-]/g, '').replace(/\s/g, '-'));
      expect(anchors).toContain(anchor);
    }
  });

  it('ships unchanged as the PrometheusRule of `kubectl apply -k deploy/monitoring/`', async () => {
    const objects = await kustomizeBuild(monitoringDir);
    expect(objects.map((object) => object.kind).sort()).toEqual(['PrometheusRule', 'ServiceMonitor']);
    const rule = findManifest(objects, 'PrometheusRule', 'oauthapp-operator', 'oauthapp-system');
    expect(rule.spec).toEqual(await rules());
  });
});

describe('`kubectl apply -k deploy/monitoring/`', () => {
  it("is accepted by the apiserver, validated against the Prometheus Operator's CRDs (server-side dry run)", async () => {
    await kubectlOK(['apply', '--server-side', '-f', monitoringCRDs]);
    await waitEstablished(['-f', monitoringCRDs]);
    // The objects as they are, in a namespace of this test's own instead of oauthapp-system.
    const namespace = await createTestNamespace('monitoring');
    try {
      const objects = (await kustomizeBuild(monitoringDir)).map((object) => ({ ...object, metadata: { ...object.metadata, namespace } }));
      const applied = await kubectlOK(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], { input: toYAML(objects) });
      expect(applied.trim().split('\n').sort()).toEqual(['prometheusrule.monitoring.coreos.com/oauthapp-operator created (server dry run)', 'servicemonitor.monitoring.coreos.com/oauthapp-operator created (server dry run)']);
    } finally {
      await deleteTestNamespace(namespace);
    }
  });
});

describe('the ServiceMonitor of `kubectl apply -k deploy/monitoring/`', () => {
  it("scrapes the metrics port of deploy/'s Service, so the alerts' job is that Service's name", async () => {
    const monitor = findManifest<ServiceMonitor>(await kustomizeBuild(monitoringDir), 'ServiceMonitor', 'oauthapp-operator', 'oauthapp-system');
    const service = findManifest<Service>(await kustomizeBuild(repository('deploy/')), 'Service', 'oauthapp-operator', 'oauthapp-system');
    expect(service.metadata.labels).toEqual(expect.objectContaining(monitor.spec.selector.matchLabels));
    expect(service.spec.ports.map((port) => port.name)).toContain(monitor.spec.endpoints[0]?.port);
    expect(service.metadata.name).toMatch(/oauthapp-operator/);
  });
});
