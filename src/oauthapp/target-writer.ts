// Keeps the target Secret equal to its projection of the state; restores it when edited or
// deleted by hand, and never takes over a Secret that belongs to something else.
import type { KubeClient } from '../kube/client.ts';
import { isAlreadyExists, isConflict } from '../kube/errors.ts';
import type { ObjectCache } from '../kube/informer.ts';
import type { Secret } from '../kube/objects.ts';
import { desiredTargetSecret, isOwnedBy, mergeForUpdate, targetMatches, targetSecretName } from './desired.ts';
import type { AppState } from './state.ts';
import type { GrantOwner } from './grant-owner.ts';

type TargetSecrets = Pick<KubeClient, 'getSecret' | 'createSecret' | 'replaceSecret' | 'deleteSecret'>;

export class TargetWriter {
  private readonly kube: TargetSecrets;
  private readonly cache: ObjectCache<Secret>;

  constructor(kube: TargetSecrets, cache: ObjectCache<Secret>) {
    this.kube = kube;
    this.cache = cache;
  }

  /** Whether the app's target Secret is in the cache (it may exist unlabelled, unseen). */
  exists(app: GrantOwner): boolean {
    return this.cache.get(app.metadata.namespace, targetSecretName(app.metadata.name, app.spec)) !== undefined;
  }

  /**
   * Deletes the Secret `name` if `ownerUID` controls it: an uninstalled installation's, or a
   * deleted one's (a company installing again must not wait for the garbage collector).
   */
  async remove(namespace: string, name: string, ownerUID: string): Promise<void> {
    const actual = this.cache.get(namespace, name);
    if (!actual || !isOwnedBy(actual, ownerUID)) return;
    await this.kube.deleteSecret(namespace, name, actual.metadata.uid ? { uid: actual.metadata.uid } : undefined);
    this.cache.observeDelete(namespace, name);
  }

  /** Returns a problem for status when the Secret cannot be ours; otherwise it is up to date. */
  async ensure(app: GrantOwner, clientSecret: string, state: AppState): Promise<string | undefined> {
    const { namespace, name, uid } = app.metadata;
    const desired = desiredTargetSecret({ app: { namespace, name, uid, kind: app.kind }, spec: app.spec, clientSecret, state });
    const targetName = desired.metadata.name;
    // Our label-selected cache misses a Secret whose labels were removed by hand: ask the apiserver.
    let actual = this.cache.get(namespace, targetName);
    // A cached Secret that is not ours may be gone already (an OAuthApp re-created under the same
    // name while the cache has not seen its predecessor's target collected): the apiserver decides.
    if (actual && !isOwnedBy(actual, uid)) actual = await this.kube.getSecret(namespace, targetName);
    if (!actual) {
      try {
        this.cache.observeWrite(await this.kube.createSecret(namespace, desired));
        return undefined;
      } catch (error) {
        if (!isAlreadyExists(error)) throw error;
        actual = await this.kube.getSecret(namespace, targetName);
        if (!actual) throw error;
      }
    }
    try {
      return await this.update(app, actual, desired);
    } catch (error) {
      if (!isConflict(error)) throw error;
      // The cache is behind (its watch may be backing off after an outage for seconds): once more
      // against the live Secret rather than requeueing until the cache catches up.
      const live = await this.kube.getSecret(namespace, targetName);
      if (!live) throw error;
      return await this.update(app, live, desired);
    }
  }

  private async update(app: GrantOwner, actual: Secret, desired: Secret): Promise<string | undefined> {
    const { namespace, uid } = app.metadata;
    if (!isOwnedBy(actual, uid)) {
      return `Secret ${namespace}/${desired.metadata.name} already exists and is not owned by this OAuthApp; delete it or choose another spec.target.name`;
    }
    if (targetMatches(actual, desired)) return undefined;
    this.cache.observeWrite(await this.kube.replaceSecret(namespace, mergeForUpdate(actual, desired)));
    return undefined;
  }
}
