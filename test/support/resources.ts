// Objects made and read the way a user would: kubectl apply and kubectl get (as the admin of the
// run's control plane, or of the cluster `kubeconfig` names).
import { kubectlOK } from './kubectl.ts';
import type { OAuthAppStatus } from '../../src/api/oauthapp.ts';

export async function apply(namespace: string, manifest: object, kubeconfig?: string): Promise<void> {
  await kubectlOK(['apply', '-n', namespace, '-f', '-'], { input: JSON.stringify(manifest), ...(kubeconfig ? { kubeconfig } : {}) });
}

export function opaqueSecret(name: string, data: Record<string, string>) {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name }, type: 'Opaque', stringData: data };
}

/** A Secret's decoded data, or undefined when it does not exist. */
export async function secretData(namespace: string, name: string, kubeconfig?: string): Promise<Record<string, string> | undefined> {
  const result = await kubectlOK(['get', 'secret', name, '-n', namespace, '-o', 'json', '--ignore-not-found'], kubeconfig ? { kubeconfig } : {});
  if (!result.trim()) return undefined;
  const secret = JSON.parse(result) as { data?: Record<string, string> };
  return Object.fromEntries(Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]));
}

export interface AppView {
  metadata: { name: string; namespace: string; uid: string; generation: number; finalizers?: string[]; annotations?: Record<string, string> };
  status?: OAuthAppStatus;
}

export async function getApp(namespace: string, name: string, kubeconfig?: string): Promise<AppView> {
  return JSON.parse(await kubectlOK(['get', 'oauthapp', name, '-n', namespace, '-o', 'json'], kubeconfig ? { kubeconfig } : {})) as AppView;
}

export function condition(app: AppView, type: string) {
  return app.status?.conditions?.find((candidate) => candidate.type === type);
}

export interface AppManifestInput {
  name: string;
  clientId: string;
  tokenURL: string;
  authorizeURL?: string;
  redirectURI: string;
  clientSecretRef?: { name: string; key: string };
  refreshTokenRef?: { name: string; key: string };
  spec?: Record<string, unknown>;
}

export function oauthAppManifest(input: AppManifestInput) {
  return {
    apiVersion: 'oauthapp.dev/v1alpha1',
    kind: 'OAuthApp',
    metadata: { name: input.name },
    spec: {
      provider: 'pipedrive',
      tokenURL: input.tokenURL,
      ...(input.authorizeURL ? { authorizeURL: input.authorizeURL } : {}),
      clientId: input.clientId,
      clientSecretRef: input.clientSecretRef ?? { name: `${input.name}-client`, key: 'client_secret' },
      redirectURI: input.redirectURI,
      ...(input.refreshTokenRef ? { refreshTokenRef: input.refreshTokenRef } : {}),
      ...input.spec,
    },
  };
}
