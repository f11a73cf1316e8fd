// What every install (deploy/, the Helm chart) must carry: the operator, authenticated as the
// install's ServiceAccount, through the whole flow a user meets: a seeded app refreshing, a
// client-secret rotation with its rollout restart, a rotate request, and a person's first
// authorization through the callback; no forbidden request, no secret value leaked.
import { expect } from '@jest/globals';
import { eventually } from './eventually.ts';
import { kubectlOK } from './kubectl.ts';
import { expectNoSecretValuesLeaked } from './leaks.ts';
import { startTestOperator } from './operator.ts';
import { consentForm } from './person.ts';
import { apply, condition, getApp, oauthAppManifest, opaqueSecret, secretData } from './resources.ts';
import { startTestProvider } from './sandbox.ts';

export interface InstallFlow {
  /** A kubeconfig that authenticates as the install's ServiceAccount (serviceAccountKubeconfig). */
  account: string;
  operatorNamespace: string;
  /** An existing namespace for the apps. */
  appNamespace: string;
  /** The cluster's admin kubeconfig, who makes the apps; default: the run's control plane. */
  adminKubeconfig?: string;
  /** Receives what to stop afterwards, also when the flow fails half way. */
  cleanups: Array<() => Promise<unknown>>;
}

export async function expectWholeFlowAsServiceAccount({ account, operatorNamespace, appNamespace, adminKubeconfig, cleanups }: InstallFlow): Promise<void> {
  const admin = adminKubeconfig ? { kubeconfig: adminKubeconfig } : {};
  const operator = await startTestOperator({ namespaces: [appNamespace], operatorNamespace, kubeconfig: account });
  cleanups.push(() => operator.stop());
  const provider = await startTestProvider({}, operator.callbackURL);
  cleanups.push(() => provider.close());
  const applyHere = (manifest: object) => apply(appNamespace, manifest, adminKubeconfig);
  const appReady = (name: string) =>
    eventually(`${name} Ready`, async () => (condition(await getApp(appNamespace, name, adminKubeconfig), 'Ready')?.status === 'True' ? true : undefined));
  await kubectlOK(['create', 'deployment', 'worker', '-n', appNamespace, '--image=registry.invalid/worker:1'], admin);
  const seed = provider.sandbox.issueRefreshToken(provider.clientId);
  await applyHere(opaqueSecret('seeded-client', { client_secret: provider.clientSecret }));
  await applyHere(opaqueSecret('seeded-bootstrap', { refresh_token: seed }));
  await applyHere(
    oauthAppManifest({
      name: 'seeded',
      clientId: provider.clientId,
      tokenURL: provider.tokenURL,
      authorizeURL: provider.authorizeURL,
      redirectURI: provider.redirectURI,
      refreshTokenRef: { name: 'seeded-bootstrap', key: 'refresh_token' },
      spec: { rolloutRestartTargets: [{ kind: 'Deployment', name: 'worker' }] },
    }),
  );
  await appReady('seeded');

  // Client secret rotation with a rollout restart.
  const rotated = provider.sandbox.rotateClientSecret(provider.clientId);
  await applyHere(opaqueSecret('seeded-client', { client_secret: rotated }));
  await eventually('the worker restarted', async () =>
    (await kubectlOK(['get', 'deployment', 'worker', '-n', appNamespace, '-o', 'jsonpath={.spec.template.metadata.annotations}'], admin)).includes('restartedAt') ? true : undefined,
  );
  await kubectlOK(['annotate', 'oauthapp', 'seeded', '-n', appNamespace, 'oauthapp.dev/rotate=with-least-privilege'], admin);
  await eventually('a refresh on demand with the new secret', async () => {
    const app = await getApp(appNamespace, 'seeded', adminKubeconfig);
    return app.status?.lastRotateRequest === 'with-least-privilege' && condition(app, 'ClientSecretValid')?.status === 'True' ? true : undefined;
  });

  // First authorization through the callback.
  await applyHere(opaqueSecret('consented-client', { client_secret: rotated }));
  await applyHere(oauthAppManifest({ name: 'consented', clientId: provider.clientId, tokenURL: provider.tokenURL, authorizeURL: provider.authorizeURL, redirectURI: provider.redirectURI }));
  const authorizationURL = await eventually('an authorization URL', async () => (await getApp(appNamespace, 'consented', adminKubeconfig)).status?.authorizationURL);
  const decision = await fetch(new URL('/oauth/authorize/decision', authorizationURL), { method: 'POST', redirect: 'manual', body: consentForm(authorizationURL, 'allow') });
  expect((await fetch(decision.headers.get('location') ?? '')).status).toBe(200);
  await appReady('consented');

  expect(await kubectlOK(['get', 'lease', 'oauthapp-operator', '-n', operatorNamespace, '-o', 'jsonpath={.spec.holderIdentity}'], admin)).not.toBe('');
  expect(operator.logs()).not.toMatch(/forbidden/i);

  const canaries = [provider.clientSecret, seed, rotated, ...provider.sandbox.stats().presentedRefreshTokens.map((presentation) => presentation.value)];
  for (const name of ['seeded', 'consented']) canaries.push((await secretData(appNamespace, `${name}-credentials`, adminKubeconfig))?.access_token ?? '');
  await expectNoSecretValuesLeaked(canaries, { namespace: appNamespace, logs: operator.logs(), ...admin });
}
