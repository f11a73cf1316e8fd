// The key that signs OAuth `state` values: one per installation, in a Secret in the operator's
// namespace, made by whichever replica first needs it and shared by all of them.
import { randomBytes } from 'node:crypto';
import type { KubeClient } from '../kube/client.ts';
import { isAlreadyExists } from '../kube/errors.ts';
import { managedByLabel, managedByValue } from './labels.ts';
import { roleLabel } from './state.ts';

export const signingKeySecretName = 'oauthapp-state-signing-key';

export async function loadOrCreateSigningKey(kube: KubeClient, namespace: string): Promise<Buffer> {
  const existing = await kube.getSecret(namespace, signingKeySecretName);
  const stored = existing?.data?.key;
  if (stored) return Buffer.from(stored, 'base64');
  const key = randomBytes(32);
  try {
    await kube.createSecret(namespace, {
      metadata: { name: signingKeySecretName, namespace, labels: { [managedByLabel]: managedByValue, [roleLabel]: 'signing-key' } },
      type: 'Opaque',
      data: { key: key.toString('base64') },
    });
    return key;
  } catch (error) {
    if (!isAlreadyExists(error)) throw error;
    // Another replica made it first: use theirs.
    return loadOrCreateSigningKey(kube, namespace);
  }
}
