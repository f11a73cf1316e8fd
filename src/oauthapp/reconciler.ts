// The reconcile loop for one OAuthApp, level-based: read everything, decide, write only what
// differs, and say when to look again. It never asks what event brought it here.
import type { ZodError } from 'zod';
import { oauthApp } from '../api/oauthapp.ts';
import { installationKind, oauthInstallation } from '../api/oauthinstallation.ts';
import type { OwnKind } from '../kube/client.ts';
import { installationAsGrantOwner, type GrantOwner } from './grant-owner.ts';
import { installationIdentityName, parseKey } from './keys.ts';
import type { PublicApps } from './public-apps.ts';
import { issueFieldPaths } from '../api/field-path.ts';
import type { ReconcileResult } from '../controller/result.ts';
import type { KeyedLimiter } from '../controller/limiter.ts';
import type { KubeObject } from '../kube/objects.ts';
import type { ObjectCache } from '../kube/informer.ts';
import type { KubeClient } from '../kube/client.ts';
import { resolveProvider } from '../oauth/providers.ts';
import type { ProviderPolicy } from '../oauth/provider-policy.ts';
import { parseDurationMs } from '../api/fields.ts';
import type { Logger } from '../log.ts';
import { finalizerName, rotateAnnotation } from './labels.ts';
import { NotLeadingError } from '../controller/errors.ts';
import { clientSecretUnchecked, decideRefresh, needsAuthorization, recordClientCheck, recordStaleClaim, releaseClaim, seedRefreshToken, type RefreshDecision } from './policies.ts';
import type { ClientSecretChecks } from './client-secret-checks.ts';
import type { StateAdoption } from './state-adoption.ts';
import type { Authorizations } from './authorization.ts';
import type { Refresher } from './refresher.ts';
import type { Rollouts } from './rollout.ts';
import type { SeedLedger } from './seed-ledger.ts';
import type { SourceSecrets, SecretValue } from './source-secrets.ts';
import type { StateStore, StoredState } from './state-store.ts';
import { fingerprint, type AppIdentity } from './state.ts';
import { observation, type AppObservation } from './observation.ts';
import { appNotFoundStatus, deriveStatus, installationPendingStatus, invalidSpecStatus, limits, uninstalledStatus } from './status.ts';
import type { StatusWriter } from './status-writer.ts';
import type { TargetWriter } from './target-writer.ts';
import { targetSecretName } from './desired.ts';

export interface ReconcilerDependencies {
  apps: ObjectCache<KubeObject>;
  sources: SourceSecrets;
  states: StateStore;
  refresher: Refresher;
  targets: TargetWriter;
  rollouts: Rollouts;
  authorizations: Authorizations;
  status: StatusWriter;
  seeds: SeedLedger;
  kube: KubeClient;
  now: () => number;
  logger: Logger;
  /** Which providers the admin allows (--provider-hosts, --allow-preset-overrides). Default: any. */
  providerPolicy?: ProviderPolicy;
  /** --min-refresh-interval in ms: no app sends token requests more often. Default: no floor. */
  minRefreshIntervalMs?: number;
  /** The limiter the refresher takes provider slots from: told when a woken app took none. */
  providerSlots?: Pick<KeyedLimiter, 'dismiss'>;
  /** Sees each app's conditions and token schedule after its status is written (metrics). */
  observe?: (appKey: string, facts: AppObservation) => void;
  /** Checks a client secret the provider has not accepted yet, without a refresh. Default: none. */
  clientSecretChecks?: ClientSecretChecks;
  /** Gives an app with no state the state an earlier app of its name left (a restore). Default: none. */
  adoption?: StateAdoption;
  /** Public apps (installations: multiple) and their installations. Default: none are reconciled. */
  publicApps?: PublicApps;
}

/**
 * An app waiting for a provider slot is queued again when one frees up (controller/limiter.ts);
 * this later look only covers a wake that never came.
 */
export const providerSlotLookAgainMs = 60_000;

/** How long a new installation may go without its grant before its status says so. */
const installationGrantGraceMs = 30_000;

export class Reconciler {
  private readonly deps: ReconcilerDependencies;

  constructor(dependencies: ReconcilerDependencies) {
    this.deps = dependencies;
  }

  /**
   * `leadership` is aborted when this replica stops leading: the reconcile then stops before its
   * next write (storing a provider's answer excepted: that write is guarded and must not be lost).
   */
  async reconcile(key: string, log: Logger = this.deps.logger, leadership?: AbortSignal): Promise<ReconcileResult> {
    try {
      return await this.reconcileKey(key, log, leadership);
    } finally {
      // Woken for a provider slot but took none (nothing due any more, deleted, failed before
      // asking): the next app waiting for that provider is woken instead. A no-op otherwise.
      this.deps.providerSlots?.dismiss(key);
    }
  }

  private async reconcileKey(key: string, log: Logger, leadership: AbortSignal | undefined): Promise<ReconcileResult> {
    const { namespace, name, kind } = parseKey(key);
    const leading = () => {
      if (leadership?.aborted) throw new NotLeadingError();
    };
    if (kind === 'installation') return this.reconcileInstallation(key, namespace, name, log, leading, leadership);
    const object = this.deps.apps.get(namespace, name);
    if (!object) return {};
    const parsed = oauthApp.safeParse(object);
    if (!parsed.success) return this.invalidSpec(key, object, parsed.error, this.deps.status, leading);
    const app = parsed.data;
    const identity: AppIdentity = { namespace, name, uid: app.metadata.uid };
    const publicApp = app.spec.installations === 'multiple' ? this.deps.publicApps : undefined;
    if (app.metadata.deletionTimestamp) {
      if (publicApp && app.metadata.finalizers?.includes(finalizerName)) {
        const waiting = await publicApp.endInstallations(app, leading);
        if (waiting) return waiting;
      }
      return this.finalize(app, identity, leading);
    }
    await this.ensureFinalizer(app, leading);
    if (publicApp) return publicApp.reconcile(app, identity, leading, (stored, clientSecret) => this.checkClientSecret(key, app, identity, clientSecret, stored, leading));
    return this.reconcileTokens(key, app, identity, log, leading, leadership);
  }

  /**
   * An OAuthInstallation: its app's spec with its own identity (grant-owner.ts), through the same
   * refresh protocol as an app. Uninstalled, it holds no tokens and has no Secret.
   */
  private async reconcileInstallation(key: string, namespace: string, name: string, log: Logger, leading: () => void, leadership: AbortSignal | undefined): Promise<ReconcileResult> {
    const publicApps = this.deps.publicApps;
    const object = publicApps?.installations.get(namespace, name);
    if (!publicApps || !object) return {};
    const parsed = oauthInstallation.safeParse(object);
    if (!parsed.success) return this.invalidSpec(key, object, parsed.error, publicApps.status, leading);
    const installation = parsed.data;
    const identity: AppIdentity = { namespace, name: installationIdentityName(name), uid: installation.metadata.uid };
    const parent = oauthApp.safeParse(this.deps.apps.get(namespace, installation.spec.app));
    const app = parent.success && parent.data.spec.installations === 'multiple' ? parent.data : undefined;
    if (installation.metadata.deletionTimestamp) {
      if (!installation.metadata.finalizers?.includes(finalizerName)) return {};
      // Revoked with the refresh token the answer of a request still out would replace.
      if (this.deps.refresher.inFlight(identity)) return { requeueAfterMs: 1_000, reason: 'a refresh is out; revoking after its answer' };
      // A refresh result not stored yet holds the refresh token to revoke.
      await this.deps.states.flushUnsaved(identity);
      leading();
      await publicApps.revoke(installation, app, identity);
      await this.deps.targets.remove(namespace, name, installation.metadata.uid);
      return this.finalize(installation, identity, leading);
    }
    await this.ensureFinalizer(installation, leading);
    if (!app) {
      leading();
      await publicApps.status.write(installation, appNotFoundStatus(installation.spec.app), this.deps.now());
      return {};
    }
    const owner = installationAsGrantOwner(app, installation);
    await this.deps.states.flushUnsaved(identity);
    const stored = this.deps.states.load(identity);
    if (stored.state.record.installation?.uninstalledAt !== undefined) {
      leading();
      await this.deps.targets.remove(namespace, name, installation.metadata.uid);
      const status = uninstalledStatus(stored.state);
      await publicApps.status.write(installation, status, this.deps.now());
      this.deps.observe?.(key, { conditions: status.conditions });
      return {};
    }
    return this.reconcileTokens(key, owner, identity, log, leading, leadership);
  }

  private async invalidSpec(key: string, object: KubeObject, error: ZodError, status: StatusWriter, leading: () => void): Promise<ReconcileResult> {
    const fields = [...new Set(issueFieldPaths(error, ''))].join(', ');
    leading();
    const invalid = invalidSpecStatus(`the spec is invalid at ${fields}`);
    await status.write(object, invalid, this.deps.now());
    this.deps.observe?.(key, { conditions: invalid.conditions });
    return {};
  }

  private async ensureFinalizer(owner: { kind: OwnKind; metadata: GrantOwner['metadata'] }, leading: () => void): Promise<void> {
    if (owner.metadata.finalizers?.includes(finalizerName)) return;
    leading();
    await this.setFinalizers(owner, [...(owner.metadata.finalizers ?? []), finalizerName]);
  }

  private async reconcileTokens(key: string, app: GrantOwner, identity: AppIdentity, log: Logger, leading: () => void, leadership: AbortSignal | undefined): Promise<ReconcileResult> {
    const installation = app.kind === installationKind;
    const statusWriter = installation && this.deps.publicApps ? this.deps.publicApps.status : this.deps.status;
    const { sources, states, refresher, now } = this.deps;
    const { spec } = app;
    // An answer held since its write failed goes first: until it is stored, nothing else is true.
    await states.flushUnsaved(identity);
    const clientSecret = await sources.read(identity.namespace, spec.clientSecretRef);
    // This app's token request is out (see refresher.ts): no refresh decision until its answer is
    // stored, which queues the app again.
    if (refresher.inFlight(identity)) return this.whileRequesting(app, identity, clientSecret, states.load(identity), leading, {});
    const secretFingerprint = clientSecret.found ? fingerprint(clientSecret.value) : undefined;
    let own = states.load(identity);
    if (own.resourceVersion === undefined && this.deps.adoption) {
      const adoption = await this.deps.adoption.adopt(identity, secretFingerprint, leading);
      if (adoption.outcome === 'wait') return { requeueAfterMs: adoption.waitMs, reason: 'the state to adopt has an open refresh claim' };
      if (adoption.outcome === 'adopted') own = adoption.stored;
    }
    // The callback that created the installation writes its state moments later: until then there
    // is nothing to check, refresh or write (a state written now would race the grant's). Nor is a
    // status shown while that is normal: Pending, then Ready, would be a status write and an Event
    // more for every install (bench:installations: a third of them).
    if (installation && own.resourceVersion === undefined) {
      const shownPendingAt = Date.parse(app.metadata.creationTimestamp ?? '') + installationGrantGraceMs;
      if (shownPendingAt > now()) return { requeueAfterMs: shownPendingAt - now(), reason: 'waiting for the grant the callback stores' };
      leading();
      await statusWriter.write(app, installationPendingStatus(), now());
      return {};
    }
    const seeding = await this.plantSeed(identity, app, own);
    let stored = seeding.stored;

    // Refused before anything is sent there, or shown as where to authorize.
    const providerNotAllowed = this.deps.providerPolicy?.refusal(spec);
    const rotate = rotateRequestOf(app, stored.state);
    const decision = decideRefresh({
      now: now(),
      state: stored.state,
      clientSecretFingerprint: secretFingerprint,
      rotateRequested: rotate.requested,
      claimNeverSent: (claim) => refresher.claimNeverSent(identity, claim),
      ...(this.deps.minRefreshIntervalMs !== undefined ? { minRefreshIntervalMs: this.deps.minRefreshIntervalMs } : {}),
    });
    // A planted seed is written with the refresh claim that follows it: one guarded write (a create
    // for a new app) instead of two. Without a refresh to follow, it is written on its own now.
    const refreshes = decision.action === 'refresh' && providerNotAllowed === undefined && clientSecret.found;
    if (seeding.unsaved && !refreshes && decision.action !== 'release-claim' && decision.action !== 'resolve-stale-claim') {
      leading();
      stored = await states.save(identity, stored.state, stored.resourceVersion);
    }

    if (decision.action === 'release-claim') {
      leading();
      await states.save(identity, releaseClaim(stored.state), stored.resourceVersion);
      return { requeueAfterMs: 0, reason: 'released our own claim that no request followed' };
    }
    if (decision.action === 'resolve-stale-claim') {
      leading();
      await states.save(identity, recordStaleClaim(stored.state, now()), stored.resourceVersion);
      return { requeueAfterMs: 0, reason: 'resolved a stale refresh claim' };
    }
    if (decision.action === 'refresh' && providerNotAllowed !== undefined) {
      log.debug({ reason: decision.reason }, 'refresh not sent: the provider is not allowed');
    } else if (decision.action === 'refresh' && clientSecret.found) {
      leading();
      const start = await refresher.start({
        app: identity,
        stored,
        provider: resolveProvider(spec),
        clientId: spec.clientId,
        clientSecret: clientSecret.value,
        renewBeforeMs: spec.renewBefore === undefined ? undefined : parseDurationMs(spec.renewBefore),
        reason: decision.reason,
        rotateRequest: rotate.requested ? rotate.value : undefined,
        leadership,
        waiter: key,
        log,
      });
      // Sent: the reconcile after its answer writes the target and status. No slot: the limiter
      // queues the app again when one frees up; the look after a while is a safety net only.
      if (start.started) return this.whileRequesting(app, identity, clientSecret, start.claimed, leading, {});
      log.debug({ reason: decision.reason }, 'refresh waits for a provider slot');
      return this.whileRequesting(app, identity, clientSecret, stored, leading, { requeueAfterMs: providerSlotLookAgainMs, reason: 'waiting for a provider slot' });
    }

    const checked = providerNotAllowed === undefined ? await this.checkClientSecret(key, app, identity, clientSecret, stored, leading) : { stored };
    stored = checked.stored;
    const checkAgainMs = checked.checkAgainMs;

    let targetConflict: string | undefined;
    if (clientSecret.found) {
      leading();
      targetConflict = await this.deps.targets.ensure(app, clientSecret.value, stored.state);
      // Only once the target Secret carries the secret do restarted pods read the new one.
      leading();
      if (!targetConflict) stored = await this.deps.rollouts.reconcile(app, identity, stored, clientSecret.value);
    }
    // Acted on (recorded with its claim), or nothing to act on while blocked: either way, handled.
    const handled = rotate.value !== undefined && (stored.state.record.lastRotateRequest === rotate.value || (rotate.requested && decision.action === 'blocked'));
    const lastRotateRequest = handled ? rotate.value : app.status?.lastRotateRequest;
    // An installation is authorized again by its company installing again, not by a URL of ours.
    const authorization = !installation && needsAuthorization(stored.state) && providerNotAllowed === undefined ? this.deps.authorizations.authorizationURL(app, stored.state) : undefined;
    const status = deriveStatus({
      now: now(),
      state: stored.state,
      clientSecret,
      targetSecretName: targetSecretName(app.metadata.name, spec),
      ...(targetConflict ? { targetConflict } : {}),
      ...(lastRotateRequest !== undefined ? { lastRotateRequest } : {}),
      ...(rotate.refused ? { rotateRequestRefused: rotate.refused } : {}),
      ...(seeding.seedAlreadyUsed ? { seedAlreadyUsed: true } : {}),
      ...(seeding.seedProblem ? { refreshTokenSourceProblem: seeding.seedProblem } : {}),
      ...(this.deps.minRefreshIntervalMs !== undefined ? { minRefreshIntervalMs: this.deps.minRefreshIntervalMs } : {}),
      ...(authorization ? { authorizationURL: authorization.url } : {}),
      ...(providerNotAllowed !== undefined ? { providerNotAllowed } : {}),
      ...(installation ? { installation } : {}),
    });
    leading();
    await statusWriter.write(app, status, now());
    this.deps.observe?.(key, observation(status, stored.state, spec.renewBefore));
    const next = this.nextLook(stored, decision, authorization?.renewAt);
    if (checkAgainMs !== undefined && (next.requeueAfterMs === undefined || checkAgainMs < next.requeueAfterMs)) return { requeueAfterMs: checkAgainMs, reason: 'client secret check again' };
    return next;
  }

  /**
   * A secret nobody has used with the provider yet (a rotation) is checked now, not at the next
   * refresh. `checkAgainMs`: the check is out, look again then.
   */
  private async checkClientSecret(
    key: string,
    app: GrantOwner,
    identity: AppIdentity,
    clientSecret: SecretValue,
    stored: StoredState,
    leading: () => void,
  ): Promise<{ stored: StoredState; checkAgainMs?: number }> {
    const checks = this.deps.clientSecretChecks;
    if (!checks || !clientSecret.found) return { stored };
    const secretFingerprint = fingerprint(clientSecret.value);
    if (!clientSecretUnchecked(stored.state, secretFingerprint)) return { stored };
    const { spec } = app;
    const provider = resolveProvider(spec);
    const look = checks.look({ tokenURL: provider.tokenURL, clientAuthentication: provider.clientAuthentication, clientId: spec.clientId, clientSecret: clientSecret.value }, key);
    if (look.verdict === 'pending') return { stored, checkAgainMs: look.lookAgainMs };
    leading();
    return { stored: await this.deps.states.save(identity, recordClientCheck(stored.state, secretFingerprint, look, this.deps.now()), stored.resourceVersion) };
  }

  /**
   * While the app's token request waits for a provider slot or is out: an existing target Secret is
   * brought up to date (a new client secret reaches the workloads now, with their restarts), but
   * none is created and no status is written. The reconcile after the answer does those, so a
   * refresh costs the same writes as when nothing waits, and a new app's target appears once, with
   * its token.
   */
  private async whileRequesting(app: GrantOwner, identity: AppIdentity, clientSecret: SecretValue, stored: StoredState, leading: () => void, result: ReconcileResult): Promise<ReconcileResult> {
    if (!clientSecret.found || !this.deps.targets.exists(app)) return result;
    leading();
    const targetConflict = await this.deps.targets.ensure(app, clientSecret.value, stored.state);
    leading();
    if (!targetConflict) await this.deps.rollouts.reconcile(app, identity, stored, clientSecret.value);
    return result;
  }

  /**
   * spec.refreshTokenRef seeds the app when the operator has no usable refresh token of its own,
   * unless an earlier OAuthApp already used that seed (sending it again would be a replay). The
   * seeded state comes back `unsaved`: the caller writes it, together with the claim of the refresh
   * it is for when one follows.
   */
  private async plantSeed(
    identity: AppIdentity,
    app: GrantOwner,
    stored: StoredState,
  ): Promise<{ stored: StoredState; unsaved?: boolean; seedAlreadyUsed?: boolean; seedProblem?: { reason: string; message: string } }> {
    const ref = app.spec.refreshTokenRef;
    if (!ref) return { stored };
    // A usable refresh token of our own is never replaced by the seed, and nothing about the seed
    // is shown then (status.ts): no need to read it.
    if (!needsAuthorization(stored.state)) return { stored };
    const seed: SecretValue = await this.deps.sources.read(identity.namespace, ref);
    // A missing seed is the usual "authorize instead"; one refused for its size is worth saying.
    if (!seed.found && seed.reason !== undefined) return { stored, seedProblem: { reason: seed.reason, message: seed.problem } };
    const seeded = seedRefreshToken(stored.state, seed.found ? seed.value : undefined);
    if (seeded === stored.state || !seeded.record.seedFingerprint) return { stored };
    if (await this.deps.seeds.usedByAnother(seeded.record.seedFingerprint, identity.uid)) return { stored, seedAlreadyUsed: true };
    return { stored: { state: seeded, resourceVersion: stored.resourceVersion }, unsaved: true };
  }

  /** When to look again: the next refresh, the end of a wait, or the token's expiry. */
  private nextLook(stored: StoredState, decision: RefreshDecision, authorizationURLRenewAt: number | undefined): ReconcileResult {
    const now = this.deps.now();
    const { record, tokens } = stored.state;
    const candidates: Array<[number, string]> = [];
    if (authorizationURLRenewAt !== undefined) candidates.push([authorizationURLRenewAt, 'authorization URL renewal']);
    // A wait that ended while this reconcile ran (a timer may fire a millisecond before Date.now
    // reaches its time) is a look right away: dropped as past, it left the app to its token's expiry.
    if (decision.action === 'wait') candidates.push([Math.max(decision.until, now + 1), decision.reason]);
    const retryAt = record.failure?.retryAt ?? record.refreshAt;
    if (retryAt && decision.action !== 'blocked') candidates.push([Date.parse(retryAt), record.failure ? 'retry' : 'scheduled refresh']);
    if (tokens && Date.parse(tokens.expiresAt) > now) candidates.push([Date.parse(tokens.expiresAt), 'access token expiry']);
    const future = candidates.filter(([at]) => at > now).sort(([a], [b]) => a - b)[0];
    if (!future) return {};
    return { requeueAfterMs: future[0] - now, reason: future[1] };
  }

  private async finalize(app: { kind: OwnKind; metadata: GrantOwner['metadata'] }, identity: AppIdentity, leading: () => void): Promise<ReconcileResult> {
    if (!app.metadata.finalizers?.includes(finalizerName)) return {};
    leading();
    const seedFingerprint = seedUsedBy(() => this.deps.states.load(identity));
    if (seedFingerprint) await this.deps.seeds.remember(seedFingerprint, identity.uid);
    await this.deps.states.delete(identity);
    await this.setFinalizers(app, app.metadata.finalizers.filter((finalizer) => finalizer !== finalizerName));
    return {};
  }

  private async setFinalizers(owner: { kind: OwnKind; metadata: GrantOwner['metadata'] }, finalizers: string[]): Promise<void> {
    const { namespace, name, resourceVersion } = owner.metadata;
    const written = await this.deps.kube.setFinalizers(owner.kind, namespace, name, finalizers, resourceVersion ?? '');
    const cache = owner.kind === installationKind ? this.deps.publicApps?.installations : this.deps.apps;
    cache?.observeWrite(written);
  }
}

interface RotateRequest {
  /** The oauthapp.dev/rotate value, if any. */
  value: string | undefined;
  /** A value not acted on yet. */
  requested: boolean;
  /** Why a value is refused (it could not be recorded). */
  refused?: string;
}

/** The rotate annotation, compared with the value recorded by the claim that acted on it. */
function rotateRequestOf(app: GrantOwner, state: StoredState['state']): RotateRequest {
  const value = app.metadata.annotations?.[rotateAnnotation];
  if (value === undefined || value === '') return { value: undefined, requested: false };
  if (value.length > limits.rotateRequest) {
    return { value: undefined, requested: false, refused: `the ${rotateAnnotation} annotation is ${value.length} characters long; at most ${limits.rotateRequest} are acted on (use a timestamp)` };
  }
  return { value, requested: value !== state.record.lastRotateRequest && value !== app.status?.lastRotateRequest };
}

/** The seed the app's state says it planted; none when the state cannot be read. */
function seedUsedBy(load: () => StoredState): string | undefined {
  try {
    return load().state.record.seedFingerprint;
  } catch {
    return undefined;
  }
}
