// Wires the OAuthApp controller: which caches it keeps, and which object changes put which
// OAuthApp keys on the work queue. Reconciling itself is reconciler.ts's job.
import { oauthAppsPath, secretPath } from '../kube/client.ts';
import type { KubeHTTP } from '../kube/http.ts';
import { Informer, NamespacedInformers, type ObjectCache } from '../kube/informer.ts';
import { objectKey, type KubeObject, type Secret } from '../kube/objects.ts';
import type { Logger } from '../log.ts';
import { appAnnotation, roleLabel } from './state.ts';
import { managedByLabel, managedByValue } from './labels.ts';
import { group, kind } from '../api/oauthapp.ts';

export interface Caches {
  apps: ObjectCache<KubeObject>;
  /**
   * Secrets the operator writes for workloads: label-selected, full objects only for those an
   * OAuthApp controls (see ownTargetsOnly).
   */
  targets: ObjectCache<Secret>;
  /** Every other Secret in the watched namespaces, metadata only: where client secrets live. */
  sources: ObjectCache<KubeObject>;
  /** State Secrets in the operator namespace. */
  states: ObjectCache<Secret>;
}

export interface CacheOptions {
  http: KubeHTTP;
  /** Empty: all namespaces. */
  namespaces: readonly string[];
  operatorNamespace: string;
  logger: Logger;
  onListed?: (informer: string) => void;
}

export function createCaches({ http, namespaces, operatorNamespace, logger, onListed }: CacheOptions): Caches {
  const common = { http, logger, ...(onListed ? { onListed } : {}) };
  const watched = <T extends KubeObject>(name: string, path: (namespace?: string) => string, extra: { labelSelector?: string; metadataOnly?: boolean; keep?: (object: T) => T }): ObjectCache<T> =>
    namespaces.length === 0
      ? new Informer<T>({ ...common, name, path: path(), ...extra })
      : new NamespacedInformers<T>(namespaces, (namespace) => new Informer<T>({ ...common, name: `${name}/${namespace}`, path: path(namespace), ...extra }));
  const secrets = (namespace?: string) => (namespace ? secretPath(namespace) : '/api/v1/secrets');
  return {
    apps: watched('oauthapps', (namespace) => (namespace ? oauthAppsPath(namespace) : oauthAppsPath()), {}),
    targets: watched<Secret>('target-secrets', secrets, { labelSelector: targetSelector, keep: ownTargetsOnly }),
    sources: watched('source-secrets', secrets, { labelSelector: `!${roleLabel}`, metadataOnly: true }),
    states: new Informer<Secret>({ ...common, name: 'state-secrets', path: secretPath(operatorNamespace), labelSelector: `${roleLabel}=state` }),
  };
}

/** Both labels every target Secret carries (desired.ts): anyone may set one of them on a Secret of theirs. */
export const targetSelector = `${roleLabel}=credentials,${managedByLabel}=${managedByValue}`;

/**
 * A Secret the selector matched is kept whole only when an OAuthApp controls it. One labelled so by
 * someone else keeps its name, labels and owners (so an app whose target name it takes reports a
 * conflict without a live read), never its data or annotations (where a client-side apply keeps a
 * copy of the data): the operator does not hold other people's secrets, nor their size.
 */
export function ownTargetsOnly(secret: Secret): Secret {
  const controlled = secret.metadata.ownerReferences?.some((owner) => owner.controller === true && owner.kind === kind && owner.apiVersion.split('/')[0] === group) ?? false;
  if (controlled) return secret;
  const { annotations: _annotations, ...metadata } = secret.metadata;
  const { data: _data, stringData: _stringData, ...rest } = secret as Secret & { stringData?: unknown };
  return { ...rest, metadata };
}

type SecretRef = { name?: unknown };

/** Which OAuthApps name a Secret in clientSecretRef or refreshTokenRef, so its change reaches them. */
export class ReferenceIndex {
  private readonly appsBySecret = new Map<string, Set<string>>();
  private readonly secretsByApp = new Map<string, string[]>();

  update(app: KubeObject & { spec?: { clientSecretRef?: SecretRef; refreshTokenRef?: SecretRef } }): void {
    const appKey = objectKey(app.metadata.namespace, app.metadata.name);
    this.remove(appKey);
    const secretKeys = [app.spec?.clientSecretRef?.name, app.spec?.refreshTokenRef?.name]
      .filter((name): name is string => typeof name === 'string')
      .map((name) => objectKey(app.metadata.namespace, name));
    this.secretsByApp.set(appKey, secretKeys);
    for (const secretKey of secretKeys) {
      const apps = this.appsBySecret.get(secretKey) ?? new Set<string>();
      apps.add(appKey);
      this.appsBySecret.set(secretKey, apps);
    }
  }

  remove(appKey: string): void {
    for (const secretKey of this.secretsByApp.get(appKey) ?? []) {
      const apps = this.appsBySecret.get(secretKey);
      apps?.delete(appKey);
      if (apps?.size === 0) this.appsBySecret.delete(secretKey);
    }
    this.secretsByApp.delete(appKey);
  }

  appsReferencing(secretKey: string): string[] {
    return [...(this.appsBySecret.get(secretKey) ?? [])];
  }
}

/**
 * Whether an update can change what the reconcile does: its spec (generation), annotations (the
 * rotate request), finalizers or deletion. Status-only updates are the operator's own echo.
 * Updates come from watch events and from write-through (the informer's observeWrite): the answer
 * to our unguarded status patch carries whatever the user changed while it was in flight, and the
 * watch events of that change then arrive older than the cache and are dropped, so this filter on
 * the write-through update is what puts the app back on the queue.
 */
function changedForReconcile(old: KubeObject, updated: KubeObject): boolean {
  const meta = (object: KubeObject) =>
    JSON.stringify([object.metadata.generation, object.metadata.annotations ?? {}, object.metadata.finalizers ?? [], object.metadata.deletionTimestamp ?? null]);
  return meta(old) !== meta(updated);
}

/** Every change that can matter to an OAuthApp puts that app's key on the queue. */
export function enqueueOnChanges(caches: Caches, enqueue: (appKey: string) => void): ReferenceIndex {
  const index = new ReferenceIndex();
  caches.apps.on((event, app, old) => {
    const key = objectKey(app.metadata.namespace, app.metadata.name);
    if (event === 'deleted') index.remove(key);
    else index.update(app);
    if (event !== 'updated' || !old || changedForReconcile(old, app)) enqueue(key);
  });
  caches.sources.on((_event, secret) => {
    for (const appKey of index.appsReferencing(objectKey(secret.metadata.namespace, secret.metadata.name))) enqueue(appKey);
  });
  caches.targets.on((_event, secret) => {
    const owner = secret.metadata.ownerReferences?.find((reference) => reference.kind === kind && reference.controller);
    if (owner) enqueue(objectKey(secret.metadata.namespace, owner.name));
  });
  caches.states.on((_event, secret) => {
    const appKey = secret.metadata.annotations?.[appAnnotation];
    if (appKey) enqueue(appKey);
  });
  return index;
}
