// The Helm chart (deploy/helm/oauthapp-operator), with real helm (built from its Go module) against
// a real apiserver: `helm lint` and `helm template` with each values combination, the objects
// accepted by the apiserver (server-side dry run, the Prometheus Operator's CRDs installed); values
// refused by the chart's schema; `helm install` with the defaults; the whole flow with the operator
// authenticated as the chart's ServiceAccount; `helm uninstall` keeping the CRD; and the chart
// making the same rules, pods, Services and NetworkPolicies as deploy/ (no drift).
// A control plane of this file's own: the chart installs the CRD and fixed-name objects (as a user's
// `helm install oauthapp-operator -n oauthapp-system` does), which must not meet the run's CRD or
// deploy.test.ts's install.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { parseConfig } from '../../src/config.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/localcluster/controlplane.ts';
import { requiredEnvironment } from '../support/environment.ts';
import { chartDir, helm, helmOK, helmTemplate, helmTemplateYAML, type Release } from '../support/helm.ts';
import { expectWholeFlowAsServiceAccount } from '../support/install-flow.ts';
import { kubectl, kubectlOK, waitEstablished } from '../support/kubectl.ts';
import { findManifest, kustomizeBuild, toYAML, type Manifest, type PolicyRule } from '../support/manifests.ts';
import { serviceAccountKubeconfig } from '../support/rbac.ts';

const repository = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const chartRules = join(chartDir, 'files/prometheus-rules.yaml');
const canonicalRules = repository('deploy/monitoring/prometheus-rules.yaml');
const monitoringCRDs = repository('test/fixtures/prometheus-operator/');

const release = 'oauthapp-operator';
const operatorNamespace = 'oauthapp-system';
const watched = ['sales', 'marketing'];

interface Binding extends Manifest {
  roleRef: { kind: string; name: string };
  subjects: Array<{ kind: string; name: string; namespace?: string }>;
}
interface Deployment extends Manifest {
  spec: {
    replicas: number;
    template: {
      metadata: { labels: Record<string, string> };
      spec: { serviceAccountName: string; terminationGracePeriodSeconds: number; containers: Array<{ image: string; args: string[]; env: Array<{ name: string; value?: string }> }> };
    };
  };
}

/** The values combinations every check runs through; together they set each value of values.yaml. */
const combinations: Array<[string, object]> = [
  ['the defaults (all namespaces)', {}],
  ['watched namespaces', { watchNamespaces: watched }],
  ['the callback in a Deployment of its own', { callback: { separate: { enabled: true, replicaCount: 3 }, rateLimit: '30/min', maxConnections: 128, trustedProxies: ['10.0.0.0/8'] } }],
  [
    'a ServiceMonitor, a PrometheusRule, the callback Ingress with TLS and a proxy',
    {
      serviceMonitor: { enabled: true, interval: '1m', scrapeTimeout: '20s', labels: { release: 'kube-prometheus-stack' } },
      prometheusRule: { enabled: true, labels: { release: 'kube-prometheus-stack' } },
      ingress: { enabled: true, className: 'nginx', annotations: { 'cert-manager.io/cluster-issuer': 'letsencrypt' }, tls: [{ secretName: 'oauthapp-callback-tls', hosts: ['ops.example.com'] }] },
      proxy: { httpsProxy: 'http://proxy.example.com:3128', noProxy: '10.96.0.1,.svc' },
      networkPolicy: { metricsFrom: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }] },
    },
  ],
  [
    'the image by digest and every pod and flag value changed',
    {
      image: { repository: 'registry.example.com/oauthapp-operator', digest: `sha256:${'a'.repeat(64)}`, pullPolicy: 'Always' },
      imagePullSecrets: [{ name: 'registry' }],
      replicaCount: 3,
      resources: { requests: { cpu: '200m', memory: '256Mi' }, limits: { memory: '512Mi' } },
      nodeOptions: '--max-old-space-size=384',
      leaderElection: false,
      logLevel: 'debug',
      terminationGracePeriodSeconds: 60,
      providerHosts: ['*.pipedrive.com', 'login.example.com'],
      extraArgs: ['--workers=16'],
      extraEnv: [{ name: 'NODE_EXTRA_CA_CERTS', value: '/etc/ssl/extra/ca.pem' }],
      serviceAccount: { annotations: { 'example.com/role': 'oauthapp' } },
      podAnnotations: { 'example.com/scrape': 'false' },
      podLabels: { team: 'platform' },
      nodeSelector: { 'kubernetes.io/os': 'linux' },
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'platform', effect: 'NoSchedule' }],
      affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, preference: { matchExpressions: [{ key: 'pool', operator: 'In', values: ['system'] }] } }] } },
      priorityClassName: 'system-cluster-critical',
      podDisruptionBudget: { maxUnavailable: 2 },
      nameOverride: 'oauthapp',
      fullnameOverride: 'oauthapp',
    },
  ],
  ['no CRD, NetworkPolicy or PodDisruptionBudget', { crds: { install: false }, networkPolicy: { enabled: false }, podDisruptionBudget: { enabled: false } }],
];

let cluster: RunningControlPlane;
const admin = () => ({ kubeconfig: cluster.adminKubeconfigPath });
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  cluster = await startControlPlane({ binDir: requiredEnvironment('binDir'), workDir: await mkdtemp(join(tmpdir(), 'oauthapp-helm-')), controllerManager: false });
  cleanups.push(() => cluster.stop());
  // The operator namespace as the README's Helm install makes it: restricted Pod Security.
  await kubectlOK(['apply', '-k', repository('deploy/namespace/')], admin());
  for (const namespace of watched) await kubectlOK(['create', 'namespace', namespace], admin());
  await kubectlOK(['apply', '--server-side', '-f', monitoringCRDs], admin());
  await waitEstablished(['-f', monitoringCRDs], admin());
}, 120_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

describe('helm lint', () => {
  it.each(combinations)('passes --strict with %s', async (_title, values) => {
    expect(await helmOK(['lint', '--strict', chartDir, '--values', '-'], { input: JSON.stringify(values) })).toContain('1 chart(s) linted, 0 chart(s) failed');
  });
});

describe('helm template', () => {
  it.each(combinations)('renders objects the apiserver accepts (server-side dry run) with %s', async (_title, values) => {
    const yaml = await helmTemplateYAML({ name: release, namespace: operatorNamespace, values });
    const result = await kubectl(['apply', '--dry-run=server', '-f', '-'], { ...admin(), input: yaml });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it("renders the CRD of crds/ with helm.sh/resource-policy: keep, and none with crds.install=false", async () => {
    const generated = parse(await readFile(repository('crds/oauthapp.dev_oauthapps.yaml'), 'utf8')) as Manifest;
    const crd = findManifest(await helmTemplate({ name: release, namespace: operatorNamespace }), 'CustomResourceDefinition', 'oauthapps.oauthapp.dev');
    expect(crd.spec).toEqual(generated.spec);
    expect(crd.metadata.annotations).toEqual({ 'helm.sh/resource-policy': 'keep' });
    const withoutKeep = findManifest(await helmTemplate({ name: release, namespace: operatorNamespace, values: { crds: { keep: false } } }), 'CustomResourceDefinition', 'oauthapps.oauthapp.dev');
    expect(withoutKeep.metadata.annotations).toBeUndefined();
    const without = await helmTemplate({ name: release, namespace: operatorNamespace, values: { crds: { install: false } } });
    expect(without.filter((object) => object.kind === 'CustomResourceDefinition')).toEqual([]);
  });

  it('runs the operator with --namespaces and grants it a Role in each watched namespace, nothing cluster-scoped but the CRD', async () => {
    const objects = await helmTemplate({ name: release, namespace: operatorNamespace, values: { watchNamespaces: watched } });
    expect(objects.filter((object) => object.kind.startsWith('Cluster'))).toEqual([]);
    const deployment = findManifest<Deployment>(objects, 'Deployment', release, operatorNamespace);
    expect(deployment.spec.template.spec.containers[0]?.args).toContain(`--namespaces=${watched.join(',')}`);
    for (const namespace of watched) {
      expect(findManifest(objects, 'Role', `${release}-watch`, namespace)).toBeDefined();
      expect(findManifest<Binding>(objects, 'RoleBinding', `${release}-watch`, namespace).subjects).toEqual([{ kind: 'ServiceAccount', name: release, namespace: operatorNamespace }]);
    }
  });

  it('pulls the image by digest, sets HTTPS_PROXY and NO_PROXY, and passes extraArgs last', async () => {
    const values = { image: { repository: 'registry.example.com/oauthapp-operator', tag: '9.9.9', digest: `sha256:${'b'.repeat(64)}` }, proxy: { httpsProxy: 'http://proxy:3128', noProxy: '.svc' }, extraArgs: ['--log-level=debug'] };
    const [container] = findManifest<Deployment>(await helmTemplate({ name: release, namespace: operatorNamespace, values }), 'Deployment', release, operatorNamespace).spec.template.spec.containers;
    expect(container?.image).toBe(`registry.example.com/oauthapp-operator@sha256:${'b'.repeat(64)}`);
    expect(container?.env).toEqual(expect.arrayContaining([{ name: 'HTTPS_PROXY', value: 'http://proxy:3128' }, { name: 'NO_PROXY', value: '.svc' }]));
    expect(container?.args.at(-1)).toBe('--log-level=debug');
    expect(container?.args).toContain('--log-level=info');
  });

  // The kubelet kills the container at the grace period: a stop still storing refresh results then
  // loses them. 5 s are left for the process to exit.
  it.each([
    ['the default', {}, 30],
    ['a raised one, with the callback apart', { terminationGracePeriodSeconds: 90, callback: { separate: { enabled: true } } }, 90],
  ])('runs every pod with a --shutdown-timeout 5 s below its terminationGracePeriodSeconds: %s', async (_title, values, grace) => {
    const deployments = (await helmTemplate({ name: release, namespace: operatorNamespace, values })).filter((object): object is Deployment => object.kind === 'Deployment');
    expect(deployments.length).toBeGreaterThan(0);
    for (const { spec } of deployments) {
      expect(spec.template.spec.terminationGracePeriodSeconds).toBe(grace);
      const parsed = parseConfig({ argv: spec.template.spec.containers[0]?.args ?? [], env: {}, podNamespace: undefined });
      expect(parsed.ok && parsed.config.shutdownTimeoutSeconds).toBe(grace - 5);
    }
  });

  it('refuses --shutdown-timeout in extraArgs, naming the value that sets it', async () => {
    const result = await helm(['template', release, chartDir, '--values', '-'], { input: JSON.stringify({ extraArgs: ['--shutdown-timeout=60'] }) });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('extraArgs may not set --shutdown-timeout: it follows terminationGracePeriodSeconds');
  });
});

describe('values.schema.json', () => {
  const refused: Array<[string, object, string]> = [
    ['an unknown value (a misspelt one)', { replicas: 3 }, "additional properties 'replicas' not allowed"],
    ['watchNamespaces given as a string', { watchNamespaces: 'sales' }, "at '/watchNamespaces': got string, want array"],
    ['an extraArgs entry that is no flag', { extraArgs: ['workers=16'] }, "at '/extraArgs/0': 'workers=16' does not match pattern"],
    ['an image digest that is no sha256 digest', { image: { repository: 'oauthapp-operator', digest: 'latest' } }, "at '/image/digest'"],
    ['a grace period with no room for a shutdown budget', { terminationGracePeriodSeconds: 5 }, "at '/terminationGracePeriodSeconds'"],
  ];

  it.each(refused)('refuses %s, naming it', async (_title, values, message) => {
    const result = await helm(['template', release, chartDir, '--values', '-'], { input: JSON.stringify(values) });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(message);
  });
});

describe('the PrometheusRule', () => {
  it("is off by default", async () => {
    expect((await helmTemplate({ name: release, namespace: operatorNamespace })).filter((object) => object.kind === 'PrometheusRule')).toEqual([]);
  });

  it("carries deploy/monitoring's alert rules unchanged (files/prometheus-rules.yaml is a copy: copy it again after changing them)", async () => {
    const canonical = await readFile(canonicalRules, 'utf8');
    expect(await readFile(chartRules, 'utf8')).toBe(canonical);
    const rule = findManifest(await helmTemplate({ name: release, namespace: operatorNamespace, values: { prometheusRule: { enabled: true } } }), 'PrometheusRule', release, operatorNamespace);
    expect(rule.spec).toEqual(parse(canonical));
  });
});

describe('helm install with the default values', () => {
  let installed: Manifest[];
  beforeAll(async () => {
    installed = await helmTemplate({ name: release, namespace: operatorNamespace });
    await helmOK(['install', release, chartDir, '--namespace', operatorNamespace], admin());
    await waitEstablished(['crd/oauthapps.oauthapp.dev'], admin());
  }, 60_000);

  it('creates every object the chart renders', async () => {
    const result = await kubectl(['get', '-f', '-', '-o', 'name'], { ...admin(), input: toYAML(installed) });
    expect(result.stderr).toBe('');
    expect(result.stdout.trim().split('\n')).toHaveLength(installed.length);
  });

  it("makes a pod the restricted Pod Security profile admits without a warning", async () => {
    const deployment = findManifest<Deployment>(installed, 'Deployment', release, operatorNamespace);
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'oauthapp-operator-dry-run', namespace: operatorNamespace, labels: deployment.spec.template.metadata.labels }, spec: deployment.spec.template.spec };
    const result = await kubectl(['create', '--dry-run=server', '-f', '-'], { ...admin(), input: JSON.stringify(pod) });
    expect(result.stderr).not.toMatch(/PodSecurity/);
    expect(result.code).toBe(0);
  });

  it("lets the operator, as the chart's ServiceAccount, run the whole flow: seed, refresh, authorize, rotate and restart", async () => {
    const account = await serviceAccountKubeconfig(operatorNamespace, release, cluster.adminKubeconfigPath);
    cleanups.push(() => account.remove());
    const [appNamespace = ''] = watched;
    await expectWholeFlowAsServiceAccount({ account: account.path, operatorNamespace, appNamespace, adminKubeconfig: cluster.adminKubeconfigPath, cleanups });
  }, 120_000);

  it('is removed by helm uninstall, which keeps the CRDs and the OAuthApps', async () => {
    const output = await helmOK(['uninstall', release, '--namespace', operatorNamespace], admin());
    expect(output).toMatch(/kept due to the resource policy:\s*\[CustomResourceDefinition\] oauthapps\.oauthapp\.dev/);
    expect(output).toMatch(/kept due to the resource policy:(\s*\[CustomResourceDefinition\] \S+)*\s*\[CustomResourceDefinition\] oauthinstallations\.oauthapp\.dev/);
    const left = await kubectl(['get', '-f', '-', '-o', 'name'], { ...admin(), input: toYAML(installed) });
    expect(left.stdout.trim().split('\n').sort()).toEqual([
      'customresourcedefinition.apiextensions.k8s.io/oauthapps.oauthapp.dev',
      'customresourcedefinition.apiextensions.k8s.io/oauthinstallations.oauthapp.dev',
    ]);
    expect(await kubectlOK(['get', 'oauthapps', '-n', watched[0] ?? '', '-o', 'name'], admin())).toMatch(/oauthapp\.oauthapp\.dev\/seeded/);
    expect((await helm(['status', release, '--namespace', operatorNamespace], admin())).stderr).toMatch(/release: not found/);
  });
});

describe('the chart and deploy/, not drifting apart', () => {
  const render = (values: object) => helmTemplate({ name: release, namespace: operatorNamespace, values } satisfies Release);
  const rules = (objects: Manifest[], kind: string, name: string, namespace?: string) => findManifest(objects, kind, name, namespace).rules as PolicyRule[];
  const installs = {
    'all namespaces (deploy/)': { values: {}, kustomization: 'deploy/', components: [[release, 'oauthapp-operator']] },
    'watched namespaces (deploy/overlays/namespaced)': { values: { watchNamespaces: watched }, kustomization: 'deploy/overlays/namespaced/', components: [[release, 'oauthapp-operator']] },
    'the callback apart (deploy/overlays/split-callback)': {
      values: { callback: { separate: { enabled: true } } },
      kustomization: 'deploy/overlays/split-callback/',
      components: [
        [release, 'oauthapp-operator'],
        [`${release}-callback`, 'oauthapp-callback'],
      ],
    },
  } as const;
  type Install = keyof typeof installs;
  const both = async (install: Install) => Promise.all([render(installs[install].values), kustomizeBuild(repository(installs[install].kustomization))]);

  it('grant the same rules for all namespaces', async () => {
    const [chart, kustomize] = await both('all namespaces (deploy/)');
    expect(rules(chart, 'ClusterRole', release)).toEqual(rules(kustomize, 'ClusterRole', 'oauthapp-operator'));
    expect(rules(chart, 'Role', release, operatorNamespace)).toEqual(rules(kustomize, 'Role', 'oauthapp-operator', operatorNamespace));
    expect(findManifest<Binding>(chart, 'ClusterRoleBinding', release).subjects).toEqual(findManifest<Binding>(kustomize, 'ClusterRoleBinding', 'oauthapp-operator').subjects);
  });

  it('grant the same rules in each watched namespace', async () => {
    const [chart, kustomize] = await both('watched namespaces (deploy/overlays/namespaced)');
    const clusterRules = rules(kustomize, 'ClusterRole', 'oauthapp-operator');
    const boundIn = kustomize.filter((object) => object.kind === 'RoleBinding' && object.metadata.namespace !== operatorNamespace).map((binding) => binding.metadata.namespace);
    expect(boundIn.sort()).toEqual([...watched].sort());
    for (const namespace of watched) expect(rules(chart, 'Role', `${release}-watch`, namespace)).toEqual(clusterRules);
    expect(rules(chart, 'Role', release, operatorNamespace)).toEqual(rules(kustomize, 'Role', 'oauthapp-operator', operatorNamespace));
  });

  it('grant the same rules to the callback apart, and the controller its own', async () => {
    const [chart, kustomize] = await both('the callback apart (deploy/overlays/split-callback)');
    const callback = `${release}-callback`;
    expect(rules(chart, 'ClusterRole', callback)).toEqual(rules(kustomize, 'ClusterRole', 'oauthapp-callback'));
    expect(rules(chart, 'Role', callback, operatorNamespace)).toEqual(rules(kustomize, 'Role', 'oauthapp-callback', operatorNamespace));
    expect(rules(chart, 'ClusterRole', release)).toEqual(rules(kustomize, 'ClusterRole', 'oauthapp-operator'));
    for (const name of [release, callback]) expect(findManifest<Deployment>(chart, 'Deployment', name, operatorNamespace).spec.template.spec.serviceAccountName).toBe(name);
  });

  // Object names and labels differ (the chart's carry the release); everything the pod runs with does not.
  const podSpec = (objects: Manifest[], name: string) => {
    const spec = structuredClone(findManifest<Deployment>(objects, 'Deployment', name, operatorNamespace).spec.template.spec) as Record<string, unknown>;
    delete spec.serviceAccountName;
    for (const constraint of spec.topologySpreadConstraints as Array<Record<string, unknown>>) delete constraint.labelSelector;
    return spec;
  };

  it.each(Object.keys(installs) as Install[])('run the same pods as %s: security context, flags, environment, ports, probes, resources and volumes', async (install) => {
    const [chart, kustomize] = await both(install);
    for (const [chartName, kustomizeName] of installs[install].components) expect(podSpec(chart, chartName)).toEqual(podSpec(kustomize, kustomizeName));
  });

  it.each(Object.keys(installs) as Install[])('serve the same Service ports as %s', async (install) => {
    const [chart, kustomize] = await both(install);
    const ports = (objects: Manifest[], name: string) => (findManifest(objects, 'Service', name, operatorNamespace).spec as { ports: unknown }).ports;
    for (const [chartName, kustomizeName] of installs[install].components) expect(ports(chart, chartName)).toEqual(ports(kustomize, kustomizeName));
  });

  it('scrape the same endpoints (the ServiceMonitor of deploy/monitoring)', async () => {
    const [chart, kustomize] = await Promise.all([render({ serviceMonitor: { enabled: true } }), kustomizeBuild(repository('deploy/monitoring/'))]);
    const endpoints = (objects: Manifest[], name: string) => (findManifest(objects, 'ServiceMonitor', name, operatorNamespace).spec as { endpoints: unknown }).endpoints;
    expect(endpoints(chart, release)).toEqual(endpoints(kustomize, 'oauthapp-operator'));
  });

  it('allow the same traffic (NetworkPolicies)', async () => {
    const [chart, kustomize] = await both('all namespaces (deploy/)');
    const rulesOf = (objects: Manifest[], name: string) => {
      const { podSelector: _selector, ...rest } = findManifest(objects, 'NetworkPolicy', name, operatorNamespace).spec as Record<string, unknown>;
      return rest;
    };
    for (const direction of ['egress', 'ingress']) expect(rulesOf(chart, `${release}-${direction}`)).toEqual(rulesOf(kustomize, `oauthapp-operator-${direction}`));
  });
});
