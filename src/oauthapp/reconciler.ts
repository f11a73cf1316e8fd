// The reconcile loop for one OAuthApp, level-based: read everything, decide, write only what
// differs, and say when to look again. It never asks what event brought it here.
import { oauthApp, type OAuthApp } from '../api/oauthapp.ts';
import { issueFieldPaths } from '../api/field-path.ts';
import type { ReconcileResult } from '../controller/result.ts';
import type { KubeObject } from '../kube/objects.ts';
import type { ObjectCache } from '../kube/informer.ts';
import type { KubeClient } from '../kube/client.ts';
import { objectKey, splitKey } from '../kube/objects.ts';
import { resolveProvider } from '../oauth/providers.ts';
import { parseDurationMs } from '../api/fields.ts';
import type { Logger } from '../log.ts';
import { finalizerName, rotateAnnotation } from './labels.ts';
import { decideRefresh, needsAuthorization, recordStaleClaim, seedRefreshToken, type RefreshDecision } from './policies.ts';
import type { Authorizations } from './authorization.ts';
import type { Refresher } from './refresher.ts';
import type { Rollouts } from './rollout.ts';
import type { SourceSecrets, SecretValue } from './source-secrets.ts';
import type { StateStore, StoredState } from './state-store.ts';
import { fingerprint, type AppIdentity } from './state.ts';
import { deriveStatus, invalidSpecStatus } from './status.ts';
import type { StatusWriter } from './status-writer.ts';
import type { TargetWriter } from './target-writer.ts';

export interface ReconcilerDependencies {
  apps: ObjectCache<KubeObject>;
  sources: SourceSecrets;
  states: StateStore;
  refresher: Refresher;
  targets: TargetWriter;
  rollouts: Rollouts;
  authorizations: Authorizations;
  status: StatusWriter;
  kube: KubeClient;
  now: () => number;
  logger: Logger;
  /** Sees each app's readiness and token expiry (metrics). */
  observe?: (appKey: string, facts: { ready: boolean; accessTokenExpiresAt: number | undefined }) => void;
}

export class Reconciler {
  private readonly deps: ReconcilerDependencies;

  constructor(dependencies: ReconcilerDependencies) {
    this.deps = dependencies;
  }

  async reconcile(key: string, log: Logger = this.deps.logger): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const object = this.deps.apps.get(namespace, name);
    if (!object) return {};
    const parsed = oauthApp.safeParse(object);
    if (!parsed.success) {
      const fields = [...new Set(issueFieldPaths(parsed.error, ''))].join(', ');
      await this.deps.status.write(object, invalidSpecStatus(`the spec is invalid at ${fields}`), this.deps.now());
      return {};
    }
    const app = parsed.data;
    const identity: AppIdentity = { namespace, name, uid: app.metadata.uid };
    if (app.metadata.deletionTimestamp) return this.finalize(app, identity);
    if (!app.metadata.finalizers?.includes(finalizerName)) {
      await this.setFinalizers(app, [...(app.metadata.finalizers ?? []), finalizerName]);
    }
    return this.reconcileTokens(app, identity, log);
  }

  private async reconcileTokens(app: OAuthApp, identity: AppIdentity, log: Logger): Promise<ReconcileResult> {
    const { sources, states, refresher, now } = this.deps;
    const { spec } = app;
    await states.flushUnsaved(identity);
    const clientSecret = await sources.read(identity.namespace, spec.clientSecretRef);
    let stored = await this.plantSeed(identity, app, states.load(identity));

    const rotateRequest = app.metadata.annotations?.[rotateAnnotation];
    const rotateRequested = rotateRequest !== undefined && rotateRequest !== '' && rotateRequest !== app.status?.lastRotateRequest;
    const decision = decideRefresh({
      now: now(),
      state: stored.state,
      clientSecretFingerprint: clientSecret.found ? fingerprint(clientSecret.value) : undefined,
      rotateRequested,
    });

    if (decision.action === 'resolve-stale-claim') {
      await states.save(identity, recordStaleClaim(stored.state, now()), stored.resourceVersion);
      return { requeueAfterMs: 0, reason: 'resolved a stale refresh claim' };
    }
    if (decision.action === 'refresh' && clientSecret.found) {
      const outcome = await refresher.refresh({
        app: identity,
        stored,
        provider: resolveProvider(spec),
        clientId: spec.clientId,
        clientSecret: clientSecret.value,
        renewBeforeMs: spec.renewBefore === undefined ? undefined : parseDurationMs(spec.renewBefore),
        reason: decision.reason,
      });
      stored = outcome.stored;
      if (outcome.ok) log.info({ reason: decision.reason, nextRefreshAt: stored.state.record.refreshAt }, 'refreshed the access token');
      else log.warn({ reason: decision.reason, error: outcome.error.code, delivery: outcome.error.delivery, message: outcome.error.message }, 'token refresh failed');
    }

    let targetConflict: string | undefined;
    if (clientSecret.found) {
      targetConflict = await this.deps.targets.ensure(app, clientSecret.value, stored.state);
      // Only once the target Secret carries the secret do restarted pods read the new one.
      if (!targetConflict) stored = await this.deps.rollouts.reconcile(app, identity, stored, clientSecret.value);
    }
    const handledRotateRequest = rotateRequested && decision.action !== 'wait' ? rotateRequest : app.status?.lastRotateRequest;
    const authorization = needsAuthorization(stored.state) ? this.deps.authorizations.authorizationURL(app, stored.state) : undefined;
    const status = deriveStatus({
      now: now(),
      state: stored.state,
      clientSecret,
      ...(targetConflict ? { targetConflict } : {}),
      ...(handledRotateRequest !== undefined ? { lastRotateRequest: handledRotateRequest } : {}),
      ...(authorization ? { authorizationURL: authorization.url } : {}),
    });
    await this.deps.status.write(app, status, now());
    this.deps.observe?.(objectKey(identity.namespace, identity.name), {
      ready: status.conditions.some((condition) => condition.type === 'Ready' && condition.status === 'True'),
      accessTokenExpiresAt: stored.state.tokens ? Date.parse(stored.state.tokens.expiresAt) : undefined,
    });
    return this.nextLook(stored, decision, authorization?.renewAt);
  }

  /** spec.refreshTokenRef seeds the app when the operator has no usable refresh token of its own. */
  private async plantSeed(identity: AppIdentity, app: OAuthApp, stored: StoredState): Promise<StoredState> {
    const ref = app.spec.refreshTokenRef;
    if (!ref) return stored;
    const seed: SecretValue = await this.deps.sources.read(identity.namespace, ref);
    const seeded = seedRefreshToken(stored.state, seed.found ? seed.value : undefined);
    return seeded === stored.state ? stored : this.deps.states.save(identity, seeded, stored.resourceVersion);
  }

  /** When to look again: the next refresh, the end of a wait, or the token's expiry. */
  private nextLook(stored: StoredState, decision: RefreshDecision, authorizationURLRenewAt: number | undefined): ReconcileResult {
    const now = this.deps.now();
    const { record, tokens } = stored.state;
    const candidates: Array<[number, string]> = [];
    if (authorizationURLRenewAt !== undefined) candidates.push([authorizationURLRenewAt, 'authorization URL renewal']);
    if (decision.action === 'wait') candidates.push([decision.until, decision.reason]);
    const retryAt = record.failure?.retryAt ?? record.refreshAt;
    if (retryAt && decision.action !== 'blocked') candidates.push([Date.parse(retryAt), record.failure ? 'retry' : 'scheduled refresh']);
    if (tokens && Date.parse(tokens.expiresAt) > now) candidates.push([Date.parse(tokens.expiresAt), 'access token expiry']);
    const future = candidates.filter(([at]) => at > now).sort(([a], [b]) => a - b)[0];
    if (!future) return {};
    return { requeueAfterMs: future[0] - now, reason: future[1] };
  }

  private async finalize(app: OAuthApp, identity: AppIdentity): Promise<ReconcileResult> {
    if (!app.metadata.finalizers?.includes(finalizerName)) return {};
    await this.deps.states.delete(identity);
    await this.setFinalizers(app, app.metadata.finalizers.filter((finalizer) => finalizer !== finalizerName));
    return {};
  }

  private async setFinalizers(app: OAuthApp, finalizers: string[]): Promise<void> {
    const written = await this.deps.kube.setOAuthAppFinalizers(app.metadata.namespace, app.metadata.name, finalizers, app.metadata.resourceVersion ?? '');
    this.deps.apps.observeWrite(written);
  }
}
