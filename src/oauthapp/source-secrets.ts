// The Secrets users name in clientSecretRef and refreshTokenRef. Only their metadata is watched
// (most Secrets in a cluster are none of our business); a referenced one's data is read on
// demand and kept only while its resourceVersion stays the same. Without a metadata cache (the
// callback component, which may not list Secrets) every read is a live get, and nothing is kept.
import type { KubeClient } from '../kube/client.ts';
import type { ObjectCache } from '../kube/informer.ts';
import { decodeData, objectKey, type KubeObject } from '../kube/objects.ts';

export type SecretValue = { found: true; value: string; source: string } | { found: false; source: string; problem: string; reason?: string };

/**
 * The largest value the operator takes from a referenced Secret key (64 KiB): a client secret or
 * refresh token is a few hundred bytes; a larger value is a mistake or an attack on memory, copied
 * into the target Secret and every token request otherwise.
 */
export const maxSecretValueBytes = 64 * 1024;
export const secretValueTooLarge = 'SecretValueTooLarge';

interface CachedData {
  resourceVersion: string | undefined;
  data: Record<string, string>;
}

export class SourceSecrets {
  private readonly kube: KubeClient;
  private readonly metadata: ObjectCache<KubeObject> | undefined;
  private readonly data = new Map<string, CachedData>();

  constructor(kube: KubeClient, metadata: ObjectCache<KubeObject> | undefined) {
    this.kube = kube;
    this.metadata = metadata;
    metadata?.on((event, object) => {
      if (event === 'deleted') this.data.delete(objectKey(object.metadata.namespace, object.metadata.name));
    });
  }

  async read(namespace: string, ref: { name: string; key: string }): Promise<SecretValue> {
    const source = `Secret ${namespace}/${ref.name}, key ${ref.key}`;
    const meta = this.metadata?.get(namespace, ref.name);
    if (this.metadata && !meta) return { found: false, source, problem: `Secret ${namespace}/${ref.name} does not exist` };
    const cacheKey = objectKey(namespace, ref.name);
    let cached = this.metadata ? this.data.get(cacheKey) : undefined;
    if (!cached || cached.resourceVersion !== meta?.metadata.resourceVersion) {
      const secret = await this.kube.getSecret(namespace, ref.name);
      if (!secret) return { found: false, source, problem: `Secret ${namespace}/${ref.name} does not exist` };
      cached = { resourceVersion: secret.metadata.resourceVersion, data: decodeData(secret.data) };
      if (this.metadata) this.data.set(cacheKey, cached);
    }
    // An own-property lookup: a key such as __proto__ or constructor must read as missing, not as
    // Object.prototype's member.
    const value = Object.hasOwn(cached.data, ref.key) ? cached.data[ref.key] : undefined;
    if (value === undefined || value.trim() === '') {
      return { found: false, source, problem: `Secret ${namespace}/${ref.name} has no value under key ${ref.key}` };
    }
    // Never copied: the message names the Secret, the key and the size, not the value.
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > maxSecretValueBytes) {
      return { found: false, source, reason: secretValueTooLarge, problem: `Secret ${namespace}/${ref.name}, key ${ref.key}, holds ${bytes} bytes; at most ${maxSecretValueBytes} are used` };
    }
    // Files made with `echo … > file` end in a newline that is not part of the secret.
    return { found: true, value: value.replace(/[\r\n]+$/, ''), source };
  }
}
