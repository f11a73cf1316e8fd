// deploy/overlays/split-callback: the internet-facing OAuth callback in a Deployment of its own
// (`--components=callback`) with a ServiceAccount that reaches only what a callback needs, beside
// the controller (`--components=controller`). The overlay's RBAC objects are applied for real
// (moved into this file's own operator namespace, cluster-scoped names suffixed, so nothing here
// meets deploy.test.ts's fixed-name install), each component runs in-process authenticated as its
// own ServiceAccount with a token from the TokenRequest API, and a person's first authorization
// goes through the whole way. The apiserver's RBAC answers what the callback may and may not do.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { isMap, isSeq, parseAllDocuments } from 'yaml';
import { findManifest, kustomizeBuild, toYAML, type Manifest, type PolicyRule } from '../support/manifests.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl, kubectlOK } from '../support/kubectl.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { createTestNamespace, deleteTestNamespace } from '../support/namespaces.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';
import { consent, visit } from '../support/person.ts';
import { canI, describeQuestion, serviceAccountKubeconfig, type AccessQuestion } from '../support/rbac.ts';
import { apply, condition, getApp, oauthAppManifest, opaqueSecret, secretData } from '../support/resources.ts';
import { startTestProvider, type TestProvider } from '../support/sandbox.ts';

const overlayDir = fileURLToPath(new URL('../../deploy/overlays/split-callback/', import.meta.url));
const callbackRulesFile = fileURLToPath(new URL('../../deploy/overlays/split-callback/callback-rbac.yaml', import.meta.url));
const deployDir = fileURLToPath(new URL('../../deploy/', import.meta.url));
const installNamespace = 'oauthapp-system';
const suffix = randomBytes(3).toString('hex');

interface Binding extends Manifest {
  roleRef: { apiGroup: string; kind: string; name: string };
  subjects: Array<{ kind: string; name: string; namespace?: string }>;
}
interface Deployment extends Manifest {
  spec: {
    replicas: number;
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string> };
      spec: { serviceAccountName: string; containers: Array<{ args: string[]; ports: Array<{ name: string; containerPort: number }> }> };
    };
  };
}
interface Service extends Manifest {
  spec: { selector: Record<string, string>; ports: Array<{ name: string; port: number; targetPort: string }> };
}

let overlay: Manifest[];
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  overlay = await kustomizeBuild(overlayDir);
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

describe('deploy/overlays/split-callback', () => {
  it('builds two Deployments: the controller with --components=controller, the callback with --components=callback as its own ServiceAccount', () => {
    const controller = findManifest<Deployment>(overlay, 'Deployment', 'oauthapp-operator', installNamespace);
    const callback = findManifest<Deployment>(overlay, 'Deployment', 'oauthapp-callback', installNamespace);
    expect(overlay.filter((object) => object.kind === 'Deployment')).toHaveLength(2);

    const [controllerContainer] = controller.spec.template.spec.containers;
    expect(controllerContainer?.args).toContain('--components=controller');
    expect(controllerContainer?.args).toContain('--leader-elect');
    expect(controllerContainer?.ports.map((port) => port.name)).toEqual(['metrics']);
    expect(controller.spec.template.spec.serviceAccountName).toBe('oauthapp-operator');

    const [callbackContainer] = callback.spec.template.spec.containers;
    expect(callbackContainer?.args).toContain('--components=callback');
    expect(callbackContainer?.args).not.toContain('--leader-elect');
    expect(callbackContainer?.ports.map((port) => [port.name, port.containerPort])).toEqual([
      ['metrics', 8080],
      ['callback', 8081],
    ]);
    expect(callback.spec.template.spec.serviceAccountName).toBe('oauthapp-callback');
    expect(callback.spec.replicas).toBe(2);
    // Neither Deployment's selector matches the other's pods.
    expect(callback.spec.template.metadata.labels).not.toMatchObject(controller.spec.selector.matchLabels);
    expect(controller.spec.template.metadata.labels).not.toMatchObject(callback.spec.selector.matchLabels);
  });

  it("sends the callback port to the callback pods only; the controller's Service keeps the metrics port", () => {
    const callbackService = findManifest<Service>(overlay, 'Service', 'oauthapp-callback', installNamespace);
    const controllerService = findManifest<Service>(overlay, 'Service', 'oauthapp-operator', installNamespace);
    const callback = findManifest<Deployment>(overlay, 'Deployment', 'oauthapp-callback', installNamespace);
    const controller = findManifest<Deployment>(overlay, 'Deployment', 'oauthapp-operator', installNamespace);
    expect(callback.spec.template.metadata.labels).toMatchObject(callbackService.spec.selector);
    expect(controller.spec.template.metadata.labels).not.toMatchObject(callbackService.spec.selector);
    expect(callbackService.spec.ports.map(({ name, port, targetPort }) => ({ name, port, targetPort }))).toEqual([
      { name: 'callback', port: 8081, targetPort: 'callback' },
      { name: 'metrics', port: 8080, targetPort: 'metrics' },
    ]);
    expect(controller.spec.template.metadata.labels).toMatchObject(controllerService.spec.selector);
    expect(controllerService.spec.ports.map((port) => port.name)).toEqual(['metrics']);
  });

  it("binds the controller as deploy/ does (its copy of deploy/clusterrolebinding.yaml agrees)", async () => {
    const installed = await kustomizeBuild(deployDir);
    expect(findManifest(overlay, 'ClusterRoleBinding', 'oauthapp-operator')).toEqual(findManifest(installed, 'ClusterRoleBinding', 'oauthapp-operator'));
    for (const [kind, name, namespace] of [
      ['ClusterRole', 'oauthapp-operator', undefined],
      ['Role', 'oauthapp-operator', installNamespace],
    ] as const) {
      expect(findManifest(overlay, kind, name, namespace)).toEqual(findManifest(installed, kind, name, namespace));
    }
  });

  it("gives the callback exactly these rules (a change here is a change to review)", () => {
    expect(findManifest(overlay, 'ClusterRole', 'oauthapp-callback').rules as PolicyRule[]).toEqual([
      { apiGroups: ['oauthapp.dev'], resources: ['oauthapps'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['oauthapp.dev'], resources: ['oauthinstallations'], verbs: ['get', 'create'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['get'] },
    ]);
    expect(findManifest(overlay, 'Role', 'oauthapp-callback', installNamespace).rules as PolicyRule[]).toEqual([
      { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'create', 'update', 'delete'] },
    ]);
    const bindings = overlay.filter((object): object is Binding => (object.kind === 'RoleBinding' || object.kind === 'ClusterRoleBinding') && object.metadata.name === 'oauthapp-callback');
    expect(bindings.map((binding) => [binding.kind, binding.metadata.namespace, binding.roleRef.kind, binding.roleRef.name, binding.subjects])).toEqual(
      expect.arrayContaining([
        ['ClusterRoleBinding', undefined, 'ClusterRole', 'oauthapp-callback', [{ kind: 'ServiceAccount', name: 'oauthapp-callback', namespace: installNamespace }]],
        ['RoleBinding', installNamespace, 'Role', 'oauthapp-callback', [{ kind: 'ServiceAccount', name: 'oauthapp-callback', namespace: installNamespace }]],
      ]),
    );
    expect(bindings).toHaveLength(2);
  });

  it('explains every callback rule in a comment and uses no wildcard', async () => {
    const documents = parseAllDocuments(await readFile(callbackRulesFile, 'utf8'));
    let rulesSeen = 0;
    for (const document of documents) {
      const rules = document.get('rules', true);
      if (rules === undefined) continue;
      if (!isSeq(rules)) throw new Error('rules is not a list');
      rules.items.forEach((rule, index) => {
        if (!isMap(rule)) throw new Error(`rule ${index} is not a map`);
        const comment = rule.commentBefore ?? (index === 0 ? rules.commentBefore : undefined);
        expect({ kind: document.get('kind'), index, commented: Boolean(comment?.trim()) }).toEqual({ kind: document.get('kind'), index, commented: true });
        rulesSeen += 1;
      });
    }
    expect(rulesSeen).toBe(4);
    for (const role of overlay.filter((object) => (object.kind === 'Role' || object.kind === 'ClusterRole') && object.metadata.name === 'oauthapp-callback')) {
      for (const rule of role.rules as PolicyRule[]) {
        for (const value of [...(rule.apiGroups ?? []), ...(rule.resources ?? []), ...rule.verbs, ...(rule.resourceNames ?? [])]) expect(value).not.toContain('*');
      }
    }
  });
});

describe('the split, run for real with exactly the overlay’s RBAC', () => {
  let operatorNamespace: string;
  let appNamespace: string;
  let callbackKubeconfig: string;
  let controllerKubeconfig: string;

  /** The overlay's ServiceAccounts, Roles and bindings, moved into this test's operator namespace. */
  const transplanted = (): Manifest[] => {
    const rbacKinds = new Set(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);
    return overlay
      .filter((object) => rbacKinds.has(object.kind))
      .map((object) => {
        const moved = structuredClone(object) as Manifest & Partial<Binding>;
        const clusterScoped = object.kind.startsWith('Cluster');
        moved.metadata = { ...moved.metadata, name: clusterScoped ? `${object.metadata.name}-${suffix}` : object.metadata.name };
        if (!clusterScoped) moved.metadata.namespace = operatorNamespace;
        if (moved.roleRef?.kind === 'ClusterRole') moved.roleRef = { ...moved.roleRef, name: `${moved.roleRef.name}-${suffix}` };
        if (moved.subjects) moved.subjects = moved.subjects.map((subject) => ({ ...subject, namespace: operatorNamespace }));
        return moved;
      });
  };

  beforeAll(async () => {
    operatorNamespace = await createTestNamespace('split-system');
    cleanups.push(() => deleteTestNamespace(operatorNamespace));
    appNamespace = await createTestNamespace('split-apps');
    cleanups.push(() => deleteTestNamespace(appNamespace));
    const objects = transplanted();
    expect(objects.map((object) => `${object.kind}/${object.metadata.name.replace(`-${suffix}`, '')}`).sort()).toEqual(
      [
        'ClusterRole/oauthapp-callback',
        'ClusterRole/oauthapp-operator',
        'ClusterRoleBinding/oauthapp-callback',
        'ClusterRoleBinding/oauthapp-operator',
        'Role/oauthapp-callback',
        'Role/oauthapp-operator',
        'RoleBinding/oauthapp-callback',
        'RoleBinding/oauthapp-operator',
        'ServiceAccount/oauthapp-callback',
        'ServiceAccount/oauthapp-operator',
      ].sort(),
    );
    const clusterScoped = objects.filter((object) => object.kind.startsWith('Cluster'));
    cleanups.push(() => kubectlOK(['delete', '--ignore-not-found', '--wait=false', '-f', '-'], { input: toYAML(clusterScoped) }));
    await kubectlOK(['apply', '-f', '-'], { input: toYAML(objects) });
    const callback = await serviceAccountKubeconfig(operatorNamespace, 'oauthapp-callback');
    cleanups.push(() => callback.remove());
    const controller = await serviceAccountKubeconfig(operatorNamespace, 'oauthapp-operator');
    cleanups.push(() => controller.remove());
    callbackKubeconfig = callback.path;
    controllerKubeconfig = controller.path;
  });

  it("admits the callback's pod under the restricted Pod Security profile, without a warning", async () => {
    await kubectlOK(['label', 'namespace', operatorNamespace, 'pod-security.kubernetes.io/enforce=restricted', 'pod-security.kubernetes.io/warn=restricted']);
    const { spec } = findManifest<Deployment>(overlay, 'Deployment', 'oauthapp-callback', installNamespace);
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: `oauthapp-callback-dry-run-${suffix}`, namespace: operatorNamespace, labels: spec.template.metadata.labels }, spec: spec.template.spec };
    const result = await kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(pod) });
    expect(result.stderr).not.toMatch(/PodSecurity/);
    expect(result.code).toBe(0);
  });

  it('authenticates each component as its own ServiceAccount', async () => {
    for (const [path, account] of [
      [callbackKubeconfig, 'oauthapp-callback'],
      [controllerKubeconfig, 'oauthapp-operator'],
    ] as const) {
      expect((await kubectlOK(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], { kubeconfig: path })).trim()).toBe(`system:serviceaccount:${operatorNamespace}:${account}`);
    }
  });

  it('lets the callback read OAuthApps, read a Secret by name, and keep state Secrets in the operator namespace', async () => {
    const may: AccessQuestion[] = [
      { verb: 'get', resource: 'oauthapps.oauthapp.dev', namespace: appNamespace },
      { verb: 'list', resource: 'oauthapps.oauthapp.dev' },
      { verb: 'watch', resource: 'oauthapps.oauthapp.dev' },
      { verb: 'get', resource: 'secrets', namespace: appNamespace },
      { verb: 'get', resource: 'secrets', namespace: operatorNamespace },
      { verb: 'create', resource: 'secrets', namespace: operatorNamespace },
      { verb: 'update', resource: 'secrets', namespace: operatorNamespace },
      { verb: 'delete', resource: 'secrets', namespace: operatorNamespace },
    ];
    const answers = await Promise.all(may.map(async (question) => [describeQuestion(question), await canI(callbackKubeconfig, question)]));
    expect(answers).toEqual(may.map((question) => [describeQuestion(question), true]));
  });

  it('denies the callback any write in app namespaces, any workload restart, the Lease, Events and Secret listing', async () => {
    const lease = 'leases.coordination.k8s.io/oauthapp-operator';
    const mayNot: AccessQuestion[] = [
      // Workload Secrets: never written, and no Secret is listed or watched anywhere.
      ...['create', 'update', 'patch', 'delete', 'deletecollection'].map((verb) => ({ verb, resource: 'secrets', namespace: appNamespace })),
      { verb: 'list', resource: 'secrets', namespace: appNamespace },
      { verb: 'watch', resource: 'secrets', namespace: appNamespace },
      { verb: 'list', resource: 'secrets' },
      { verb: 'list', resource: 'secrets', namespace: operatorNamespace },
      { verb: 'watch', resource: 'secrets', namespace: operatorNamespace },
      { verb: 'patch', resource: 'secrets', namespace: operatorNamespace },
      // Workloads: no rollout restart, no read.
      ...['deployments.apps', 'statefulsets.apps', 'daemonsets.apps'].map((resource) => ({ verb: 'patch', resource, namespace: appNamespace })),
      { verb: 'get', resource: 'deployments.apps', namespace: appNamespace },
      // OAuthApps: status, finalizers and spec are the controller's (or their owners').
      { verb: 'patch', resource: 'oauthapps.oauthapp.dev', namespace: appNamespace },
      { verb: 'patch', resource: 'oauthapps.oauthapp.dev', subresource: 'status', namespace: appNamespace },
      { verb: 'update', resource: 'oauthapps.oauthapp.dev', subresource: 'finalizers', namespace: appNamespace },
      { verb: 'create', resource: 'oauthapps.oauthapp.dev', namespace: appNamespace },
      // OAuthInstallations: created by a Marketplace install; everything after that is the controller's.
      ...['patch', 'update', 'delete', 'list', 'watch'].map((verb) => ({ verb, resource: 'oauthinstallations.oauthapp.dev', namespace: appNamespace })),
      { verb: 'patch', resource: 'oauthinstallations.oauthapp.dev', subresource: 'status', namespace: appNamespace },
      // No leader election.
      { verb: 'create', resource: 'leases.coordination.k8s.io', namespace: operatorNamespace },
      { verb: 'get', resource: lease, namespace: operatorNamespace },
      { verb: 'update', resource: lease, namespace: operatorNamespace },
      // No Events (the controller turns the stored outcome into conditions and Events).
      { verb: 'create', resource: 'events.events.k8s.io', namespace: appNamespace },
      { verb: 'create', resource: 'events', namespace: appNamespace },
      // Nothing else.
      { verb: 'create', resource: 'pods', namespace: appNamespace },
      { verb: 'get', resource: 'configmaps', namespace: appNamespace },
      { verb: 'create', resource: 'serviceaccounts', subresource: 'token', namespace: operatorNamespace },
      { verb: 'create', resource: 'rolebindings.rbac.authorization.k8s.io', namespace: operatorNamespace },
      { verb: 'list', resource: 'namespaces' },
      { verb: '*', resource: '*' },
    ];
    const answers = await Promise.all(mayNot.map(async (question) => [describeQuestion(question), await canI(callbackKubeconfig, question)]));
    expect(answers).toEqual(mayNot.map((question) => [describeQuestion(question), false]));
    // A real request too, not only an access review.
    const write = await kubectl(['create', 'secret', 'generic', 'planted', '-n', appNamespace, '--from-literal=k=v'], { kubeconfig: callbackKubeconfig });
    expect(write.stderr).toMatch(/forbidden/);
    const restart = await kubectl(['patch', 'deployment', 'anything', '-n', appNamespace, '--type=merge', '-p', '{"spec":{}}'], { kubeconfig: callbackKubeconfig });
    expect(restart.stderr).toMatch(/forbidden/);
  });

  describe('a first authorization through the callback component', () => {
    let controller: TestOperator;
    let callback: TestOperator;
    let provider: TestProvider;

    beforeAll(async () => {
      const common = { namespaces: [appNamespace], operatorNamespace };
      controller = await startTestOperator({ ...common, kubeconfig: controllerKubeconfig, argv: ['--components=controller'] });
      cleanups.push(() => controller.stop());
      callback = await startTestOperator({ ...common, kubeconfig: callbackKubeconfig, argv: ['--components=callback'] });
      cleanups.push(() => callback.stop());
      provider = await startTestProvider({}, callback.callbackURL);
      cleanups.push(() => provider.close());
    });

    it('serves the callback from the callback component only', async () => {
      expect(controller.callbackURL).toBe('');
      expect(callback.callbackURL).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/oauth\/callback$/);
      // Both answer their probes on their own metrics servers.
      for (const component of [controller, callback]) expect((await fetch(`${component.metricsURL}/readyz`)).status).toBe(200);
    });

    it('goes from Authorized=False to Ready with working credentials', async () => {
      await apply(appNamespace, opaqueSecret('split-client', { client_secret: provider.clientSecret }));
      await apply(appNamespace, oauthAppManifest({ name: 'split', clientId: provider.clientId, tokenURL: provider.tokenURL, authorizeURL: provider.authorizeURL, redirectURI: provider.redirectURI }));
      const authorizationURL = await eventually('an authorization URL from the controller', async () => (await getApp(appNamespace, 'split')).status?.authorizationURL);
      expect(condition(await getApp(appNamespace, 'split'), 'Authorized')).toMatchObject({ status: 'False' });

      const redirect = await consent(authorizationURL, 'allow');
      expect(redirect.startsWith(callback.callbackURL)).toBe(true);
      const landing = await visit(redirect);
      expect(landing.status).toBe(200);
      expect(landing.body).toContain(`${appNamespace}/split`);
      expect(provider.sandbox.stats().presentedAuthorizationCodes).toHaveLength(1);

      // The controller notices the state Secret the callback wrote, and does the rest.
      const app = await eventually(
        'Ready after the callback',
        async () => {
          const current = await getApp(appNamespace, 'split');
          return condition(current, 'Ready')?.status === 'True' ? current : undefined;
        },
        60_000,
      );
      expect(condition(app, 'Authorized')).toMatchObject({ status: 'True' });
      const credentials = await secretData(appNamespace, 'split-credentials');
      expect(credentials?.client_secret).toBe(provider.clientSecret);
      expect(await provider.whoAmI(credentials?.access_token ?? '')).toBe(200);

      // The transition is an Event, recorded by the controller (the callback may not create any).
      const events = JSON.parse(await kubectlOK(['get', 'events.events.k8s.io', '-n', appNamespace, '-o', 'json'])) as {
        items: Array<{ regarding: { name: string }; reportingController?: string; note?: string }>;
      };
      expect(events.items.filter((event) => event.regarding.name === 'split' && event.note?.startsWith('Authorized=True'))).toHaveLength(1);

      // Only the controller leads; the callback never tried, and neither hit a forbidden request.
      expect(await kubectlOK(['get', 'lease', 'oauthapp-operator', '-n', operatorNamespace, '-o', 'jsonpath={.spec.holderIdentity}'])).not.toBe('');
      expect(controller.logs()).toContain('leading: reconciling');
      expect(callback.logs()).not.toContain('leading');
      expect(callback.logs()).toContain('oauth callback: authorized');
      for (const component of [controller, callback]) expect(component.logs()).not.toMatch(/forbidden/i);

      const canaries = [provider.clientSecret, credentials?.access_token ?? '', ...provider.sandbox.stats().presentedRefreshTokens.map((presentation) => presentation.value)];
      const state = await kubectlOK(['get', 'secrets', '-n', operatorNamespace, '-l', 'oauthapp.dev/role=state', '-o', 'jsonpath={.items[0].data.refresh_token}']);
      if (state) canaries.push(Buffer.from(state, 'base64').toString('utf8'));
      await expectNoSecretValuesLeaked(canaries, { namespace: appNamespace, logs: controller.logs() + callback.logs() });
    }, 120_000);

    it('installs a public app from the Marketplace (the callback creates the OAuthInstallation, the controller the rest) and uninstalls it', async () => {
      const marketplace = await startTestProvider({}, `${callback.callbackURL}/split-public`);
      cleanups.push(() => marketplace.close());
      await apply(appNamespace, opaqueSecret('split-public-client', { client_secret: marketplace.clientSecret }));
      await apply(
        appNamespace,
        oauthAppManifest({
          name: 'split-public',
          clientId: marketplace.clientId,
          tokenURL: marketplace.tokenURL,
          authorizeURL: marketplace.authorizeURL,
          redirectURI: marketplace.redirectURI,
          spec: { installations: 'multiple', revokeURL: `${marketplace.baseURL}/oauth/revoke` },
        }),
      );
      await eventually('the public app accepting installs', async () => (condition(await getApp(appNamespace, 'split-public'), 'Ready')?.reason === 'AcceptingInstallations' ? true : undefined), 60_000);

      const { redirectURL } = marketplace.sandbox.marketplaceInstall(marketplace.clientId, 42);
      expect((await visit(redirectURL)).status).toBe(200);
      const credentials = await eventually('the installation\'s Secret', async () => {
        const data = await secretData(appNamespace, 'split-public-42');
        return data?.access_token ? data : undefined;
      }, 60_000);
      expect(await marketplace.whoAmI(credentials.access_token ?? '')).toBe(200);

      expect(await marketplace.sandbox.uninstall(marketplace.clientId, 42)).toEqual({ status: 200 });
      await eventually('the Secret of the uninstalled company deleted', async () => ((await secretData(appNamespace, 'split-public-42')) === undefined ? true : undefined), 60_000);
      for (const component of [controller, callback]) expect(component.logs()).not.toMatch(/forbidden/i);
    }, 120_000);
  });
});
