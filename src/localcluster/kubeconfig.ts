import { stringify } from 'yaml';

export type KubeconfigUser = { clientCertPEM: string; clientKeyPEM: string } | { token: string };

export interface KubeconfigInput {
  serverURL: string;
  caPEM: string;
  user: KubeconfigUser;
  /** Default namespace of the context. */
  namespace?: string;
}

const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

/** A single-context kubeconfig, readable by kubectl and by @kubernetes/client-node. */
export function renderKubeconfig({ serverURL, caPEM, user, namespace }: KubeconfigInput): string {
  const credentials =
    'token' in user
      ? { token: user.token }
      : { 'client-certificate-data': base64(user.clientCertPEM), 'client-key-data': base64(user.clientKeyPEM) };
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'local', cluster: { server: serverURL, 'certificate-authority-data': base64(caPEM) } }],
    users: [{ name: 'user', user: credentials }],
    contexts: [{ name: 'local', context: { cluster: 'local', user: 'user', ...(namespace ? { namespace } : {}) } }],
    'current-context': 'local',
  });
}
