// Wires the OAuthApp controller: which caches it keeps, and which object changes put which
// OAuthApp keys on the work queue. Reconciling itself is reconciler.ts's job.
import { oauthAppsPath, oauthInstallationsPath, secretPath } from '../kube/client.ts';
import { installationKind } from '../api/oauthinstallation.ts';
import { installationKey } from './keys.ts';
import type { KubeHTTP } from '../kube/http.ts';
import { Informer, NamespacedInformers, type ObjectCache, type Packing } from '../kube/informer.ts';
import { intern } from '../kube/intern.ts';
import { dataDigest, objectKey, type KubeObject, type Secret } from '../kube/objects.ts';
import type { Logger } from '../log.ts';
import { appAnnotation, roleLabel } from './state.ts';
import { managedByLabel, managedByValue } from './labels.ts';
import { group, kind } from '../api/oauthapp.ts';

export interface Caches {
  apps: ObjectCache<KubeObject>;
  /** OAuthInstallations: public apps' installing companies. */
  installations: ObjectCache<KubeObject>;
  /**
   * Secrets the operator writes for workloads: label-selected, full objects only for those an
   * OAuthApp controls (see ownTargetsOnly).
   */
  targets: ObjectCache<Secret>;
  /**
   * Every other Secret in the watched namespaces, as namespace, name and resourceVersion only
   * (identityOnly, resourceVersionOnly): where client secrets live.
   */
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
  /** Full relist period of every cache (--relist-interval); 0: never. Default: the informer's 30 min. */
  relistIntervalMs?: number;
}

export function createCaches({ http, namespaces, operatorNamespace, logger, onListed, relistIntervalMs }: CacheOptions): Caches {
  const common = { http, logger, ...(onListed ? { onListed } : {}), ...(relistIntervalMs !== undefined ? { relistIntervalMs } : {}) };
  const watched = <T extends KubeObject>(
    name: string,
    path: (namespace?: string) => string,
    extra: { labelSelector?: string; metadataOnly?: boolean; keepCreationTimestamp?: boolean; keep?: (object: T) => T; packing?: Packing<T> },
  ): ObjectCache<T> =>
    namespaces.length === 0
      ? new Informer<T>({ ...common, name, path: path(), ...extra })
      : new NamespacedInformers<T>(namespaces, (namespace) => new Informer<T>({ ...common, name: `${name}/${namespace}`, path: path(namespace), ...extra }));
  const secrets = (namespace?: string) => (namespace ? secretPath(namespace) : '/api/v1/secrets');
  return {
    // creationTimestamp: which of two public apps claiming one callback path came first (callback-paths.ts).
    apps: watched('oauthapps', (namespace) => (namespace ? oauthAppsPath(namespace) : oauthAppsPath()), { keep: appEssentials, keepCreationTimestamp: true }),
    // creationTimestamp: how long a new installation has been waiting for its grant (reconciler.ts).
    installations: watched('oauthinstallations', (namespace) => (namespace ? oauthInstallationsPath(namespace) : oauthInstallationsPath()), { keep: appEssentials, keepCreationTimestamp: true }),
    targets: watched<Secret>('target-secrets', secrets, { labelSelector: targetSelector, keep: ownTargetsOnly }),
    sources: watched('source-secrets', secrets, { labelSelector: `!${roleLabel}`, metadataOnly: true, keep: identityOnly(), packing: resourceVersionOnly }),
    states: new Informer<Secret>({ ...common, name: 'state-secrets', path: secretPath(operatorNamespace), labelSelector: `${roleLabel}=state` }),
  };
}

/** Both labels every target Secret carries (desired.ts): anyone may set one of them on a Secret of theirs. */
export const targetSelector = `${roleLabel}=credentials,${managedByLabel}=${managedByValue}`;

/**
 * A Secret the selector matched is kept with its metadata only when an OAuthApp controls it, and
 * its data as a digest (desired.ts compares digests: the operator knows what it wrote, and a hand
 * edit changes the digest; ~500 bytes an app less). One labelled so by someone else keeps its
 * name, labels and owners (so an app whose target name it takes reports a conflict without a live
 * read), never its data or annotations (where a client-side apply keeps a copy of the data): the
 * operator does not hold other people's secrets, nor their size.
 */
export function ownTargetsOnly(secret: Secret): Secret {
  const controlled = secret.metadata.ownerReferences?.some((owner) => owner.controller === true && (owner.kind === kind || owner.kind === installationKind) && owner.apiVersion.split('/')[0] === group) ?? false;
  const { data, stringData: _stringData, ...rest } = secret as Secret & { stringData?: unknown };
  if (controlled) return { ...rest, dataDigest: dataDigest(data) };
  const { annotations: _annotations, ...metadata } = secret.metadata;
  return { ...rest, metadata };
}

/**
 * An OAuthApp as the operator reads it: spec, status and the metadata it acts on. Not its labels,
 * creation time or owners, and of its annotations only ours (oauthapp.dev/…): `kubectl apply`
 * keeps a second copy of the whole spec in kubectl.kubernetes.io/last-applied-configuration.
 * Values most apps share (provider, endpoints, Secret keys, condition types, statuses and
 * reasons) are interned.
 */
export function appEssentials<T extends KubeObject>(app: T): T {
  internShared(app as KubeObject & AppShape);
  const { name, namespace, uid, resourceVersion, generation, creationTimestamp, finalizers, deletionTimestamp, annotations } = app.metadata;
  const ours = annotations && Object.keys(annotations).some((key) => !key.startsWith(`${group}/`))
    ? Object.fromEntries(Object.entries(annotations).filter(([key]) => key.startsWith(`${group}/`)))
    : annotations;
  // Built with the fields present only (a deleted property would turn the object into a slower, larger dictionary).
  const metadata: KubeObject['metadata'] = {
    name,
    ...(namespace !== undefined ? { namespace } : {}),
    ...(uid !== undefined ? { uid } : {}),
    ...(resourceVersion !== undefined ? { resourceVersion } : {}),
    ...(generation !== undefined ? { generation } : {}),
    // Which of two public apps claiming one callback path came first (callback-paths.ts).
    ...(creationTimestamp !== undefined ? { creationTimestamp } : {}),
    ...(finalizers !== undefined ? { finalizers } : {}),
    ...(deletionTimestamp !== undefined ? { deletionTimestamp } : {}),
    ...(ours !== undefined ? { annotations: ours } : {}),
  };
  return { ...app, metadata };
}

/**
 * The source-Secret store holds a resourceVersion string per name (its key): about 90 bytes a
 * Secret instead of 250 for an object with namespace, name, uid and resourceVersion. The uid is
 * not needed there: a Secret deleted and re-created comes back with a higher resourceVersion,
 * which is all a reader compares (source-secrets.ts).
 */
export const resourceVersionOnly: Packing<KubeObject> = {
  pack: (object) => object.metadata.resourceVersion ?? '',
  unpack: (namespace, name, resourceVersion) => ({ metadata: { ...(namespace !== undefined ? { namespace } : {}), name, resourceVersion: resourceVersion as string } }),
};

type AppShape = {
  spec?: Record<string, unknown> & { clientSecretRef?: { key?: unknown }; refreshTokenRef?: { key?: unknown } };
  status?: { conditions?: Array<Record<string, unknown>> };
};

function internShared({ spec, status }: AppShape): void {
  if (spec) {
    for (const field of ['provider', 'tokenURL', 'authorizeURL', 'redirectURI']) if (typeof spec[field] === 'string') spec[field] = intern(spec[field]);
    for (const ref of [spec.clientSecretRef, spec.refreshTokenRef]) if (ref && typeof ref.key === 'string') ref.key = intern(ref.key);
  }
  for (const condition of status?.conditions ?? []) {
    for (const field of ['type', 'status', 'reason']) if (typeof condition[field] === 'string') condition[field] = intern(condition[field]);
  }
}

/**
 * What the operator reads of a Secret it does not own: which one it is (namespace, name, uid) and
 * whether it changed (resourceVersion). Not its labels or annotations: a Secret applied client-side
 * carries its whole data again in kubectl.kubernetes.io/last-applied-configuration, and clusters
 * hold tens of thousands of Secrets that are none of our business.
 */
export function identityOnly(): (object: KubeObject) => KubeObject {
  // The namespace is interned already (informer.ts).
  return ({ metadata: { namespace, name, uid, resourceVersion } }) => ({ metadata: { namespace, name, uid, resourceVersion } });
}

type SecretRef = { name?: unknown; key?: unknown };

/** The index's view for the referenced-Secret cache (source-secrets.ts): which keys to keep, and when to let go. */
export interface SecretReferences {
  /** The keys of a Secret ("namespace/name") that some OAuthApp references. */
  keysOf(secretKey: string): string[];
  /** Called with a (Secret, key) pair once no OAuthApp references it any more. */
  onUnreferenced(listener: (secretKey: string, dataKey: string) => void): void;
}

/**
 * Which OAuthApps name which Secret and key in clientSecretRef or refreshTokenRef: a Secret's
 * change reaches the apps that use it, and the referenced-Secret cache keeps only keys in use.
 * Flat arrays of shared strings, not a Set or Map per Secret: at 10,000 apps this is a few MiB less.
 */
export class ReferenceIndex implements SecretReferences {
  /** appKey → [secretKey, dataKey, secretKey, dataKey, …] */
  private readonly byApp = new Map<string, string[]>();
  /** secretKey → [appKey, dataKey, appKey, dataKey, …] */
  private readonly bySecret = new Map<string, string[]>();
  private readonly listeners: Array<(secretKey: string, dataKey: string) => void> = [];

  update(app: KubeObject & { spec?: { clientSecretRef?: SecretRef; refreshTokenRef?: SecretRef } }): void {
    // One flat string (a template literal makes a two-part string that keeps both parts).
    const appKey = [app.metadata.namespace, app.metadata.name].join('/');
    const found: string[] = [];
    for (const ref of [app.spec?.clientSecretRef, app.spec?.refreshTokenRef]) {
      if (typeof ref?.name === 'string') found.push([app.metadata.namespace, ref.name].join('/'), typeof ref.key === 'string' ? ref.key : '');
    }
    // A copy sized to fit: an array grown by push keeps room for ~17 elements.
    const refs = found.slice();
    const before = this.byApp.get(appKey);
    if (before && before.length === refs.length && before.every((value, index) => value === refs[index])) return;
    for (let index = 0; index < refs.length; index += 2) {
      const entries = this.bySecret.get(refs[index] as string);
      // In place: a client-secret Secret shared by thousands of apps must not be copied per app.
      if (entries) entries.push(appKey, refs[index + 1] as string);
      else this.bySecret.set(refs[index] as string, [appKey, refs[index + 1] as string]);
    }
    if (refs.length > 0) this.byApp.set(appKey, refs);
    else this.byApp.delete(appKey);
    if (before) this.release(appKey, before);
  }

  remove(appKey: string): void {
    const refs = this.byApp.get(appKey);
    if (!refs) return;
    this.byApp.delete(appKey);
    this.release(appKey, refs);
  }

  appsReferencing(secretKey: string): string[] {
    const entries = this.bySecret.get(secretKey) ?? [];
    const apps = new Set<string>();
    for (let index = 0; index < entries.length; index += 2) apps.add(entries[index] as string);
    return [...apps];
  }

  keysOf(secretKey: string): string[] {
    const entries = this.bySecret.get(secretKey) ?? [];
    const keys = new Set<string>();
    for (let index = 1; index < entries.length; index += 2) if (entries[index]) keys.add(entries[index] as string);
    return [...keys];
  }

  onUnreferenced(listener: (secretKey: string, dataKey: string) => void): void {
    this.listeners.push(listener);
  }

  /** Drops one reference per (secret, key) pair of `refs` that `appKey` held; tells of pairs no app holds now. */
  private release(appKey: string, refs: string[]): void {
    for (let index = 0; index < refs.length; index += 2) {
      const secretKey = refs[index] as string;
      const dataKey = refs[index + 1] as string;
      const entries = this.bySecret.get(secretKey);
      if (!entries) continue;
      for (let at = 0; at < entries.length; at += 2) {
        if (entries[at] === appKey && entries[at + 1] === dataKey) {
          entries.splice(at, 2);
          break;
        }
      }
      let stillUsed = false;
      for (let at = 1; at < entries.length && !stillUsed; at += 2) stillUsed = entries[at] === dataKey;
      if (entries.length === 0) this.bySecret.delete(secretKey);
      if (!stillUsed) for (const listener of this.listeners) listener(secretKey, dataKey);
    }
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
  /** A public app's installations: appKey → installation keys. */
  const installationsOf = new Map<string, Set<string>>();
  // A public app's change (its spec, its client secret) is every installation's change.
  const enqueueApp = (appKey: string) => {
    enqueue(appKey);
    for (const key of installationsOf.get(appKey) ?? []) enqueue(key);
  };
  caches.apps.on((event, app, old) => {
    const key = objectKey(app.metadata.namespace, app.metadata.name);
    if (event === 'deleted') index.remove(key);
    else index.update(app);
    if (event !== 'updated' || !old || changedForReconcile(old, app)) enqueueApp(key);
  });
  caches.sources.on((_event, secret) => {
    for (const appKey of index.appsReferencing(objectKey(secret.metadata.namespace, secret.metadata.name))) enqueueApp(appKey);
  });
  caches.targets.on((_event, secret) => {
    const owner = secret.metadata.ownerReferences?.find((reference) => (reference.kind === kind || reference.kind === installationKind) && reference.controller);
    if (owner) enqueue(owner.kind === kind ? objectKey(secret.metadata.namespace, owner.name) : installationKey(secret.metadata.namespace ?? '', owner.name));
  });
  // An installation is its own key; its public app looks again when one goes (a deleted app waits
  // for them).
  caches.installations.on((event, installation, old) => {
    const namespace = installation.metadata.namespace ?? '';
    const appKey = objectKey(namespace, String((installation as { spec?: { app?: unknown } }).spec?.app ?? ''));
    const key = installationKey(namespace, installation.metadata.name);
    if (event === 'deleted') {
      installationsOf.get(appKey)?.delete(key);
      enqueue(appKey);
    } else installationsOf.set(appKey, (installationsOf.get(appKey) ?? new Set()).add(key));
    if (event !== 'updated' || !old || changedForReconcile(old, installation)) enqueue(key);
  });
  caches.states.on((_event, secret) => {
    const appKey = secret.metadata.annotations?.[appAnnotation];
    if (appKey) enqueue(appKey);
  });
  return index;
}
