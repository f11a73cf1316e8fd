// The key that signs OAuth `state` values: one per installation, in a Secret in the operator's
// namespace, made by whichever replica first needs it and shared by all of them.
import { randomBytes } from 'node:crypto';
import type { KubeClient } from '../kube/client.ts';
import { isAlreadyExists, isConflict, isNotFound, KubeAPIError } from '../kube/errors.ts';
import type { Secret } from '../kube/objects.ts';
import { managedByLabel, managedByValue } from './labels.ts';
import { roleLabel } from './state.ts';

export const signingKeySecretName = 'oauthapp-state-signing-key';

/** Key length: 32 random bytes, from which HKDF derives the state encryption key and the PKCE key. */
const keyBytes = 32;
/** Each lost race means another replica wrote a key we then read: a few are plenty. */
const maxAttempts = 5;

export class SigningKeyError extends Error {
  override readonly name = 'SigningKeyError';
  readonly code = 'SIGNING_KEY';
}

export type SigningKeySecrets = Pick<KubeClient, 'getSecret' | 'createSecret' | 'replaceSecret'>;

/** The stored key, if it is one: base64 of exactly 32 bytes. */
function usableKey(secret: Secret | undefined): Buffer | undefined {
  const stored = secret?.data?.key;
  if (!stored) return undefined;
  const key = Buffer.from(stored, 'base64');
  return key.length === keyBytes ? key : undefined;
}

/**
 * Reads the key, or creates it; a Secret whose `key` is missing or not 32 bytes (edited, or
 * restored from a backup without data) is repaired with an update guarded by its resourceVersion.
 * A lost race (another replica created or repaired it first) is followed by a fresh read.
 */
export async function loadOrCreateSigningKey(kube: SigningKeySecrets, namespace: string): Promise<Buffer> {
  const where = `Secret ${namespace}/${signingKeySecretName}`;
  for (let attempt = 1; attempt <= maxAttempts; attempt += 1) {
    const existing = await kube.getSecret(namespace, signingKeySecretName);
    const stored = usableKey(existing);
    if (stored) return stored;
    const key = randomBytes(keyBytes);
    const data = { key: key.toString('base64') };
    try {
      if (existing) {
        // Other data keys and metadata are kept; resourceVersion makes this lose to any other writer.
        await kube.replaceSecret(namespace, { ...existing, data: { ...existing.data, ...data } });
      } else {
        await kube.createSecret(namespace, {
          metadata: { name: signingKeySecretName, namespace, labels: { [managedByLabel]: managedByValue, [roleLabel]: 'signing-key' } },
          type: 'Opaque',
          data,
        });
      }
      return key;
    } catch (error) {
      if (isAlreadyExists(error) || isConflict(error) || isNotFound(error)) continue;
      if (error instanceof KubeAPIError && error.reason === 'Invalid') {
        // An immutable Secret (or one of another type) cannot be repaired in place.
        throw new SigningKeyError(`${where} has no usable key (base64 of ${keyBytes} bytes in data.key) and cannot be updated: delete it and the operator creates a new one`, { cause: error });
      }
      throw error;
    }
  }
  throw new SigningKeyError(`${where}: still no usable key after ${maxAttempts} attempts; something else keeps rewriting it`);
}
