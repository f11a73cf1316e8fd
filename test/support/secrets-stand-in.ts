// The apiserver's Secrets for unit specs of code that writes state Secrets: resourceVersions and
// conflicts as the apiserver has them, and the two faults that matter to grant safety.
import { KubeAPIError } from '../../src/kube/errors.ts';
import type { Secret } from '../../src/kube/objects.ts';
import type { StateSecrets } from '../../src/oauthapp/state-store.ts';

export class SecretsStandIn implements StateSecrets {
  readonly stored = new Map<string, Secret>();
  /** Every write fails as if the apiserver could not be reached. */
  failWrites = false;
  /** The next write commits, and its answer is lost on the way back. */
  loseNextAnswer = false;
  private version = 1;

  async getSecret(_namespace: string, name: string) {
    return this.stored.get(name);
  }

  async createSecret(_namespace: string, secret: Secret) {
    return this.write(secret, undefined);
  }

  async replaceSecret(_namespace: string, secret: Secret) {
    return this.write(secret, secret.metadata.resourceVersion);
  }

  async deleteSecret(_namespace: string, name: string) {
    this.stored.delete(name);
  }

  private write(secret: Secret, expected: string | undefined): Secret {
    if (this.failWrites) throw new KubeAPIError('PUT', '/secrets', 0, 'NetworkError', 'connection refused');
    if (this.stored.get(secret.metadata.name)?.metadata.resourceVersion !== expected) throw new KubeAPIError('PUT', '/secrets', 409, 'Conflict', 'conflict');
    const written = { ...secret, metadata: { ...secret.metadata, resourceVersion: String(++this.version) } };
    this.stored.set(secret.metadata.name, written);
    if (this.loseNextAnswer) {
      this.loseNextAnswer = false;
      throw new KubeAPIError('PUT', '/secrets', 0, 'NetworkError', 'the connection reset after the write');
    }
    return written;
  }
}
