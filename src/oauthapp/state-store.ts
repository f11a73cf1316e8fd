// Reads and writes the state Secrets. Every write carries the resourceVersion it was based on, so
// two writers (replicas, a callback and a refresh) can never silently overwrite each other. A
// write that cannot reach the apiserver keeps the state in memory and is retried before anything
// else happens for that app: a refresh token the provider just issued is never dropped.
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeClient } from '../kube/client.ts';
import { isAlreadyExists, isConflict, isNotFound } from '../kube/errors.ts';
import type { ObjectCache } from '../kube/informer.ts';
import type { Secret } from '../kube/objects.ts';
import { decodeState, emptyState, stateSecret, stateSecretName, type AppIdentity, type AppState } from './state.ts';

export interface StoredState {
  state: AppState;
  /** undefined: no state Secret exists yet. */
  resourceVersion: string | undefined;
}

/** The apiserver calls the store makes. */
interface Unsaved {
  app: AppIdentity;
  state: AppState;
  merge: (live: AppState) => AppState;
}

export type StateSecrets = Pick<KubeClient, 'getSecret' | 'createSecret' | 'replaceSecret' | 'deleteSecret'>;

export class StateStore {
  private readonly kube: StateSecrets;
  private readonly cache: ObjectCache<Secret>;
  private readonly namespace: string;
  /**
   * Results whose write failed, by app uid: the newest truth, not yet durable. Kept with the
   * merge that re-applies them to whatever the Secret holds by the time the apiserver is back.
   */
  private readonly unsaved = new Map<string, Unsaved>();

  constructor(kube: StateSecrets, cache: ObjectCache<Secret>, operatorNamespace: string) {
    this.kube = kube;
    this.cache = cache;
    this.namespace = operatorNamespace;
  }

  load(app: AppIdentity): StoredState {
    const secret = this.cache.get(this.namespace, stateSecretName(app.uid));
    return this.fromSecret(app, secret);
  }

  /** A live read, for the moments when the cache may lag behind another writer. */
  async loadLive(app: AppIdentity): Promise<StoredState> {
    const secret = await this.kube.getSecret(this.namespace, stateSecretName(app.uid));
    if (secret) this.cache.observeWrite(secret);
    return this.fromSecret(app, secret);
  }

  /**
   * Writes `state` if the Secret is still at `resourceVersion` (creates it when that is
   * undefined). Conflict and AlreadyExists propagate: someone else wrote first.
   */
  async save(app: AppIdentity, state: AppState, resourceVersion: string | undefined): Promise<StoredState> {
    const desired = stateSecret(app, this.namespace, state, resourceVersion);
    const written = resourceVersion === undefined ? await this.kube.createSecret(this.namespace, desired) : await this.kube.replaceSecret(this.namespace, desired);
    this.cache.observeWrite(written);
    this.unsaved.delete(app.uid);
    return { state, resourceVersion: written.metadata.resourceVersion };
  }

  /**
   * For results that must not be lost (fresh tokens): on a conflict the result is re-applied to
   * the live state with `merge`; on any other failure it stays in memory and the error propagates
   * so the reconcile is retried, and that retry writes it before doing anything else.
   */
  async saveDurably(app: AppIdentity, stored: StoredState, next: AppState, merge: (live: AppState) => AppState): Promise<StoredState> {
    try {
      return await this.save(app, next, stored.resourceVersion);
    } catch (error) {
      if (!isConflictLike(error)) {
        this.unsaved.set(app.uid, { app, state: next, merge });
        throw error;
      }
      const live = await this.loadLive(app).catch((readError: unknown) => {
        this.unsaved.set(app.uid, { app, state: next, merge });
        throw readError;
      });
      return this.saveDurably(app, live, merge(live.state), merge);
    }
  }

  /** Writes a state kept in memory after a failed write; a no-op when there is none. */
  async flushUnsaved(app: AppIdentity): Promise<void> {
    const pending = this.unsaved.get(app.uid);
    if (!pending) return;
    const live = await this.loadLive(app);
    await this.save(app, pending.merge(live.state), live.resourceVersion);
  }

  /**
   * Before the process goes (SIGTERM, or a lost Lease): keeps trying to write every state held
   * only in memory until `deadline`. The writes are guarded by resourceVersion, so they are safe
   * without leadership; leaving without them would lose refresh tokens the provider just issued.
   * Returns the uids still unsaved at the deadline.
   */
  async flushAllUnsaved(deadline: number, retryEveryMs = 1_000): Promise<string[]> {
    while (this.unsaved.size > 0 && Date.now() < deadline) {
      for (const { app } of [...this.unsaved.values()]) await this.flushUnsaved(app).catch(() => undefined);
      if (this.unsaved.size > 0) await sleep(Math.min(retryEveryMs, Math.max(0, deadline - Date.now())));
    }
    return [...this.unsaved.keys()];
  }

  async delete(app: AppIdentity): Promise<void> {
    this.unsaved.delete(app.uid);
    await this.kube.deleteSecret(this.namespace, stateSecretName(app.uid));
    this.cache.observeDelete(this.namespace, stateSecretName(app.uid));
  }

  private fromSecret(app: AppIdentity, secret: Secret | undefined): StoredState {
    const unsaved = this.unsaved.get(app.uid);
    const resourceVersion = secret?.metadata.resourceVersion;
    if (unsaved) return { state: unsaved.state, resourceVersion };
    return { state: secret ? decodeState(secret) : emptyState(), resourceVersion };
  }
}

/** Someone else wrote (or deleted) the Secret since we read it. */
const isConflictLike = (error: unknown) => isConflict(error) || isAlreadyExists(error) || isNotFound(error);
