// The demo's second act: a public app (installations: multiple), installed from the sandbox's
// Marketplace by two companies (no state of ours: the callback tells the app by its path), then
// uninstalled by one of them through Pipedrive's uninstall callback.
import type { KubeClient } from '../kube/client.ts';
import { encodeData } from '../kube/objects.ts';
import type { Sandbox } from '../sandbox/server.ts';
import { waitUntil } from './wait.ts';

export interface PublicAppDemo {
  sandbox: Sandbox;
  sandboxURL: string;
  /** The operator's callback, e.g. http://127.0.0.1:8081/oauth/callback. */
  callbackURL: string;
  namespace: string;
  kube: KubeClient;
  kubectl: (args: string[]) => Promise<{ stdout: string }>;
  apply: (manifest: object) => Promise<void>;
  print: (line: string) => void;
}

const app = 'acme-marketplace';
const companies = [7, 8];

export async function showPublicApp({ sandbox, sandboxURL, callbackURL, namespace, kube, kubectl, apply, print }: PublicAppDemo): Promise<void> {
  const client = sandbox.registerClient({ redirectUri: `${callbackURL}/${app}` });
  await kube.createSecret(namespace, { metadata: { name: `${app}-client` }, type: 'Opaque', data: encodeData({ client_secret: client.clientSecret }) });
  await apply({
    apiVersion: 'oauthapp.dev/v1alpha1',
    kind: 'OAuthApp',
    metadata: { name: app, namespace },
    spec: {
      provider: 'pipedrive',
      installations: 'multiple',
      tokenURL: `${sandboxURL}/oauth/token`,
      authorizeURL: `${sandboxURL}/oauth/authorize`,
      revokeURL: `${sandboxURL}/oauth/revoke`,
      clientId: client.clientId,
      clientSecretRef: { name: `${app}-client`, key: 'client_secret' },
      redirectURI: client.redirectUri,
    },
  });
  print(`applied public OAuthApp ${namespace}/${app} (installations: multiple), callback ${client.redirectUri}`);

  const secretOf = (company: number) => kube.getSecret(namespace, `${app}-${company}`);
  for (const company of companies) {
    const { redirectURL } = sandbox.marketplaceInstall(client.clientId, company);
    const answer = await fetch(redirectURL, { redirect: 'manual' });
    print(`company ${company} installed it from the Marketplace: the callback answered ${answer.status}`);
  }
  for (const company of companies) await waitUntil(`the Secret of company ${company}`, 30_000, async () => (await secretOf(company))?.data?.access_token !== undefined);
  print((await kubectl(['get', 'oinst', '-n', namespace])).stdout.trimEnd());

  const uninstalled = await sandbox.uninstall(client.clientId, companies[1] ?? 0);
  print(`company ${companies[1]} uninstalled it: Pipedrive's DELETE to the callback answered ${uninstalled.status}`);
  await waitUntil(`the Secret of company ${companies[1]} deleted`, 30_000, async () => (await secretOf(companies[1] ?? 0)) === undefined);
  print((await kubectl(['get', 'oinst', '-n', namespace, '-o', 'custom-columns=NAME:.metadata.name,COMPANY:.spec.companyID,READY:.status.conditions[?(@.type=="Ready")].reason'])).stdout.trimEnd());
}
