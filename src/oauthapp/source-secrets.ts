// The Secrets users name in clientSecretRef and refreshTokenRef. Only their identity and
// resourceVersion are watched (most Secrets in a cluster are none of our business); a referenced
// one's value is read on demand and kept only while its resourceVersion stays the same, only for
// the keys some OAuthApp names, and only while one does. Without a metadata cache (the callback
// component, which may not list Secrets) every read is a live get, and nothing is kept.
import type { KubeClient } from '../kube/client.ts';
import type { ObjectCache } from '../kube/informer.ts';
import { decodeData, objectKey, type KubeObject } from '../kube/objects.ts';
import type { SecretReferences } from './controller.ts';

export type SecretValue = { found: true; value: string; source: string } | { found: false; source: string; problem: string; reason?: string };

/**
 * The largest value the operator takes from a referenced Secret key (64 KiB): a client secret or
 * refresh token is a few hundred bytes; a larger value is a mistake or an attack on memory, copied
 * into the target Secret and every token request otherwise.
 */
export const maxSecretValueBytes = 64 * 1024;
export const secretValueTooLarge = 'SecretValueTooLarge';

/** A key's value as read: the value, missing (null), or too large to use (its size in bytes). */
type KeptValue = string | null | { bytes: number };

interface CachedSecret {
  resourceVersion: string | undefined;
  /** Only the keys some OAuthApp references: [key, value, key, value, …] (one or two keys, usually). */
  values: Array<string | KeptValue>;
}

export class SourceSecrets {
  private readonly kube: Pick<KubeClient, 'getSecret'>;
  private readonly metadata: ObjectCache<KubeObject> | undefined;
  private readonly references: SecretReferences | undefined;
  private readonly cached = new Map<string, CachedSecret>();

  /**
   * `references` (the OAuthApps' refs, controller.ts) says which keys are worth keeping. Without it,
   * or without `metadata`, nothing is kept.
   */
  constructor(kube: Pick<KubeClient, 'getSecret'>, metadata: ObjectCache<KubeObject> | undefined, references?: SecretReferences) {
    this.kube = kube;
    this.metadata = metadata;
    this.references = references;
    if (!metadata || !references) return;
    // A changed or deleted Secret's values are stale: dropped now rather than at the next read.
    metadata.on((event, object, old) => {
      if (event === 'added') return;
      if (event === 'updated' && old?.metadata.resourceVersion === object.metadata.resourceVersion) return;
      this.cached.delete(objectKey(object.metadata.namespace, object.metadata.name));
    });
    references.onUnreferenced((secretKey, dataKey) => this.forget(secretKey, dataKey));
  }

  /** How many Secrets and keys are held (for tests and diagnostics). */
  get size(): { secrets: number; keys: number } {
    let keys = 0;
    for (const entry of this.cached.values()) keys += entry.values.length / 2;
    return { secrets: this.cached.size, keys };
  }

  async read(namespace: string, ref: { name: string; key: string }): Promise<SecretValue> {
    const source = `Secret ${namespace}/${ref.name}, key ${ref.key}`;
    const meta = this.metadata?.get(namespace, ref.name);
    if (this.metadata && !meta) return { found: false, source, problem: `Secret ${namespace}/${ref.name} does not exist` };
    const secretKey = objectKey(namespace, ref.name);
    const cached = this.cached.get(secretKey);
    let value: KeptValue | undefined = cached && cached.resourceVersion === meta?.metadata.resourceVersion ? valueOf(cached, ref.key) : undefined;
    if (value === undefined) {
      const secret = await this.kube.getSecret(namespace, ref.name);
      if (!secret) return { found: false, source, problem: `Secret ${namespace}/${ref.name} does not exist` };
      const data = decodeData(secret.data);
      value = kept(data, ref.key);
      this.keep(secretKey, secret.metadata.resourceVersion, data);
    }
    if (value === null || (typeof value === 'string' && value.trim() === '')) {
      return { found: false, source, problem: `Secret ${namespace}/${ref.name} has no value under key ${ref.key}` };
    }
    // Never copied: the message names the Secret, the key and the size, not the value.
    if (typeof value !== 'string') {
      return { found: false, source, reason: secretValueTooLarge, problem: `Secret ${namespace}/${ref.name}, key ${ref.key}, holds ${value.bytes} bytes; at most ${maxSecretValueBytes} are used` };
    }
    // Files made with `echo … > file` end in a newline that is not part of the secret.
    return { found: true, value: value.replace(/[\r\n]+$/, ''), source };
  }

  /** Keeps the keys of a freshly read Secret that some app references, and nothing else. */
  private keep(secretKey: string, resourceVersion: string | undefined, data: Record<string, string>): void {
    // Without a metadata cache nothing tells us of a change: every read is live.
    const referenced = this.metadata ? this.references?.keysOf(secretKey) : undefined;
    if (!referenced || referenced.length === 0) return;
    this.cached.set(secretKey, { resourceVersion, values: referenced.flatMap((key) => [key, kept(data, key)]) });
  }

  private forget(secretKey: string, key: string): void {
    const entry = this.cached.get(secretKey);
    if (!entry) return;
    const at = entry.values.indexOf(key);
    if (at >= 0 && at % 2 === 0) entry.values.splice(at, 2);
    if (entry.values.length === 0) this.cached.delete(secretKey);
  }
}

/** A kept key's value; undefined when the key is not kept. */
function valueOf(entry: CachedSecret, key: string): KeptValue | undefined {
  for (let at = 0; at < entry.values.length; at += 2) if (entry.values[at] === key) return entry.values[at + 1] as KeptValue;
  return undefined;
}

/**
 * A key's value, as kept: an own-property lookup (a key such as __proto__ or constructor must read
 * as missing, not as Object.prototype's member); a value over the cap is kept as its size only.
 */
function kept(data: Record<string, string>, key: string): KeptValue {
  const value = Object.hasOwn(data, key) ? data[key] : undefined;
  if (value === undefined) return null;
  const bytes = Buffer.byteLength(value, 'utf8');
  return bytes > maxSecretValueBytes ? { bytes } : value;
}
