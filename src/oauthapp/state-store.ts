// Reads and writes the state Secrets. Every write carries the resourceVersion it was based on, so
// two writers (replicas, a callback and a refresh) can never silently overwrite each other.
//
// A provider's answer is the one thing that must not be lost, and also the one thing that must not
// be written late over newer truth. So an answer is saved through `saveAnswer` with a guard that
// re-applies it to whatever the Secret holds: the guard says whether the answer still belongs
// there (our refresh claim is still in place, our authorization round is still current). When the
// write cannot reach the apiserver the answer is held in memory and retried (by the next reconcile
// of that app, by `flushAllUnsaved` on any replica, before a stopping replica exits) until it is
// written, no longer applies, or expires.
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

/**
 * Applies an answer to the live state; undefined when the answer no longer applies because another
 * writer moved the state on (its claim or round is gone, the app was deleted).
 */
export type ApplyAnswer = (live: AppState) => AppState | undefined;

/** The answer was not written because the live state no longer carries what it was for. */
export class AnswerNoLongerAppliesError extends Error {
  readonly code = 'ANSWER_NO_LONGER_APPLIES';
}

interface HeldAnswer {
  app: AppIdentity;
  apply: ApplyAnswer;
  /** A new installation's first grant: may create the state Secret (other answers never re-create one). */
  mayCreate: boolean;
  /** Past this, the answer is dropped unwritten (see `saveAnswer`). */
  expiresAt: number;
}

export type StateSecrets = Pick<KubeClient, 'getSecret' | 'createSecret' | 'replaceSecret' | 'deleteSecret'>;

export interface StateStoreOptions {
  now?: () => number;
  /** Called when a held answer could not be written and was given up (expired or no longer applies). */
  onAnswerDropped?: (app: AppIdentity, why: 'expired' | 'no-longer-applies') => void;
}

export class StateStore {
  private readonly kube: StateSecrets;
  private readonly cache: ObjectCache<Secret>;
  private readonly namespace: string;
  private readonly now: () => number;
  private readonly onAnswerDropped: NonNullable<StateStoreOptions['onAnswerDropped']>;
  /** Answers whose write failed, by app uid: not durable yet, written before anything else. */
  private readonly held = new Map<string, HeldAnswer>();

  constructor(kube: StateSecrets, cache: ObjectCache<Secret>, operatorNamespace: string, options: StateStoreOptions = {}) {
    this.kube = kube;
    this.cache = cache;
    this.namespace = operatorNamespace;
    this.now = options.now ?? Date.now;
    this.onAnswerDropped = options.onAnswerDropped ?? (() => undefined);
  }

  load(app: AppIdentity): StoredState {
    return fromSecret(this.cache.get(this.namespace, stateSecretName(app.uid)));
  }

  /** A live read, for the moments when the cache may lag behind another writer. */
  async loadLive(app: AppIdentity): Promise<StoredState> {
    const secret = await this.kube.getSecret(this.namespace, stateSecretName(app.uid));
    if (secret) this.cache.observeWrite(secret);
    return fromSecret(secret);
  }

  /** Whether an answer for this app is waiting to be written. */
  holds(app: AppIdentity): boolean {
    return this.held.has(app.uid);
  }

  /**
   * Writes `state` if the Secret is still at `resourceVersion` (creates it when that is
   * undefined). Conflict and AlreadyExists propagate: someone else wrote first.
   */
  async save(app: AppIdentity, state: AppState, resourceVersion: string | undefined): Promise<StoredState> {
    const desired = stateSecret(app, this.namespace, state, resourceVersion);
    const written = resourceVersion === undefined ? await this.kube.createSecret(this.namespace, desired) : await this.kube.replaceSecret(this.namespace, desired);
    this.cache.observeWrite(written);
    return { state, resourceVersion: written.metadata.resourceVersion };
  }

  /**
   * Saves a provider's answer on top of `stored` (the state it was requested from). On a conflict
   * it is re-applied to the live state; when it no longer applies there, AnswerNoLongerAppliesError.
   * On any other failure it is held (until `heldForMs` from now) and the error propagates, so the
   * app's next reconcile writes it before doing anything else.
   */
  async saveAnswer(app: AppIdentity, stored: StoredState, apply: ApplyAnswer, heldForMs: number, { mayCreate = false }: { mayCreate?: boolean } = {}): Promise<StoredState> {
    try {
      return await this.writeAnswer(app, stored, apply, mayCreate);
    } catch (error) {
      if (!(error instanceof AnswerNoLongerAppliesError)) this.held.set(app.uid, { app, apply, mayCreate, expiresAt: this.now() + heldForMs });
      throw error;
    }
  }

  /**
   * Writes the answer held for this app, if any. Throws while it cannot be written; resolves once it
   * is written, dropped (expired, or no longer applies), or there was none.
   */
  async flushUnsaved(app: AppIdentity): Promise<void> {
    const pending = this.held.get(app.uid);
    if (!pending) return;
    if (pending.expiresAt <= this.now()) return this.drop(pending, 'expired');
    try {
      await this.writeAnswer(app, await this.loadLive(app), pending.apply, pending.mayCreate);
      this.settle(pending);
    } catch (error) {
      if (!(error instanceof AnswerNoLongerAppliesError)) throw error;
      this.drop(pending, 'no-longer-applies');
    }
  }

  /**
   * Tries every held answer until none is left or `deadline` passes: a stopping replica, and every
   * replica now and then (a standby's callback answers too). The writes are guarded, so they are
   * safe without leadership. Returns the uids still held at the deadline.
   */
  async flushAllUnsaved(deadline: number, retryEveryMs = 1_000): Promise<string[]> {
    while (this.held.size > 0 && Date.now() < deadline) {
      await this.retryHeld();
      if (this.held.size > 0) await sleep(Math.min(retryEveryMs, Math.max(0, deadline - Date.now())));
    }
    return [...this.held.keys()];
  }

  /** One attempt at every held answer; every replica runs this now and then. */
  async retryHeld(): Promise<void> {
    for (const { app } of [...this.held.values()]) await this.flushUnsaved(app).catch(() => undefined);
  }

  async delete(app: AppIdentity): Promise<void> {
    this.held.delete(app.uid);
    await this.kube.deleteSecret(this.namespace, stateSecretName(app.uid));
    this.cache.observeDelete(this.namespace, stateSecretName(app.uid));
  }

  private async writeAnswer(app: AppIdentity, base: StoredState, apply: ApplyAnswer, mayCreate: boolean): Promise<StoredState> {
    let current = base;
    for (;;) {
      // A state Secret that is gone went with its app: an answer never re-creates it.
      const next = current.resourceVersion === undefined && !mayCreate ? undefined : apply(current.state);
      if (!next) throw new AnswerNoLongerAppliesError(`the answer for ${app.namespace}/${app.name} no longer applies: the state moved on`);
      try {
        return await this.save(app, next, current.resourceVersion);
      } catch (error) {
        if (!isConflictLike(error)) throw error;
        current = await this.loadLive(app);
      }
    }
  }

  /** Forgets a held answer once written, unless a newer one replaced it meanwhile. */
  private settle(pending: HeldAnswer): void {
    if (this.held.get(pending.app.uid) === pending) this.held.delete(pending.app.uid);
  }

  private drop(pending: HeldAnswer, why: 'expired' | 'no-longer-applies'): void {
    this.settle(pending);
    this.onAnswerDropped(pending.app, why);
  }
}

function fromSecret(secret: Secret | undefined): StoredState {
  return { state: secret ? decodeState(secret) : emptyState(), resourceVersion: secret?.metadata.resourceVersion };
}

/** Someone else wrote (or deleted) the Secret since we read it. */
const isConflictLike = (error: unknown) => isConflict(error) || isAlreadyExists(error) || isNotFound(error);
