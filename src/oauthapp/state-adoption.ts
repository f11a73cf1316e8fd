// State Secrets are named by the OAuthApp's uid, and a restored OAuthApp (Velero, a GitOps re-sync
// after the namespace was lost, a finalizer removed by hand and the app applied again) gets a new
// one. Its refresh token is still in the state Secret of the uid it had. An app with no state of
// its own adopts the state left by an earlier OAuthApp of the same namespace and name, so a
// restore needs no re-authorization:
// - only a state whose client secret the provider accepted is the one the app has now
//   (`verifiedClientSecretFingerprint`): a refresh token goes nowhere but to the client it was
//   issued to (a different app that took the name, or a client secret rotated since the backup,
//   is not adopted; it authorizes as a new app, and the orphan sweep removes the old state);
// - not while a claim on it is open: its holder may still store an answer there;
// - a copy under the new uid is created first, then the old Secret is deleted only if nobody
//   wrote to it since it was read (resourceVersion precondition); if somebody did, the copy is
//   removed again and the next reconcile starts over. So the refresh token is in exactly one
//   usable state whatever fails in between.
import { isAlreadyExists, isConflict } from '../kube/errors.ts';
import type { KubeClient } from '../kube/client.ts';
import type { ObjectCache } from '../kube/informer.ts';
import type { Secret } from '../kube/objects.ts';
import type { Logger } from '../log.ts';
import { appAnnotation, appUIDLabel, decodeState, stateSecret, type AppIdentity, type AppState } from './state.ts';
import type { StoredState } from './state-store.ts';

export type Adoption =
  | { outcome: 'none' }
  | { outcome: 'adopted'; stored: StoredState; from: string }
  /** A state to adopt has an open claim: look again after `waitMs`. */
  | { outcome: 'wait'; waitMs: number };

export interface StateAdoptionDependencies {
  kube: Pick<KubeClient, 'getSecret' | 'createSecret' | 'deleteSecret'>;
  cache: ObjectCache<Secret>;
  operatorNamespace: string;
  now: () => number;
  logger: Logger;
}

export class StateAdoption {
  private readonly deps: StateAdoptionDependencies;
  /** State Secret names by the `namespace/name` of the app they were written for. */
  private readonly byApp = new Map<string, Set<string>>();

  constructor(dependencies: StateAdoptionDependencies) {
    this.deps = dependencies;
    dependencies.cache.on((event, secret) => {
      const appKey = secret.metadata.annotations?.[appAnnotation];
      if (!appKey) return;
      const names = this.byApp.get(appKey) ?? new Set<string>();
      if (event === 'deleted') names.delete(secret.metadata.name);
      else names.add(secret.metadata.name);
      if (names.size > 0) this.byApp.set(appKey, names);
      else this.byApp.delete(appKey);
    });
  }

  /**
   * For an app with no state Secret: adopts the state an earlier app of its namespace and name
   * left, if the provider accepted `clientSecretFingerprint` for it. `leading` throws when this
   * replica may no longer write.
   */
  async adopt(app: AppIdentity, clientSecretFingerprint: string | undefined, leading: () => void): Promise<Adoption> {
    if (clientSecretFingerprint === undefined) return { outcome: 'none' };
    const { kube, cache, operatorNamespace, now, logger } = this.deps;
    for (const name of this.byApp.get(`${app.namespace}/${app.name}`) ?? []) {
      const cached = cache.get(operatorNamespace, name);
      if (!cached || cached.metadata.labels?.[appUIDLabel] === app.uid || !adoptableState(cached, clientSecretFingerprint)) continue;
      const live = await kube.getSecret(operatorNamespace, name);
      const state = live?.metadata.resourceVersion ? adoptableState(live, clientSecretFingerprint) : undefined;
      if (!live?.metadata.resourceVersion || !state) continue;
      const claimEndsAt = state.record.claim ? Date.parse(state.record.claim.expiresAt) : undefined;
      if (claimEndsAt !== undefined && claimEndsAt > now()) return { outcome: 'wait', waitMs: claimEndsAt - now() };

      leading();
      let copy: Secret;
      try {
        copy = await kube.createSecret(operatorNamespace, stateSecret(app, operatorNamespace, state));
      } catch (error) {
        // Our own state appeared meanwhile (another replica adopted, or a callback wrote one).
        if (isAlreadyExists(error)) return { outcome: 'none' };
        throw error;
      }
      cache.observeWrite(copy);
      try {
        await kube.deleteSecret(operatorNamespace, name, { resourceVersion: live.metadata.resourceVersion });
      } catch (error) {
        if (!isConflict(error)) throw error;
        // Written since we read it (a late answer): the copy may hold a spent refresh token.
        await kube.deleteSecret(operatorNamespace, copy.metadata.name, { resourceVersion: copy.metadata.resourceVersion ?? '' });
        cache.observeDelete(operatorNamespace, copy.metadata.name);
        throw error;
      }
      cache.observeDelete(operatorNamespace, name);
      logger.info({ from: name, to: copy.metadata.name }, 'adopted the state of an earlier OAuthApp of this name (a restore): no re-authorization needed');
      return { outcome: 'adopted', stored: { state, resourceVersion: copy.metadata.resourceVersion }, from: name };
    }
    return { outcome: 'none' };
  }
}

/** The Secret's state if it has a refresh token and was written for the client secret the app has now. */
function adoptableState(secret: Secret, clientSecretFingerprint: string): AppState | undefined {
  let state: AppState;
  try {
    state = decodeState(secret);
  } catch {
    return undefined;
  }
  return state.refreshToken !== undefined && state.record.verifiedClientSecretFingerprint === clientSecretFingerprint ? state : undefined;
}
