// deploy/ as a cluster admin installs it: `kubectl apply -k` of deploy/crds, deploy/namespace and
// deploy/ against the real apiserver. Its pod is admitted under the restricted Pod Security profile
// (and loosened copies are not), and its ServiceAccount may do what the operator does and nothing
// more, as the apiserver's own RBAC answers for a token minted for it. The namespaced overlay builds
// and, bound for real, confines the operator to the namespaces it lists. `kubectl delete -k deploy/`
// removes the operator and keeps the CRD, the namespace and the refresh tokens in it.
// deploy/ makes fixed-name objects (namespace oauthapp-system, ClusterRole and ClusterRoleBinding
// oauthapp-operator) that no other test file uses; they are deleted afterwards. The CRD it
// re-applies is the one globalSetup installed and stays.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestNamespace, deleteTestNamespace } from '../support/namespaces.ts';
import { expectWholeFlowAsServiceAccount } from '../support/install-flow.ts';
import { oauthAppManifest } from '../support/resources.ts';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { isMap, isSeq, parseDocument } from 'yaml';
import { findManifest, kustomizeBuild, toYAML, type Manifest, type PolicyRule } from '../support/manifests.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl, kubectlOK } from '../support/kubectl.ts';
import { canI, describeQuestion, serviceAccountKubeconfig, type AccessQuestion, type ServiceAccountKubeconfig } from '../support/rbac.ts';

const deployDir = fileURLToPath(new URL('../../deploy/', import.meta.url));
const crdsDir = fileURLToPath(new URL('../../deploy/crds/', import.meta.url));
const namespaceDir = fileURLToPath(new URL('../../deploy/namespace/', import.meta.url));
const namespacedOverlayDir = fileURLToPath(new URL('../../deploy/overlays/namespaced/', import.meta.url));
const ruleFiles = ['base/clusterrole.yaml', 'base/role.yaml'].map((file) => fileURLToPath(new URL(`../../deploy/${file}`, import.meta.url)));

const operatorNamespace = 'oauthapp-system';
const serviceAccount = 'oauthapp-operator';
const suffix = randomBytes(3).toString('hex');

interface Subject {
  kind: string;
  name: string;
  namespace?: string;
}
interface RoleBinding extends Manifest {
  roleRef: { kind: string; name: string };
  subjects: Subject[];
}
type PodSpec = {
  serviceAccountName?: string;
  securityContext?: Record<string, unknown>;
  containers: Array<{ name: string; args?: string[]; ports?: Array<{ name: string; containerPort: number }>; securityContext?: Record<string, unknown>; [field: string]: unknown }>;
  [field: string]: unknown;
};
interface Deployment extends Manifest {
  spec: { replicas: number; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } };
}

let installed: Manifest[];
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  installed = await kustomizeBuild(deployDir);
  // The objects go first in cleanup, so even a failed apply leaves nothing behind.
  cleanups.push(() =>
    kubectlOK(['delete', '--ignore-not-found', '--wait=false', '-f', '-'], { input: toYAML([...installed, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: operatorNamespace } }]) }),
  );
  for (const dir of [crdsDir, namespaceDir, deployDir]) await kubectlOK(['apply', '-k', dir]);
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe('kubectl apply -k deploy/crds/, deploy/namespace/, deploy/', () => {
  it('installs the CRD and the operator namespace each on its own', async () => {
    expect((await kustomizeBuild(crdsDir)).map((object) => [object.kind, object.metadata.name])).toEqual([
      ['CustomResourceDefinition', 'oauthapps.oauthapp.dev'],
      ['CustomResourceDefinition', 'oauthinstallations.oauthapp.dev'],
    ]);
    expect((await kustomizeBuild(namespaceDir)).map((object) => [object.kind, object.metadata.name])).toEqual([['Namespace', operatorNamespace]]);
    const crd = JSON.parse(await kubectlOK(['get', 'crd', 'oauthapps.oauthapp.dev', '-o', 'json'])) as { status: { conditions: Array<{ type: string; status: string }> } };
    expect(crd.status.conditions.find((condition) => condition.type === 'Established')?.status).toBe('True');
  });

  it('installs with deploy/ the ServiceAccount, its RBAC, the Deployment, the Service and the NetworkPolicies, and neither the CRD nor the namespace', async () => {
    expect(installed.map((object) => object.kind).sort()).toEqual(
      ['ClusterRole', 'ClusterRoleBinding', 'Deployment', 'NetworkPolicy', 'NetworkPolicy', 'Role', 'RoleBinding', 'Service', 'ServiceAccount'].sort(),
    );
    // Every one of them is on the apiserver now.
    await kubectlOK(['get', '-f', '-'], { input: toYAML(installed) });
  });

  it('changes nothing when applied again', async () => {
    const lines = (await kubectlOK(['apply', '-k', deployDir])).trim().split('\n');
    expect(lines).toHaveLength(installed.length);
    for (const line of lines) expect(line).toMatch(/ unchanged$/);
  });

  it('puts the operator namespace under the restricted Pod Security profile (enforce, audit and warn)', async () => {
    const namespace = JSON.parse(await kubectlOK(['get', 'namespace', operatorNamespace, '-o', 'json'])) as Manifest;
    for (const mode of ['enforce', 'audit', 'warn']) expect(namespace.metadata.labels?.[`pod-security.kubernetes.io/${mode}`]).toBe('restricted');
  });
});

describe("the operator's pod", () => {
  let deployment: Deployment;
  beforeAll(async () => {
    deployment = JSON.parse(await kubectlOK(['get', 'deployment', 'oauthapp-operator', '-n', operatorNamespace, '-o', 'json'])) as Deployment;
  });

  /** A Pod made from the Deployment's (defaulted) pod template, as its ReplicaSet would make it. */
  const podFromTemplate = (name: string, change: (spec: PodSpec) => void = () => undefined) => {
    const spec = structuredClone(deployment.spec.template.spec);
    change(spec);
    return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: operatorNamespace, labels: deployment.spec.template.metadata.labels }, spec };
  };
  const createDryRun = (pod: object) => kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(pod) });

  it('is admitted under restricted, without a Pod Security warning', async () => {
    const result = await createDryRun(podFromTemplate(`oauthapp-operator-dry-run-${suffix}`));
    expect(result.stderr).not.toMatch(/PodSecurity/);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/created \(server dry run\)/);
  });

  const containers = (spec: PodSpec) => spec.containers.map((container) => (container.securityContext ??= {}));
  const loosened: Array<[string, (spec: PodSpec) => void, string]> = [
    [
      'runAsNonRoot: false',
      (spec) => {
        spec.securityContext = { ...spec.securityContext, runAsNonRoot: false };
        for (const context of containers(spec)) context.runAsNonRoot = false;
      },
      'must not set securityContext.runAsNonRoot=false',
    ],
    ['allowPrivilegeEscalation: true', (spec) => containers(spec).forEach((context) => (context.allowPrivilegeEscalation = true)), 'allowPrivilegeEscalation != false'],
    ['an added capability', (spec) => containers(spec).forEach((context) => (context.capabilities = { drop: ['ALL'], add: ['NET_ADMIN'] })), 'unrestricted capabilities'],
    ['an Unconfined seccomp profile', (spec) => (spec.securityContext = { ...spec.securityContext, seccompProfile: { type: 'Unconfined' } }), 'seccompProfile'],
  ];

  it.each(loosened)('is refused with %s', async (_title, change, violation) => {
    const result = await createDryRun(podFromTemplate(`oauthapp-operator-loosened-${suffix}`, change));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('violates PodSecurity "restricted:latest"');
    expect(result.stderr).toContain(violation);
  });

  it("is created twice by the Deployment's ReplicaSet, running as the operator's ServiceAccount", async () => {
    // kube-controller-manager runs the deployment and replicaset controllers: these are real pods
    // that passed admission (no scheduler or kubelet runs, so they stay Pending).
    const pods = await eventually('two operator pods', async () => {
      const list = JSON.parse(await kubectlOK(['get', 'pods', '-n', operatorNamespace, '-l', 'app.kubernetes.io/name=oauthapp-operator', '-o', 'json'])) as { items: Array<{ spec: PodSpec }> };
      return list.items.length === 2 ? list.items : undefined;
    });
    for (const pod of pods) expect(pod.spec.serviceAccountName).toBe(serviceAccount);
  });

  it('runs hardened beyond restricted: fixed non-root UID and GID, read-only root, memory limit, probes, leader election', () => {
    const { spec } = deployment.spec.template;
    const [container] = spec.containers;
    expect(deployment.spec.replicas).toBe(2);
    expect(spec).toMatchObject({
      serviceAccountName: serviceAccount,
      automountServiceAccountToken: true,
      terminationGracePeriodSeconds: 30,
      securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
    });
    expect(container).toMatchObject({
      args: expect.arrayContaining(['--leader-elect']),
      env: expect.arrayContaining([{ name: 'POD_NAMESPACE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } } }]),
      resources: { requests: { memory: '256Mi' }, limits: { memory: '256Mi' } },
      livenessProbe: { httpGet: { path: '/healthz', port: 'metrics' } },
      readinessProbe: { httpGet: { path: '/readyz', port: 'metrics' } },
      securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, runAsUser: 65532, runAsGroup: 65532 },
    });
    expect(container?.ports).toEqual([expect.objectContaining({ name: 'metrics', containerPort: 8080 }), expect.objectContaining({ name: 'callback', containerPort: 8081 })]);
  });

  // Measured in bench:scale (docs/BENCHMARKS.md, Scale): without the young generation's cap, Node 24
  // grows it to 128 MiB under a burst of allocation and the kernel OOM-kills the pod at 256Mi.
  it("gives V8 a heap that fits inside the memory limit: old and young generations capped, a quarter left for code and buffers", () => {
    const [container] = deployment.spec.template.spec.containers;
    const env = container?.env as Array<{ name: string; value?: string }>;
    const nodeOptions = env.find((variable) => variable.name === 'NODE_OPTIONS')?.value ?? '';
    const flag = (name: string) => Number(new RegExp(`--${name}=(\\d+)`).exec(nodeOptions)?.[1]);
    const limitMiB = Number(/^(\d+)Mi$/.exec((container?.resources as { limits: { memory: string } }).limits.memory)?.[1]);
    // V8's young generation is two semi-spaces and its large-object space: up to three of them.
    const heapMiB = flag('max-old-space-size') + 3 * flag('max-semi-space-size');
    expect(heapMiB).toBeLessThanOrEqual(0.75 * limitMiB);
  });

  it('is what the Service selects, on the metrics and callback ports', async () => {
    const service = JSON.parse(await kubectlOK(['get', 'service', 'oauthapp-operator', '-n', operatorNamespace, '-o', 'json'])) as Manifest & {
      spec: { selector: Record<string, string>; ports: Array<{ name: string; port: number; targetPort: string }> };
    };
    expect(deployment.spec.template.metadata.labels).toMatchObject(service.spec.selector);
    expect(service.spec.ports.map(({ name, port, targetPort }) => ({ name, port, targetPort }))).toEqual([
      { name: 'metrics', port: 8080, targetPort: 'metrics' },
      { name: 'callback', port: 8081, targetPort: 'callback' },
    ]);
  });
});

describe("the operator's network", () => {
  interface PolicyPort {
    protocol: string;
    port: number | string;
  }
  interface NetworkPolicy extends Manifest {
    spec: {
      podSelector: { matchLabels: Record<string, string> };
      policyTypes: string[];
      egress?: Array<{ to?: Array<Record<string, unknown>>; ports?: PolicyPort[] }>;
      ingress?: Array<{ from?: Array<Record<string, unknown>>; ports?: PolicyPort[] }>;
    };
  }
  let podLabels: Record<string, string>;
  let args: string[];
  const policy = async (name: string) => JSON.parse(await kubectlOK(['get', 'networkpolicy', name, '-n', operatorNamespace, '-o', 'json'])) as NetworkPolicy;
  beforeAll(async () => {
    const deployment = JSON.parse(await kubectlOK(['get', 'deployment', 'oauthapp-operator', '-n', operatorNamespace, '-o', 'json'])) as Deployment;
    podLabels = deployment.spec.template.metadata.labels;
    args = deployment.spec.template.spec.containers[0]?.args ?? [];
  });

  it('lets the pods reach only the cluster DNS, and TCP 443 and 6443 anywhere but link-local (cloud metadata)', async () => {
    const egress = await policy('oauthapp-operator-egress');
    expect(podLabels).toMatchObject(egress.spec.podSelector.matchLabels);
    expect(egress.spec.policyTypes).toEqual(['Egress']);
    expect(egress.spec.egress).toEqual([
      {
        to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } } }],
        ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }],
      },
      {
        to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['169.254.0.0/16'] } }, { ipBlock: { cidr: '::/0', except: ['fe80::/10'] } }],
        ports: [{ protocol: 'TCP', port: 443 }, { protocol: 'TCP', port: 6443 }],
      },
    ]);
  });

  it('lets anyone reach the callback port, and the metrics port only from namespaces labelled oauthapp.dev/metrics-scraper=true', async () => {
    const ingress = await policy('oauthapp-operator-ingress');
    expect(podLabels).toMatchObject(ingress.spec.podSelector.matchLabels);
    expect(ingress.spec.policyTypes).toEqual(['Ingress']);
    expect(ingress.spec.ingress).toEqual([
      { ports: [{ protocol: 'TCP', port: 'callback' }] },
      { from: [{ namespaceSelector: { matchLabels: { 'oauthapp.dev/metrics-scraper': 'true' } } }], ports: [{ protocol: 'TCP', port: 'metrics' }] },
    ]);
  });

  it('runs the operator with --provider-hosts and without loopback providers or preset overrides', () => {
    expect(args).toContain('--provider-hosts=*');
    expect(args.filter((arg) => /^--(no-)?allow-(loopback-providers|preset-overrides)/.test(arg))).toEqual([]);
  });
});

describe("the operator ServiceAccount's permissions", () => {
  let account: ServiceAccountKubeconfig;
  beforeAll(async () => {
    account = await serviceAccountKubeconfig(operatorNamespace, serviceAccount);
    cleanups.push(() => account.remove());
  });

  it('authenticate with a token minted for the ServiceAccount', async () => {
    expect((await kubectlOK(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], { kubeconfig: account.path })).trim()).toBe(
      `system:serviceaccount:${operatorNamespace}:${serviceAccount}`,
    );
    // A real request, not only an access review: the cluster-wide Secret list the informers make.
    await kubectlOK(['get', 'secrets', '--all-namespaces', '-l', 'oauthapp.dev/role=credentials'], { kubeconfig: account.path });
    expect((await kubectl(['get', 'nodes'], { kubeconfig: account.path })).stderr).toMatch(/forbidden/);
  });

  it('are enough to run the operator through the whole flow: seed, refresh, authorize, rotate and restart', async () => {
    const appNamespace = await createTestNamespace('least-privilege');
    cleanups.push(() => deleteTestNamespace(appNamespace));
    await expectWholeFlowAsServiceAccount({ account: account.path, operatorNamespace, appNamespace, cleanups });
  }, 240_000);

  const lease = 'leases.coordination.k8s.io/oauthapp-operator';
  const allowed: AccessQuestion[] = [
    { verb: 'get', resource: 'oauthapps.oauthapp.dev', namespace: 'sales' },
    { verb: 'list', resource: 'oauthapps.oauthapp.dev' },
    { verb: 'watch', resource: 'oauthapps.oauthapp.dev' },
    { verb: 'patch', resource: 'oauthapps.oauthapp.dev', namespace: 'sales' },
    { verb: 'patch', resource: 'oauthapps.oauthapp.dev', subresource: 'status', namespace: 'sales' },
    { verb: 'list', resource: 'secrets' },
    { verb: 'watch', resource: 'secrets' },
    { verb: 'get', resource: 'secrets', namespace: 'sales' },
    { verb: 'create', resource: 'secrets', namespace: 'sales' },
    { verb: 'update', resource: 'secrets', namespace: 'sales' },
    // An uninstalled installation's target Secret (the code deletes with a uid precondition only that one).
    { verb: 'delete', resource: 'secrets', namespace: 'sales' },
    { verb: 'create', resource: 'secrets', namespace: operatorNamespace },
    { verb: 'update', resource: 'secrets', namespace: operatorNamespace },
    { verb: 'delete', resource: 'secrets', namespace: operatorNamespace },
    { verb: 'create', resource: 'events.events.k8s.io', namespace: 'sales' },
    { verb: 'patch', resource: 'deployments.apps', namespace: 'sales' },
    { verb: 'patch', resource: 'statefulsets.apps', namespace: 'sales' },
    { verb: 'patch', resource: 'daemonsets.apps', namespace: 'sales' },
    { verb: 'create', resource: 'leases.coordination.k8s.io', namespace: operatorNamespace },
    { verb: 'get', resource: lease, namespace: operatorNamespace },
    { verb: 'update', resource: lease, namespace: operatorNamespace },
  ];
  const denied: AccessQuestion[] = [
    // Secrets: never deleted in bulk, never patched.
    { verb: 'deletecollection', resource: 'secrets', namespace: operatorNamespace },
    { verb: 'deletecollection', resource: 'secrets', namespace: 'sales' },
    { verb: 'patch', resource: 'secrets', namespace: 'sales' },
    // OAuthApps: the spec belongs to its owners.
    { verb: 'create', resource: 'oauthapps.oauthapp.dev', namespace: 'sales' },
    { verb: 'update', resource: 'oauthapps.oauthapp.dev', namespace: 'sales' },
    { verb: 'delete', resource: 'oauthapps.oauthapp.dev', namespace: 'sales' },
    // Leases: only its own, only in its own namespace.
    { verb: 'update', resource: lease, namespace: 'sales' },
    { verb: 'create', resource: 'leases.coordination.k8s.io', namespace: 'sales' },
    { verb: 'update', resource: 'leases.coordination.k8s.io/someone-elses-lease', namespace: operatorNamespace },
    { verb: 'delete', resource: lease, namespace: operatorNamespace },
    // Workloads: restarted, never read, listed, created or deleted; no pods at all.
    { verb: 'get', resource: 'deployments.apps', namespace: 'sales' },
    { verb: 'list', resource: 'deployments.apps', namespace: 'sales' },
    { verb: 'delete', resource: 'deployments.apps', namespace: 'sales' },
    { verb: 'create', resource: 'pods', namespace: operatorNamespace },
    { verb: 'create', resource: 'pods', namespace: 'sales' },
    { verb: 'create', resource: 'pods', subresource: 'exec', namespace: 'sales' },
    { verb: 'create', resource: 'events', namespace: 'sales' },
    { verb: 'patch', resource: 'events.events.k8s.io', namespace: 'sales' },
    { verb: 'create', resource: 'serviceaccounts', subresource: 'token', namespace: operatorNamespace },
    { verb: 'get', resource: 'configmaps', namespace: 'sales' },
    // Nothing cluster-scoped, no way to grant itself more.
    { verb: 'patch', resource: 'customresourcedefinitions.apiextensions.k8s.io' },
    { verb: 'get', resource: 'nodes' },
    { verb: 'list', resource: 'namespaces' },
    { verb: 'escalate', resource: 'clusterroles.rbac.authorization.k8s.io' },
    { verb: 'bind', resource: 'clusterroles.rbac.authorization.k8s.io' },
    { verb: 'create', resource: 'rolebindings.rbac.authorization.k8s.io', namespace: operatorNamespace },
    { verb: 'impersonate', resource: 'serviceaccounts', namespace: operatorNamespace },
    { verb: '*', resource: '*' },
    { verb: '*', resource: 'secrets', namespace: operatorNamespace },
    { verb: 'get', resource: '*', namespace: 'sales' },
  ];

  it.each(allowed.map((question) => [describeQuestion(question), question] as const))('may %s', async (_title, question) => {
    expect(await canI(account.path, question)).toBe(true);
  });

  it.each(denied.map((question) => [describeQuestion(question), question] as const))('may not %s', async (_title, question) => {
    expect(await canI(account.path, question)).toBe(false);
  });

  it('come from rules that are each explained by a comment and use no wildcard', async () => {
    for (const file of ruleFiles) {
      const document = parseDocument(await readFile(file, 'utf8'));
      const rules = document.get('rules', true);
      if (!isSeq(rules)) throw new Error(`${file} has no rules`);
      rules.items.forEach((rule, index) => {
        if (!isMap(rule)) throw new Error(`${file} rule ${index} is not a map`);
        // The first item's comment belongs to the sequence in the YAML document model.
        const comment = rule.commentBefore ?? (index === 0 ? rules.commentBefore : undefined);
        expect({ file, index, commented: Boolean(comment?.trim()) }).toEqual({ file, index, commented: true });
      });
    }
    for (const role of installed.filter((object) => object.kind === 'Role' || object.kind === 'ClusterRole')) {
      for (const rule of role.rules as PolicyRule[]) {
        for (const value of [...(rule.apiGroups ?? []), ...(rule.resources ?? []), ...rule.verbs, ...(rule.resourceNames ?? [])]) expect(value).not.toContain('*');
      }
    }
  });

  it('are exactly the rules the operator needs (a change here is a change to review)', () => {
    const rules = (kind: string, namespace?: string) => findManifest(installed, kind, 'oauthapp-operator', namespace).rules as PolicyRule[];
    expect(rules('ClusterRole')).toEqual([
      { apiGroups: ['oauthapp.dev'], resources: ['oauthapps'], verbs: ['get', 'list', 'watch', 'patch'] },
      { apiGroups: ['oauthapp.dev'], resources: ['oauthapps/status'], verbs: ['patch'] },
      { apiGroups: ['oauthapp.dev'], resources: ['oauthapps/finalizers', 'oauthinstallations/finalizers'], verbs: ['update'] },
      { apiGroups: ['oauthapp.dev'], resources: ['oauthinstallations'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] },
      { apiGroups: ['oauthapp.dev'], resources: ['oauthinstallations/status'], verbs: ['patch'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch', 'create', 'update', 'delete'] },
      { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create'] },
      { apiGroups: ['apps'], resources: ['deployments', 'statefulsets', 'daemonsets'], verbs: ['patch'] },
    ]);
    expect(rules('Role', operatorNamespace)).toEqual([
      { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch', 'create', 'update', 'delete'] },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: ['oauthapp-operator'], verbs: ['get', 'update'] },
    ]);
  });
});

describe('deploy/overlays/namespaced', () => {
  let overlay: Manifest[];
  beforeAll(async () => {
    overlay = await kustomizeBuild(namespacedOverlayDir);
  });

  const watchedBindings = () =>
    overlay.filter((object): object is RoleBinding => object.kind === 'RoleBinding' && object.metadata.namespace !== operatorNamespace);

  it('builds with no cluster-wide binding, one RoleBinding per namespace it passes to --namespaces', () => {
    expect(overlay.filter((object) => object.kind === 'ClusterRoleBinding')).toEqual([]);
    const deployment = findManifest<Deployment>(overlay, 'Deployment', 'oauthapp-operator', operatorNamespace);
    const flag = deployment.spec.template.spec.containers[0]?.args?.find((arg) => arg.startsWith('--namespaces='));
    const namespaces = flag?.slice('--namespaces='.length).split(',') ?? [];
    expect(namespaces.length).toBeGreaterThan(0);
    expect(watchedBindings().map((binding) => binding.metadata.namespace).sort()).toEqual([...namespaces].sort());
    for (const binding of watchedBindings()) {
      expect(binding.roleRef).toMatchObject({ kind: 'ClusterRole', name: 'oauthapp-operator' });
      expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: serviceAccount, namespace: operatorNamespace }]);
    }
    // The operator namespace keeps its Role for state Secrets and the Lease.
    expect(findManifest<RoleBinding>(overlay, 'RoleBinding', 'oauthapp-operator', operatorNamespace).roleRef).toMatchObject({ kind: 'Role', name: 'oauthapp-operator' });
  });

  it('confines the operator to the listed namespaces once bound for real', async () => {
    // The overlay's bindings for a ServiceAccount of this test's own, into namespaces of its own
    // (the deploy/ ServiceAccount already holds the cluster-wide binding).
    const account = `oauthapp-operator-${suffix}`;
    const watched = new Map(watchedBindings().map((binding) => [binding.metadata.namespace as string, `${binding.metadata.namespace}-${suffix}`]));
    const rebind = (binding: RoleBinding): RoleBinding => {
      const inOperatorNamespace = binding.metadata.namespace === operatorNamespace;
      return {
        ...binding,
        metadata: {
          name: inOperatorNamespace ? `${binding.metadata.name}-${suffix}` : binding.metadata.name,
          namespace: inOperatorNamespace ? operatorNamespace : (watched.get(binding.metadata.namespace as string) as string),
        },
        subjects: binding.subjects.map((subject) => ({ ...subject, name: account })),
      };
    };
    const objects = [
      ...[...watched.values()].map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })),
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: account, namespace: operatorNamespace } },
      ...overlay.filter((object): object is RoleBinding => object.kind === 'RoleBinding').map(rebind),
    ];
    cleanups.push(() => kubectlOK(['delete', '--ignore-not-found', '--wait=false', '-f', '-'], { input: toYAML(objects) }));
    await kubectlOK(['apply', '-f', '-'], { input: toYAML(objects) });
    const kubeconfig = await serviceAccountKubeconfig(operatorNamespace, account);
    cleanups.push(() => kubeconfig.remove());

    const [first] = [...watched.values()];
    const answers = async (questions: AccessQuestion[]) => Promise.all(questions.map(async (question) => [describeQuestion(question), await canI(kubeconfig.path, question)]));
    const may: AccessQuestion[] = [
      ...[...watched.values()].flatMap((namespace) => [
        { verb: 'watch', resource: 'secrets', namespace },
        { verb: 'list', resource: 'oauthapps.oauthapp.dev', namespace },
        { verb: 'create', resource: 'events.events.k8s.io', namespace },
      ]),
      { verb: 'delete', resource: 'secrets', namespace: operatorNamespace },
      { verb: 'delete', resource: 'secrets', namespace: first },
      { verb: 'update', resource: 'leases.coordination.k8s.io/oauthapp-operator', namespace: operatorNamespace },
    ];
    const mayNot: AccessQuestion[] = [
      { verb: 'list', resource: 'secrets' },
      { verb: 'list', resource: 'oauthapps.oauthapp.dev' },
      { verb: 'get', resource: 'secrets', namespace: 'default' },
      { verb: 'patch', resource: 'deployments.apps', namespace: 'default' },
      { verb: 'delete', resource: 'secrets', namespace: 'default' },
    ];
    expect(await answers(may)).toEqual(may.map((question) => [describeQuestion(question), true]));
    expect(await answers(mayNot)).toEqual(mayNot.map((question) => [describeQuestion(question), false]));
  });
});

// Last: it removes the install the tests above use.
describe('kubectl delete -k deploy/', () => {
  it('removes the operator and keeps the CRD, the OAuthApps, the operator namespace and the state Secrets in it', async () => {
    const appNamespace = await createTestNamespace('uninstall');
    cleanups.push(() => deleteTestNamespace(appNamespace));
    await kubectlOK(['apply', '-n', appNamespace, '-f', '-'], { input: JSON.stringify(oauthAppManifest({ name: 'kept', clientId: 'kept-client', tokenURL: 'https://oauth.example.com/token', redirectURI: 'https://ops.example.com/oauth/callback' })) });
    const state = { apiVersion: 'v1', kind: 'Secret', metadata: { name: `uninstall-state-${suffix}`, namespace: operatorNamespace, labels: { 'oauthapp.dev/role': 'state' } }, stringData: { refresh_token: 'kept' } };
    await kubectlOK(['apply', '-f', '-'], { input: JSON.stringify(state) });

    await kubectlOK(['delete', '-k', deployDir]);

    const left = await kubectl(['get', '-f', '-', '-o', 'name'], { input: toYAML(installed) });
    expect(left.stdout).toBe('');
    expect(left.stderr.trim().split('\n')).toHaveLength(installed.length);
    for (const line of left.stderr.trim().split('\n')) expect(line).toMatch(/NotFound/);
    await kubectlOK(['get', 'crd', 'oauthapps.oauthapp.dev']);
    await kubectlOK(['get', 'oauthapp', 'kept', '-n', appNamespace]);
    expect(await kubectlOK(['get', 'namespace', operatorNamespace, '-o', 'jsonpath={.status.phase}'])).toBe('Active');
    expect(await kubectlOK(['get', 'secret', state.metadata.name, '-n', operatorNamespace, '-o', 'name'])).toBe(`secret/${state.metadata.name}\n`);
  });
});
